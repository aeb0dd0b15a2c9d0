"""The loss functional L(μ) = E_x ℓ(f(x), y(x)) and its velocity field (docs/math.md §2).

:class:`Objective` ties a :class:`~meanfield.network.Network` to data and a loss and
is the velocity field the solvers integrate: for block l and a particle θ_i,

    V_l(θ_i) = −η_l · rate_l · ∂L_m/∂θ_i,   rate_l = m_l (mean-field) or 1 (NTK),

with L_m the finite-width empirical loss.  Under mean-field scaling this is exactly
−η_l ∇_θ δL/δμ_l(θ_i) evaluated on the empirical measures, so an explicit-Euler step
of size dt is gradient descent with learning rate η_l m_l dt.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from numpy.typing import ArrayLike

import numpy as np

from solvers import Group

from . import _kernels as K
from . import streams
from .parallel import Schedule
from .layout import OUT_BIAS
from .network import OUTPUTS, Network

LOSSES = {"squared": K.SQUARED, "logistic": K.LOGISTIC}


def loss_code(name: str) -> int:
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}") from None


class Dataset:
    """A fixed sample: inputs ``X (N, d)`` and targets ``y (N,)``.

    ``seed``: the data seed the sample was drawn with, when known (a configuration's
    ``seed.data``); a run records it as its data seed, and as unknown when it is None.
    """

    def __init__(self, X: ArrayLike, y: ArrayLike, seed: int | None = None):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if X.ndim != 2 or X.shape[0] < 1:
            raise ValueError(f"X must have shape (N, d) with N >= 1, got {X.shape}")
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
        if not (np.isfinite(X).all() and np.isfinite(y).all()):
            raise ValueError("X and y must be finite")
        self.X, self.y = X, y
        self.seed = None if seed is None else int(seed)

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]


@dataclass(frozen=True)
class Stream:
    """Fresh samples every step: ``n`` points from ``sampler(n, rng) -> X (n, d)``,
    labelled by ``target(X) -> y (n,)``, drawn from the generator
    :func:`meanfield.streams.fresh_samples` (seed, step)."""

    sampler: Callable
    target: Callable
    n: int
    seed: int = 0

    def draw(self, step: int) -> Dataset:
        rng = streams.fresh_samples(self.seed, step)
        X = self.sampler(self.n, rng)
        return Dataset(X, self.target(X))


def signature(net) -> tuple:
    """What networks evaluated in one kernel call must share (widths, activations, data
    and frozen groups may differ)."""
    return (net.L, net.dims, net.output, net.dtype, net.has_out_bias)


class _Plan:
    """The kernel's view of B networks of one architecture on their data.

    Holds the static arrays of :func:`meanfield._kernels.evaluate` (layouts with absolute
    offsets into the concatenated parameter vector, scales, rates, data stacks) and the
    work arrays, allocated once: O(B · N · Σ_l k_l).
    """

    def __init__(self, networks, datasets, offsets, loss: int):
        net0 = networks[0]
        self.loss = int(loss)
        if any(signature(net) != signature(net0) for net in networks):
            raise ValueError("batched networks need the same depth, dimensions, output, dtype "
                             "and output bias")
        dt = net0.dtype
        B = len(networks)
        self.networks = list(networks)
        self.layouts = np.stack([net.layout for net in networks]).copy()
        for b, off in enumerate(offsets):
            for col in (K.OFF_U, K.OFF_C, K.OFF_V):
                self.layouts[b, :, col] += off
        self.offb = np.array([off + net.off_b if net.has_out_bias else -1
                              for net, off in zip(networks, offsets)], dtype=np.int64)
        self.scales = np.stack([net.scales for net in networks]).astype(dt)
        self.rates = np.stack([net.rates for net in networks])
        self.n_groups = 3 * net0.L + (1 if net0.has_out_bias else 0)
        self.coef = np.zeros((B, net0.L, 3))
        self.coef_b = np.zeros(B)
        self._coef_key = None
        self.work = float(sum(net.work_per_sample for net in networks))
        self.set_data(datasets)

    def set_data(self, datasets) -> None:
        """Point the plan at one data set per network (same N; shared sets stored once)."""
        net0 = self.networks[0]
        uniq, idx = {}, []
        for ds in datasets:
            if ds.d != net0.d:
                raise ValueError(f"data has dimension {ds.d} but the network takes d = {net0.d}")
            idx.append(uniq.setdefault(id(ds), (len(uniq), ds))[0])
        sets = [ds for _, ds in sorted(uniq.values(), key=lambda p: p[0])]
        n = sets[0].n
        if any(ds.n != n for ds in sets):
            raise ValueError("batched networks need data sets of the same size N")
        dt = net0.dtype
        self.datasets = list(datasets)
        self.didx = np.array(idx, dtype=np.int64)
        self.XT = np.ascontiguousarray(np.stack([ds.X.T for ds in sets]), dtype=dt)
        self.Y = np.ascontiguousarray(np.stack([ds.y for ds in sets]), dtype=dt)
        B = len(self.networks)
        if getattr(self, "HT", None) is None or self.HT.shape[2] != n:
            R = net0.feature_rows
            self.HT = np.zeros((B, R, n), dtype=dt)
            self.GT = np.zeros((B, R, n), dtype=dt)
            self.F = np.zeros((B, n), dtype=dt)
            self.partial = np.zeros((B, (n + K.TILE - 1) // K.TILE))
            self.values = np.zeros(B)
        work = self.work * n
        if getattr(self, "parallel_work", None) != work:
            self.parallel_work = work
            self.schedule = Schedule(work)

    def coefficients(self, scales) -> None:
        """Kernel coefficients −η · rate from the concatenated group time scales
        (n_groups per network; recomputed only when they change)."""
        key = scales.tobytes()
        if key == self._coef_key:
            return
        B, L = self.coef.shape[:2]
        s = np.asarray(scales, dtype=float).reshape(B, self.n_groups)
        self.coef[:] = -s[:, :3 * L].reshape(B, L, 3) * self.rates[:, :, None]
        self.coef_b[:] = -s[:, 3 * L] if self.n_groups > 3 * L else 0.0
        self._coef_key = key

    def run(self, theta, vel, mode) -> np.ndarray:
        """Evaluate (``mode``: K.FORWARD, K.LOSS or K.VELOCITY); returns the (B,) losses.
        The thread count comes from the plan's :class:`~meanfield.parallel.Schedule`."""
        t = self.schedule.begin()
        try:
            K.evaluate(theta, self.layouts, self.scales, self.offb, self.XT, self.Y, self.didx,
                       OUTPUTS[self.networks[0].output], self.loss, self.coef, self.coef_b,
                       mode, t > 0, self.HT, self.GT, self.F, self.partial, vel, self.values)
        finally:
            self.schedule.end(t)
        return self.values


