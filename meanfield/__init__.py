"""meanfield: numerical analysis of the mean-field limit of neural networks."""
__version__ = "0.1.0"
