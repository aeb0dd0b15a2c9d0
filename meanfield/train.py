"""Training a network in one call: the objective, the run loop of
:func:`meanfield.experiment.drive` and an in-memory history."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

import solvers

from .experiment import Progress, drive, interactive
from .network import Network
from .objective import Dataset, Objective, Stream


@dataclass
class History:
    """In-memory recorder: one row per yielded state (a recording hook)."""

    step: list = field(default_factory=list)
    t: list = field(default_factory=list)
    loss: list = field(default_factory=list)

    def __call__(self, state: solvers.State) -> None:
        self.step.append(state.step)
        self.t.append(state.t)
        self.loss.append(state.loss)

    def arrays(self) -> dict:
        return {"step": np.array(self.step), "t": np.array(self.t), "loss": np.array(self.loss)}


@dataclass
class TrainResult:
    network: Network          # the trained network (a new object; the input is untouched)
    state: solvers.State      # the final solver state (resumable)
    history: History


def train(network: Network, data: Dataset | Stream, *, loss: str = "squared",
          hooks: Sequence[Callable] = (), progress: bool | None = None,
          **solver_kwargs) -> TrainResult:
    """Train ``network`` on ``data`` by the Wasserstein gradient flow of the loss.

    ``data`` is a :class:`~meanfield.objective.Dataset` or :class:`~meanfield.objective.Stream`;
    solver keywords (method, dt, schedule, stop, every, seed, rtol, atol, state) go to
    :func:`solvers.iterate`.  Every yielded state is recorded in the history and passed
    to each hook.  On divergence :class:`solvers.DivergenceError` propagates, carrying the
    last finite state.  ``progress``: a progress bar on standard error (None: when it is
    a terminal or in Jupyter).
    """
    obj = Objective(network, data, loss=loss)
    hist = History()
    y0 = network.theta if solver_kwargs.get("state") is None else None
    stop = solver_kwargs.get("stop")
    show = interactive() if progress is None else bool(progress)
    prog = Progress(getattr(stop, "steps", None), getattr(stop, "t_end", None), enabled=show) \
        if show else None
    final, _, _ = drive(obj, y0, hooks=(hist, *hooks), reraise=True, progress=prog, **solver_kwargs)
    return TrainResult(network.with_theta(final.y.copy()), final, hist)
