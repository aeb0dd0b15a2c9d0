"""The front door: run an experiment into a run file, resume one, open one.

Everything that turns configuration text into objects goes through here or through
:mod:`meanfield.config`; the store (:mod:`meanfield.store`) keeps the text and its hash
and never parses it.  :func:`open_run` opens a run file and attaches its parsed
configuration; :func:`run` takes an :class:`~meanfield.experiment.Experiment` or a
configuration; :func:`resume` rebuilds an interrupted run's experiment from the text
its file stores.  The command line is a thin layer over these functions.
"""
from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Union

import solvers

from . import config as C
from .config import load_config
from .experiment import Experiment, RunResult, execute, interactive
from .record import MemoryRecorder
from .store import H5Recorder, Run, RunFileError

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Sequence

    Source = Union[dict, str, "os.PathLike[str]"]   # a configuration: dict, TOML path or text


def from_config(source: Source, overrides: Sequence[str] = ()) -> Experiment:
    """The :class:`~meanfield.experiment.Experiment` of a configuration (see
    :func:`meanfield.config.load_config` for ``source`` and ``overrides``).  ConfigError
    (one line) when the configuration is invalid or cannot be built."""
    cfg = load_config(source, overrides)
    try:
        return C.build(cfg)
    except C.ConfigError:
        raise
    except (ValueError, TypeError) as e:   # a registered builder refused its parameters
        raise C.ConfigError(f"configuration: {e}") from None


def run(experiment: Experiment | Source, path: str | os.PathLike[str] | None = None, *,
        overrides: Sequence[str] = (), overwrite: bool = False, progress: bool | None = None,
        hooks: Sequence[Callable] = ()) -> RunResult:
    """Run an experiment (an :class:`~meanfield.experiment.Experiment`, or a
    configuration as :func:`from_config` takes it) to its end.

    With ``path`` the run is recorded in an HDF5 run file (docs/format.md; an existing
    file is replaced only with ``overwrite``, and only once the new file is valid),
    otherwise in memory.  The file records the configuration's text and the seeds
    that made the experiment (:attr:`Experiment.seeds`; a seed that is not known is
    recorded as unknown).  Ctrl-C stops the run cleanly (status "interrupted", the file
    resumable); a divergence is recorded (status "diverged").  ``progress``: a progress
    bar on standard error (None: when it is a terminal or in Jupyter).
    """
    progress = interactive() if progress is None else bool(progress)
    exp = experiment if isinstance(experiment, Experiment) else from_config(experiment, overrides)
    test_loss = exp.test_loss()
    if path is None:
        rec = MemoryRecorder(exp.network, exp.record, test_loss)
    else:
        init = solvers.State(y=exp.network.theta.copy(), dt=float(exp.dt), seed=int(exp.seed),
                             loss=math.nan)
        rec = H5Recorder.create(path, network=exp.network, record=exp.record,
                                config_text=C.dumps(exp.config) if exp.config is not None else "",
                                seeds=exp.seeds, train=exp.train, test=exp.test,
                                test_loss=test_loss, initial_state=init, overwrite=overwrite)
    try:
        status, msg, final, net, test = execute(exp, rec, None, progress, hooks)
    finally:
        if path is not None:
            rec.close()
    return RunResult(status, msg, final, net, None if path is None else str(path), rec, test)


def resume(path: str | os.PathLike[str], *, progress: bool | None = None,
           hooks: Sequence[Callable] = ()) -> RunResult:
    """Finish an interrupted run file from its newest checkpoint.  Rows recorded after
    the checkpoint are dropped and recorded again; the final particles equal those of an
    uninterrupted run, bit for bit."""
    with open_run(path) as r:
        if r.status == "complete":
            raise RunFileError(f"{path}: the run is already complete")
        if r.config is None:
            raise RunFileError(f"{path}: a run made from Python stores no schedule or solver "
                               "settings, so it cannot be resumed from the file alone")
        exp = C.build(r.config)
    rec, state = H5Recorder.resume(path, exp.network, exp.record, exp.test_loss())
    progress = interactive() if progress is None else bool(progress)
    if progress:
        print(f"resuming {path} at step {state.step} (t = {state.t:.6g})", file=sys.stderr)
    try:
        status, msg, final, net, test = execute(exp, rec, state, progress, hooks)
    finally:
        rec.close()
    return RunResult(status, msg, final, net, str(path), rec, test)


def open_run(path: str | os.PathLike[str]) -> Run:
    """Open a run file for offline analysis (lazy: nothing large is read up front), with
    its configuration parsed (``Run.config``; None for a run made from Python).

    A file still being written can be opened too; call :meth:`Run.refresh` to see the
    rows written since.  RunFileError (one line) for a file that is not a readable run
    file, whose stored configuration is invalid, or whose seed attributes disagree with
    it.
    """
    r = Run(path)
    try:
        if r.config_text:
            try:
                cfg = C.load(r.config_text)
            except C.ConfigError as e:
                raise RunFileError(f"{r.path}: the stored configuration is invalid ({e})") from None
            if r.version > 1 and cfg["seed"] != r.seeds:
                raise RunFileError(f"{r.path}: the seed attributes {r.seeds} do not match the "
                                   f"stored configuration's {cfg['seed']} (edited?)")
            r.attach(cfg, None if "network" in r.f else C.make_network(cfg))
    except BaseException:
        r.close()
        raise
    return r
