"""Experiments: the one driver that runs and resumes them.

An :class:`Experiment` is everything a run needs: the network, the data, the loss, the
schedule, the solver settings, the noise seed and what to record.  It comes from a
configuration (:meth:`Experiment.from_config`: a TOML file, its text or a dict) or is
built in Python.  :func:`run` moves it through the solver loop into a recorder (an
HDF5 run file, or memory); :func:`resume` finishes an interrupted run file.  The
``meanfield`` command line, :func:`meanfield.train`, sweeps and the benchmarks all go
through :func:`drive`, the loop itself.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field

import solvers

from . import _stop
from .network import Network
from .objective import Dataset, Objective

def request_stop() -> None:
    """Ask every running :func:`drive` loop to stop at its next state (what Ctrl-C does
    in the command line, also when a library swallowed the KeyboardInterrupt)."""
    _stop.request()


RECORD_DEFAULTS = {"series_every": 10, "snapshot_every": 100, "checkpoint_every": 100,
                   "test_every": 10, "compression": "none"}


@dataclass
class Experiment:
    """One training run, fully specified.

    network : the initial network (not modified)
    train : the training :class:`~meanfield.objective.Dataset`
    test : a test Dataset, or None
    target : the target function (kept for analysis; the data already carry y)
    schedule : list of :class:`solvers.Stage`;  stop : :class:`solvers.Stop`
    method, dt, rtol, atol : the integrator (see :func:`solvers.iterate`)
    loss : "squared" or "logistic";  seed : the Langevin noise seed
    record : what to record (keys of ``[record]``; missing keys take their defaults)
    config : the resolved configuration it was built from (None when built in Python)
    """

    network: Network
    train: Dataset
    test: Dataset | None = None
    target: object = None
    schedule: list = field(default_factory=list)
    stop: solvers.Stop = field(default_factory=lambda: solvers.Stop(steps=100))
    method: str = "euler"
    dt: float = 0.01
    rtol: float = 1e-6
    atol: float = 1e-9
    loss: str = "squared"
    seed: int = 0
    record: dict = field(default_factory=dict)
    config: dict | None = None

    def __post_init__(self):
        rec = dict(RECORD_DEFAULTS)
        if "series_every" in self.record and "test_every" not in self.record:
            rec["test_every"] = self.record["series_every"]
        rec.update(self.record)
        self.record = rec

    @classmethod
    def from_config(cls, source, overrides=()) -> "Experiment":
        """Build from a configuration: a resolved or raw dict, a path to a TOML file, or
        TOML text; ``overrides`` are ``--set`` strings (``"solver.dt=0.1"``)."""
        from . import config as C

        return C.build(load_config(source, overrides))

    @property
    def seeds(self) -> dict:
        """The {"init", "data", "noise"} seeds (from the config; noise alone otherwise)."""
        if self.config is not None:
            return dict(self.config["seed"])
        return {"init": 0, "data": 0, "noise": int(self.seed)}

    def objective(self, member: int = 0) -> Objective:
        return Objective(self.network, self.train, loss=self.loss, member=member)

    def test_loss(self):
        """theta -> test loss, or None without a test set."""
        if self.test is None:
            return None
        obj = Objective(self.network, self.test, loss=self.loss)
        return obj.loss

    def solver_kwargs(self) -> dict:
        return {"method": self.method, "dt": self.dt, "rtol": self.rtol, "atol": self.atol,
                "seed": self.seed, "schedule": self.schedule, "stop": self.stop}


def load_config(source, overrides=()) -> dict:
    """A resolved configuration from a dict, a path to a TOML file or TOML text."""
    from . import config as C

    if isinstance(source, dict):
        return C.resolve(C.apply_overrides(source, overrides))
    text = None
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source
                                           and source.endswith(".toml")):
        try:
            with open(source, "rb") as fh:
                raw = fh.read()
        except OSError as e:
            raise C.ConfigError(f"{source}: cannot read ({e.strerror})") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise C.ConfigError(f"{source}: not UTF-8 text (byte {e.start}); a configuration "
                                "is a UTF-8 TOML file") from None
    else:
        text = str(source)
    return C.load(text, overrides)


@dataclass
class RunResult:
    """What :func:`run` and :func:`resume` return.

    status : "complete", "interrupted" or "diverged";  message : why it stopped early
    state : the last state (the last finite one after a divergence)
    network : the network at that state;  path : the run file (None in memory)
    recorder : the recorder (a :class:`~meanfield.store.MemoryRecorder` holds the rows)
    test_loss : the test loss at ``state`` (NaN without a test set)
    """

    status: str
    message: str
    state: solvers.State | None
    network: Network | None
    path: str | None
    recorder: object
    test_loss: float = math.nan


class Progress:
    """A tqdm progress bar over steps or flow time, with the loss and the step rate."""

    def __init__(self, total_steps=None, t_end=None, enabled=True):
        self.enabled = enabled
        self.bar = None
        self.total_steps, self.t_end = total_steps, t_end
        self.by_time = t_end is not None and total_steps is None
        self.last = None

    def _open(self):
        from tqdm.auto import tqdm

        total = self.t_end if self.by_time else self.total_steps
        self.bar = tqdm(total=total, unit="t" if self.by_time else "step", file=sys.stderr,
                        dynamic_ncols=True, mininterval=0.2, leave=True,
                        bar_format=None if total else "{desc}{n_fmt} {unit} [{elapsed}, {rate_fmt}{postfix}]")
        self.bar.set_description("compiling kernels (about a minute the first time)")
        self.bar.refresh()

    def start(self):
        """Show the bar before the first state (while the kernels compile or load)."""
        if self.enabled and self.bar is None:
            self._open()

    def __call__(self, state):
        if not self.enabled:
            return
        if self.bar is None:
            self._open()
        pos = state.t if self.by_time else state.step
        if self.last is None:
            self.bar.set_description("")
            self.bar.n = pos
            self.bar.last_print_n = pos
        else:
            self.bar.update(pos - self.last)
        self.last = pos
        self.bar.set_postfix_str(f"t={state.t:.4g} loss={state.loss:.4e}", refresh=False)
        if state.done is not None:
            self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def drive(field, y0=None, *, hooks=(), progress: Progress | None = None, state=None,
          reraise: bool = False, **solver_kwargs):
    """The run loop: :func:`solvers.iterate` with hooks, a progress bar and the ends
    of a run handled.  Returns (last state, status, message) with status "complete",
    "interrupted" (Ctrl-C) or "diverged" (the last finite state).  With ``reraise``
    the :class:`solvers.DivergenceError` or KeyboardInterrupt propagates instead."""
    final = state
    if progress is not None:
        progress.start()
    try:
        for st in solvers.iterate(field, y0, state=state, **solver_kwargs):
            for hook in hooks:
                hook(st)
            if progress is not None:
                progress(st)
            final = st
            if _stop.requested():
                raise KeyboardInterrupt
    except solvers.DivergenceError as e:
        if reraise:
            raise
        return e.state, "diverged", str(e)
    except KeyboardInterrupt:
        if reraise:
            raise
        return final, "interrupted", "interrupted by the user"
    finally:
        if progress is not None:
            progress.close()
    return final, "complete", ""


def _every(record: dict) -> int:
    return math.gcd(math.gcd(record["series_every"], record["snapshot_every"]),
                    record["checkpoint_every"])


def _execute(exp: Experiment, rec, state, progress: bool, hooks):
    obj = exp.objective()
    prog = Progress(exp.stop.steps, exp.stop.t_end, enabled=progress)
    final, status, msg = drive(obj, exp.network.theta if state is None else None,
                               hooks=(rec, *hooks), progress=prog, state=state,
                               every=_every(exp.record), **exp.solver_kwargs())
    if status == "diverged":
        head = msg.split(";")[0]
        if final is not None:   # keep the last finite state in the record
            rec.record_last(final)
            msg = (f"{head}; the last finite state (step {final.step}, t = {final.t:.6g}) is the "
                   "last snapshot and checkpoint")
        else:
            msg = f"{head}; the initial state is already non-finite"
    rec.finish(status, msg)
    net = exp.network.with_theta(final.y.copy()) if final is not None else None
    test_fn = rec.test_loss   # the recorder's: one test objective per run
    test = float(test_fn(final.y)) if (test_fn is not None and final is not None) else math.nan
    return status, msg, final, net, test


def run(experiment, path=None, *, overrides=(), overwrite: bool = False, progress: bool = False,
        hooks=()) -> RunResult:
    """Run an experiment (an :class:`Experiment` or a configuration, see
    :func:`load_config`) to its end.

    With ``path`` the run is recorded in an HDF5 run file (docs/format.md; an existing
    file is replaced only with ``overwrite``, and only once the new file is valid),
    otherwise in memory.  Ctrl-C stops the run cleanly (status "interrupted", the file
    resumable); a divergence is recorded (status "diverged").
    """
    from .store import H5Recorder, MemoryRecorder

    exp = experiment if isinstance(experiment, Experiment) else \
        Experiment.from_config(experiment, overrides)
    test_loss = exp.test_loss()
    if path is None:
        rec = MemoryRecorder(exp.network, exp.record, test_loss)
    else:
        from . import config as C

        init = solvers.State(y=exp.network.theta.copy(), dt=float(exp.dt), seed=int(exp.seed),
                             loss=math.nan)
        rec = H5Recorder.create(path, network=exp.network, record=exp.record,
                                config_text=C.dumps(exp.config) if exp.config is not None else "",
                                seeds=exp.seeds, train=exp.train, test=exp.test,
                                test_loss=test_loss, initial_state=init, overwrite=overwrite)
    try:
        status, msg, final, net, test = _execute(exp, rec, None, progress, hooks)
    finally:
        if path is not None:
            rec.close()
    return RunResult(status, msg, final, net, None if path is None else str(path), rec, test)


def resume(path, *, progress: bool = False, hooks=()) -> RunResult:
    """Finish an interrupted run file from its newest checkpoint.  Rows recorded after
    the checkpoint are dropped and recorded again; the final particles equal those of an
    uninterrupted run, bit for bit."""
    from .store import H5Recorder, Run, RunFileError

    with Run(path) as r:
        if r.status == "complete":
            raise RunFileError(f"{path}: the run is already complete")
        if r.config is None:
            raise RunFileError(f"{path}: a run made from Python stores no schedule or solver "
                               "settings, so it cannot be resumed from the file alone")
        from . import config as C

        exp = C.build(r.config)
    rec, state = H5Recorder.resume(path, exp.network, exp.record, exp.test_loss())
    if progress:
        print(f"resuming {path} at step {state.step} (t = {state.t:.6g})", file=sys.stderr)
    try:
        status, msg, final, net, test = _execute(exp, rec, state, progress, hooks)
    finally:
        rec.close()
    return RunResult(status, msg, final, net, str(path), rec, test)
