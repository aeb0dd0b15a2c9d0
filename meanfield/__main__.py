"""``python -m meanfield`` and the ``meanfield`` command.

Ctrl-C and SIGTERM handling is installed by the package as soon as it sees the command
start (:mod:`meanfield._stop`), and here again, before the command line module and its
imports load: a signal in the first tens of milliseconds stops the command cleanly (exit
130, one line) instead of a traceback.  Only the interpreter's own start (before any
meanfield code runs) remains outside it.
"""
import sys

from . import _stop


def main() -> int:
    _stop.install(early=True)   # (the package did already, when it saw the command start)
    from .cli import main as command_line

    return command_line()   # it checks for a signal that came before it ran


if __name__ == "__main__":
    sys.exit(main())
