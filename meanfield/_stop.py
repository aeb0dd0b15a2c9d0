"""A stop request shared by the command line's signal handler and the run loop.

No imports at module level: the handler sets the flag while the main thread may be
anywhere, including in the middle of importing NumPy or Numba.  When the process was
started as the ``meanfield`` command, the package installs the handler (:func:`install`)
before anything else loads, so an early Ctrl-C is a clean stop, not a traceback.
"""
REQUESTED = [False]
COMMANDS = ("meanfield", "meanfield.exe", "meanfield-script.py")


# functions the interpreter calls from wherever it is (garbage collection): an exception
# raised in them is printed as "Exception ignored in ..." with a traceback and lost
_CALLBACKS = ("remove", "__del__", "_remove_dead_weakref", "_xla_gc_callback", "_run_finalizer")


def _on_signal(signum, frame):
    """Ctrl-C or SIGTERM: stop cleanly.  The flag lets the run loop stop even when the
    KeyboardInterrupt is swallowed by a library (seen while Numba loads its cache).
    A signal that lands in a garbage-collection callback is delivered again a few
    milliseconds later instead (raised there, it would be printed and lost)."""
    REQUESTED[0] = True
    if frame is not None and frame.f_code.co_name in _CALLBACKS:
        import _thread
        import os
        import time

        def again():
            time.sleep(0.005)
            os.kill(os.getpid(), signum)

        _thread.start_new_thread(again, ())
        return
    raise KeyboardInterrupt


def _on_signal_early(signum, frame):
    """The same while the command starts (importing its modules): only the flag, which
    the command line checks as soon as it runs (an exception raised inside an import
    here would surface as a traceback)."""
    REQUESTED[0] = True


def launched_as_command(argv) -> bool:
    """Whether ``argv`` (``sys.orig_argv``: the interpreter's own arguments) starts the
    ``meanfield`` command: ``python -m meanfield ...`` or the installed script."""
    args = list(argv[1:])
    if "-c" in args:
        return False
    if "-m" in args:
        i = args.index("-m")
        return args[i + 1:i + 2] == ["meanfield"]
    first = next((a for a in args if not a.startswith("-")), "")
    return first.replace("\\", "/").rsplit("/", 1)[-1] in COMMANDS


def install(early: bool = False) -> None:
    """Install the command line's SIGINT and SIGTERM handler (``early``: the one that
    only sets the flag, while the command starts; through the built-in
    ``_signal``: importing ``signal`` builds its enums first, measured 5-10 ms during
    which a Ctrl-C was a traceback)."""
    try:
        import _signal as signal
    except ImportError:   # pragma: no cover (another Python implementation)
        import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal_early if early else _on_signal)


def request() -> None:
    """Ask running run loops to stop at their next state."""
    REQUESTED[0] = True


def requested() -> bool:
    return REQUESTED[0]
