"""A stop request shared by the command line's signal handler and the run loop.

No imports here: the handler sets the flag while the main thread may be anywhere,
including in the middle of importing NumPy or Numba.
"""
REQUESTED = [False]


def request() -> None:
    """Ask running run loops to stop at their next state."""
    REQUESTED[0] = True


def requested() -> bool:
    return REQUESTED[0]
