"""The package version, in a module of its own so that every file-writing module can
stamp it without importing the package's front door."""
__version__ = "0.2.0"