class _Scheduled:
    """What Objective and BatchedObjective share about their kernel calls."""

    @property
    def schedule(self) -> Schedule:
        """The :class:`~meanfield.parallel.Schedule` that picks the serial or a parallel
        kernel for each call (assign one to force a policy, e.g.
        ``Schedule(obj.work, "never")``; the results are the same bits either way)."""
        return self._plan.schedule

    @schedule.setter
    def schedule(self, value: Schedule) -> None:
        self._plan.schedule = value

    @property
    def work(self) -> int:
        """The work of one kernel call, N · Σ_l m_l (k_{l−1} + 1 + k_l) summed over the
        networks evaluated together (what the parallel threshold compares)."""
        return self._plan.parallel_work


class Objective(_Scheduled):
    """Empirical risk of ``network`` on ``data`` as a velocity field for :mod:`solvers`.

    Parameters
    ----------
    network : the architecture (its ``theta`` is the initial state; it is not modified)
    data : a :class:`Dataset` (fixed sample) or a :class:`Stream` (fresh samples per step)
    loss : "squared" (½(f − y)², default) or "logistic" (softplus(f) − y f, y ∈ [0, 1])
    member : the network's number in a sweep or ensemble: its Langevin noise is keyed by
        (noise seed, member, group, particle, coordinate), so the network moves the same
        alone and inside a :class:`solvers.Ensemble` when ``member`` is the same

    Calling ``objective(theta, out, scales, step)`` writes every particle's velocity
    into ``out`` (P,) and returns the loss at ``theta``; ``scales`` (n_groups,) are the
    time scales η of the groups (zero: frozen).  After a call, ``outputs`` (N,) holds
    f(x) on the current sample.  Work arrays are allocated once: O(N · Σ_l k_l).
    :meth:`batch` evaluates many objectives of one architecture in one kernel call.
    """

    def __init__(self, network: Network, data: Dataset | Stream, loss: str = "squared",
                 member: int = 0):
        self.network = network
        self.loss_name = loss
        self._loss = loss_code(loss)
        self.member = int(member)
        self.groups = tuple(Group(n, s, sh, tr, key=(self.member, i))
                            for i, (n, s, sh, tr) in enumerate(network.groups()))
        self.size = network.n_params
        self._rates = network.rates
        self.stream = data if isinstance(data, Stream) else None
        self._step = None
        if self.stream is None:
            if not isinstance(data, Dataset):
                raise TypeError("data must be a Dataset or a Stream")
            first = data
        else:
            first = self.stream.draw(0)
            self._step = 0
        self._plan = _Plan([network], [first], [0], self._loss)

    @property
    def data(self) -> Dataset:
        """The current sample."""
        return self._plan.datasets[0]

    @property
    def outputs(self) -> np.ndarray:
        """(N,) f(x) on the current sample at the last evaluation."""
        return self._plan.F[0]

    @property
    def y(self) -> np.ndarray:
        """(N,) the targets of the current sample, in the network's dtype."""
        return self._plan.Y[0]

    def _draw(self, step: int) -> None:
        """With fresh samples per step: the sample of ``step``."""
        if self.stream is not None and step != self._step:
            self._plan.set_data([self.stream.draw(step)])
            self._step = step

    def __call__(self, theta, out, scales, step: int = 0) -> float:
        self._draw(step)
        self._plan.coefficients(scales)
        return float(self._plan.run(theta, out, K.VELOCITY)[0])

    @staticmethod
    def batch(objectives):
        """One velocity field evaluating ``objectives`` (of one architecture, fixed data
        of one size, one loss) in one kernel call, over their concatenated parameters:
        a :class:`BatchedObjective`, or None when they cannot be batched."""
        objs = list(objectives)
        if not objs or not all(type(o) is Objective for o in objs):
            return None
        o0 = objs[0]
        for o in objs:
            if o.stream is not None or o._loss != o0._loss or o.data.n != o0.data.n \
                    or signature(o.network) != signature(o0.network):
                return None
        return BatchedObjective(objs)

    def default_scales(self) -> np.ndarray:
        """Time scales 1 for trainable groups, 0 for frozen ones."""
        return np.array([1.0 if g.trainable else 0.0 for g in self.groups])

    def velocity(self, theta: np.ndarray | None = None, scales: np.ndarray | None = None,
                 step: int = 0) -> np.ndarray:
        """(loss, velocity (P,)) at ``theta`` (default: the network's parameters)."""
        theta = self.network.theta if theta is None else theta
        out = np.empty_like(theta)
        val = self(theta, out, self.default_scales() if scales is None else scales, step)
        return val, out

    def loss(self, theta: np.ndarray | None = None, step: int = 0) -> float:
        """The empirical loss at ``theta`` (default: the network's parameters)."""
        theta = self.network.theta if theta is None else theta
        self._draw(step)
        return float(self._plan.run(theta, theta, K.LOSS)[0])

    def dissipation(self, velocity: np.ndarray, scales: np.ndarray | None = None) -> float:
        """−dL/dt along the flow: Σ_g ‖V_g‖² / (η_g rate_g) over moving groups g.

        Since V = −η · rate · ∂L/∂θ, this is −∂L/∂θ · V.  Under mean-field scaling it is
        Σ_l η_l ∫‖∇_θ δL/δμ_l‖² dμ_l (plus η_b (∂L/∂b)² for an output bias), the energy
        identity of docs/math.md §2.  It holds without projections or noise.
        """
        scales = self.default_scales() if scales is None else np.asarray(scales)
        total = 0.0
        for i, (g, eta) in enumerate(zip(self.groups, scales)):
            if eta == 0:
                continue
            rate = 1.0 if g.name == OUT_BIAS else self._rates[i // 3]
            v = g.view(velocity).astype(float)
            total += float(np.sum(v * v)) / (eta * rate)
        return total


class BatchedObjective(_Scheduled):
    """Several :class:`Objective` s of one architecture as one kernel call.

    The state is the concatenation of the members' parameter vectors (as in
    :class:`solvers.Ensemble`); ``field(y, out, scales, step)`` writes every member's
    velocities and returns the (B,) array of the members' losses.  Results are bit for
    bit those of evaluating each member alone (the kernels run the same work items).
    """

    def __init__(self, objectives: Sequence[Objective]):
        self.objectives = list(objectives)
        sizes = [o.size for o in self.objectives]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.size = int(self.offsets[-1])
        self._plan = _Plan([o.network for o in self.objectives],
                           [o.data for o in self.objectives], self.offsets[:-1],
                           self.objectives[0]._loss)

    @property
    def outputs(self) -> np.ndarray:
        """(B, N) each member's outputs at the last evaluation."""
        return self._plan.F

    def __call__(self, y, out, scales, step: int = 0) -> np.ndarray:
        self._plan.coefficients(scales)
        return self._plan.run(y, out, K.VELOCITY)

    def losses(self, y: np.ndarray) -> np.ndarray:
        """(B,) each member's empirical loss at the concatenated parameters ``y``."""
        return self._plan.run(y, y, K.LOSS).copy()
