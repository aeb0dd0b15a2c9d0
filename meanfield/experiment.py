"""Experiments and the one loop that drives them.

An :class:`Experiment` is everything a run needs: the network, the data, the loss, the
schedule, the solver settings, the noise seed and what to record.  It comes from a
configuration (:func:`meanfield.from_config`: a TOML file, its text or a dict) or is
built in Python.  :func:`drive` is the run loop itself: the ``meanfield`` command line,
:func:`meanfield.run` and :func:`meanfield.resume` (:mod:`meanfield.runs`),
:func:`meanfield.train`, sweeps and the benchmarks all go through it; :func:`execute`
runs an experiment into a recorder (:mod:`meanfield.record`).
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from dataclasses import dataclass, field

import solvers

from . import _stop
from .network import Network
from .objective import Dataset, Objective

if TYPE_CHECKING:
    import numpy as np


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

    The seeds a run records are :attr:`seeds`.
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

    @property
    def seeds(self) -> dict:
        """The {"init", "data", "noise"} seeds that made this experiment: the
        configuration's, or else the network's and the data's own (None where they are
        not known: a network or data set made from arrays)."""
        if self.config is not None:
            return dict(self.config["seed"])
        data = self.train.seed
        if self.test is not None and self.test.seed != data:
            data = None
        return {"init": self.network.seed, "data": data, "noise": int(self.seed)}

    def objective(self, member: int = 0) -> Objective:
        return Objective(self.network, self.train, loss=self.loss, member=member)

    def test_loss(self) -> Callable[[np.ndarray], float] | None:
        """theta -> test loss, or None without a test set."""
        if self.test is None:
            return None
        obj = Objective(self.network, self.test, loss=self.loss)
        return obj.loss

    def solver_kwargs(self) -> dict:
        return {"method": self.method, "dt": self.dt, "rtol": self.rtol, "atol": self.atol,
                "seed": self.seed, "schedule": self.schedule, "stop": self.stop}

    def planned_steps(self) -> int | None:
        """How many steps the run will take at most, with a fixed-step method: the least of
        ``stop.steps``, t_end / dt and the schedule's length when its last stage has one
        (a stage of duration D takes ⌈D/dt⌉ steps); None when nothing bounds it by steps
        (an adaptive method, or a run that stops by loss alone)."""
        if solvers.get_method(self.method).adaptive:
            return None
        bounds = []
        if self.stop.steps is not None:
            bounds.append(int(self.stop.steps))
        if self.stop.t_end is not None:
            bounds.append(math.ceil(self.stop.t_end / self.dt - 1e-9))
        if self.schedule and (self.schedule[-1].steps is not None
                              or self.schedule[-1].duration is not None):
            bounds.append(sum(st.steps if st.steps is not None
                              else math.ceil(st.duration / self.dt - 1e-9) for st in self.schedule))
        return min(bounds) if bounds else None

    def early_end(self, state: solvers.State | None) -> str:
        """Why a complete run stopped before ``stop.steps`` or ``stop.t_end`` ("" when it
        did not): its schedule's last stage, which has a length, ended first."""
        if state is None or state.done != "schedule":
            return ""
        short = []
        if self.stop.steps is not None and state.step < self.stop.steps:
            short.append(f"solver.steps = {self.stop.steps}")
        if self.stop.t_end is not None and state.t < self.stop.t_end * (1 - 1e-12):
            short.append(f"solver.t_end = {self.stop.t_end:g}")
        if not short:
            return ""
        return (f"the schedule ended at step {state.step}, t = {state.t:.6g} (its last stage has "
                f"a length), before {' and '.join(short)}")


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


def interactive() -> bool:
    """Whether progress should show by default: standard error is a terminal, or the
    process is a Jupyter kernel (the Python API's ``progress=None``)."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):   # a closed or replaced stream
        return False


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


def drive(field: solvers.VelocityField, y0: np.ndarray | None = None, *,
          hooks: Sequence[Callable] = (), progress: Progress | None = None,
          state: solvers.State | None = None, reraise: bool = False,
          **solver_kwargs) -> tuple[solvers.State, str, str]:
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


def execute(exp: Experiment, rec, state=None, progress: bool = False, hooks=()):
    """Run ``exp`` into the recorder ``rec`` (from its initial network, or from the
    solver ``state`` of a resumed run) and finish the record.  Returns (status, message,
    last state, network at it, test loss there)."""
    obj = exp.objective()
    planned = exp.planned_steps()
    prog = (Progress(planned, None, enabled=progress) if planned is not None else
            Progress(exp.stop.steps, exp.stop.t_end, enabled=progress))
    final, status, msg = drive(obj, exp.network.theta if state is None else None,
                               hooks=(rec, *hooks), progress=prog, state=state,
                               every=rec.every(), **exp.solver_kwargs())
    if status == "complete":
        msg = exp.early_end(final)
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
