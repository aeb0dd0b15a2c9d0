"""What a run records and when: the recording policy shared by the in-memory recorder
(:class:`MemoryRecorder`, here) and the HDF5 run file's writer
(:class:`meanfield.store.H5Recorder`).

Recorders are hooks of the run loop: they receive every yielded solver state and
decide, from ``record.series_every`` / ``snapshot_every`` / ``checkpoint_every`` (and
``test_every``), what to store: a series row (step, t, loss, test loss, wall time, the
velocity norm of every block), a snapshot of the particles, a checkpoint of the solver
state.  The final state is always recorded.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .layout import PARAMS, group_block

SERIES_KEYS = ("step", "t", "loss", "test_loss", "wall_time", "velocity_norm")


def velocity_norms(network, velocity) -> np.ndarray:
    """(L,) the L²(μ_l) norm of each block's velocity: √((1/m_l) Σ_i ‖V_i‖²); for the
    exact limit (:mod:`meanfield.limit`) its own ``velocity_norms``, with its weights.

    (Plain NumPy reductions, no BLAS: a BLAS call inside the run loop leaves OpenBLAS
    threads spinning on the cores the Numba kernels need; measured 25 % slower steps.)
    """
    own = getattr(network, "velocity_norms", None)
    if own is not None:   # the exact limit: weighted nodes
        with np.errstate(over="ignore", invalid="ignore"):
            return own(velocity)
    out = np.zeros(network.L)
    with np.errstate(over="ignore", invalid="ignore"):   # a diverging run: inf is the norm
        _accumulate(network, velocity, out)
    return np.sqrt(out / np.array(network.widths, dtype=float))


def _accumulate(network, velocity, out) -> None:
    for name, start, shape, _ in network.groups():
        block = group_block(name)
        if block is None:
            continue
        v = velocity[start:start + int(np.prod(shape))]
        out[block - 1] += float(np.square(v, dtype=np.float64).sum())


class Recorder:
    """What is recorded, independent of where it goes (subclasses store the rows).

    Parameters
    ----------
    network : the run's network (architecture; parameters come from the states), or an
        exact limit of :mod:`meanfield.limit` (a :class:`MemoryRecorder` records its runs:
        the population loss, its blocks' velocity norms, its states; run files hold
        networks only)
    record : the resolved ``[record]`` section
    test_loss : callable theta -> test loss (or None when there is no test set)
    wall_offset : wall time already spent (a resumed run continues the clock)
    """

    def __init__(self, network, record: dict, test_loss=None, wall_offset: float = 0.0):
        self.network = network
        self.record = dict(record)
        self.test_loss = test_loss
        self.wall_offset = wall_offset
        self._t0 = time.perf_counter()
        self.last_snapshot_step = None
        self.last_series_step = None

    def every(self) -> int:
        r = self.record
        return math.gcd(math.gcd(r["series_every"], r["snapshot_every"]), r["checkpoint_every"])

    def wall(self) -> float:
        return self.wall_offset + time.perf_counter() - self._t0

    def __call__(self, state) -> None:
        r = self.record
        wrote = forced = False
        if state.step % r["series_every"] == 0 or state.done is not None:
            test = math.nan
            if self.test_loss is not None and (state.step % r["test_every"] == 0 or state.done is not None):
                test = self.test_loss(state.y)
            vn = (velocity_norms(self.network, state.velocity) if state.velocity is not None
                  else np.full(self.network.L, np.nan))
            self._series(dict(step=state.step, t=state.t, loss=state.loss, test_loss=test,
                              wall_time=self.wall(), velocity_norm=vn))
            self.last_series_step = state.step
            wrote = True
        if (state.step % r["snapshot_every"] == 0 or state.done is not None) \
                and self.last_snapshot_step != state.step:
            self._snapshot(state.step, state.t, state.y)
            self.last_snapshot_step = state.step
            wrote = forced = True
        if state.step % r["checkpoint_every"] == 0 or state.done is not None:
            self._checkpoint(state)
            wrote = forced = True
        if wrote:
            self._commit(forced or state.done is not None)

    def finish(self, status: str, message: str = "") -> None:
        self._status(status, message)
        self._commit(True)

    def record_last(self, state) -> None:
        """Record a state the run loop did not yield (the last finite state before a
        divergence): a series row, a snapshot and a checkpoint, unless already there."""
        if self.last_series_step != state.step:
            test = self.test_loss(state.y) if self.test_loss is not None else math.nan
            self._series(dict(step=state.step, t=state.t, loss=state.loss, test_loss=test,
                              wall_time=self.wall(), velocity_norm=np.full(self.network.L, np.nan)))
            self.last_series_step = state.step
        if self.last_snapshot_step != state.step:
            self._snapshot(state.step, state.t, state.y)
            self.last_snapshot_step = state.step
        self._checkpoint(state)
        self._commit(True)

    # backends implement these
    def _series(self, row: dict) -> None:
        raise NotImplementedError

    def _snapshot(self, step, t, theta) -> None:
        raise NotImplementedError

    def _checkpoint(self, state) -> None:
        raise NotImplementedError

    def _status(self, status, message) -> None:
        raise NotImplementedError

    def _commit(self, force: bool) -> None:
        pass


class MemoryRecorder(Recorder):
    """Keeps every row in memory: ``series``, ``snapshots``, ``checkpoint``, ``status``."""

    def __init__(self, network, record, test_loss=None, wall_offset: float = 0.0):
        super().__init__(network, record, test_loss, wall_offset)
        self.series = {k: [] for k in SERIES_KEYS}
        self.snapshots = {"step": [], "t": [], "theta": []}
        self.checkpoint = None
        self.status = "running"

    def _series(self, row):
        for k, v in row.items():
            self.series[k].append(v)

    def _snapshot(self, step, t, theta):
        self.snapshots["step"].append(step)
        self.snapshots["t"].append(t)
        self.snapshots["theta"].append(np.array(theta, copy=True))

    def _checkpoint(self, state):
        self.checkpoint = state.copy()

    def _status(self, status, message):
        self.status = status

    def arrays(self) -> dict:
        """Series and snapshots as arrays, in the HDF5 file's layout."""
        out = {f"series/{k}": np.array(v) for k, v in self.series.items()}
        out["snapshots/step"] = np.array(self.snapshots["step"])
        out["snapshots/t"] = np.array(self.snapshots["t"])
        thetas = np.array(self.snapshots["theta"])
        for l, b in enumerate(self.network.blocks):
            for p, arr in zip(PARAMS, self.network.block_arrays(thetas, l)):
                out[f"snapshots/blocks/{l + 1}/{p}"] = arr
        if self.network.has_out_bias:
            out["snapshots/out_bias"] = thetas[:, self.network.off_b]
        return out
