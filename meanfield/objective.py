"""The loss functional L(μ) = E_x ℓ(f(x), y(x)) and its velocity field (MATH.md §2).

:class:`Objective` ties a :class:`~meanfield.network.Network` to data and a loss and
is the velocity field the solvers integrate: for block l and a particle θ_i,

    V_l(θ_i) = −η_l · rate_l · ∂L_m/∂θ_i,   rate_l = m_l (mean-field) or 1 (NTK),

with L_m the finite-width empirical loss.  Under mean-field scaling this is exactly
−η_l ∇_θ δL/δμ_l(θ_i) evaluated on the empirical measures, so an explicit-Euler step
of size dt is gradient descent with learning rate η_l m_l dt.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from solvers import Group

from . import _kernels as K
from .network import OUTPUTS, Network

LOSSES = {"squared": K.SQUARED, "logistic": K.LOGISTIC}


def loss_code(name: str) -> int:
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}") from None


class Dataset:
    """A fixed sample: inputs ``X (N, d)`` and targets ``y (N,)``."""

    def __init__(self, X, y):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if X.ndim != 2 or X.shape[0] < 1:
            raise ValueError(f"X must have shape (N, d) with N >= 1, got {X.shape}")
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
        if not (np.isfinite(X).all() and np.isfinite(y).all()):
            raise ValueError("X and y must be finite")
        self.X, self.y = X, y

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]


@dataclass(frozen=True)
class Stream:
    """Fresh samples every step: ``n`` points from ``sampler(n, rng) -> X (n, d)``,
    labelled by ``target(X) -> y (n,)``, with rng = default_rng([seed, step])."""

    sampler: Callable
    target: Callable
    n: int
    seed: int = 0

    def draw(self, step: int) -> Dataset:
        rng = np.random.default_rng([int(self.seed), int(step)])
        X = self.sampler(self.n, rng)
        return Dataset(X, self.target(X))


class Objective:
    """Empirical risk of ``network`` on ``data`` as a velocity field for :mod:`solvers`.

    Parameters
    ----------
    network : the architecture (its ``theta`` is the initial state; it is not modified)
    data : a :class:`Dataset` (fixed sample) or a :class:`Stream` (fresh samples per step)
    loss : "squared" (½(f − y)², default) or "logistic" (softplus(f) − y f, y ∈ [0, 1])

    Calling ``objective(theta, out, scales, step)`` writes every particle's velocity
    into ``out`` (P,) and returns the loss at ``theta``; ``scales`` (n_groups,) are the
    time scales η of the groups (zero: frozen).  After a call, ``outputs`` (N,) holds
    f(x) on the current sample.  Work arrays are allocated once: O(N · Σ_l k_l).
    """

    def __init__(self, network: Network, data, loss: str = "squared"):
        self.network = network
        self.loss_name = loss
        self._loss = loss_code(loss)
        self._psi = OUTPUTS[network.output]
        self.groups = tuple(Group(n, s, sh, tr) for n, s, sh, tr in network.groups())
        self.size = network.n_params
        dt = network.dtype
        self._scales = network.scales.astype(dt)
        self._rates = network.rates
        self._coef = np.zeros((network.L, 3))
        self.stream = data if isinstance(data, Stream) else None
        self._step = None
        if self.stream is None:
            if not isinstance(data, Dataset):
                raise TypeError("data must be a Dataset or a Stream")
            self._set_data(data)
        else:
            self._set_data(self.stream.draw(0))
            self._step = 0

    def _set_data(self, data: Dataset) -> None:
        net = self.network
        if data.d != net.d:
            raise ValueError(f"data has dimension {data.d} but the network takes d = {net.d}")
        dt = net.dtype
        n = data.n
        self.data = data
        self.XT = np.ascontiguousarray(data.X.T, dtype=dt)
        self.y = np.ascontiguousarray(data.y, dtype=dt)
        if getattr(self, "HT", None) is None or self.HT.shape[1] != n:
            self.HT = np.empty((net.feature_rows, n), dtype=dt)
            self.GT = np.empty((net.feature_rows, n), dtype=dt)
            self.outputs = np.empty(n, dtype=dt)
            self._partial = np.empty((n + K.TILE - 1) // K.TILE, dtype=np.float64)

    def _coefficients(self, scales) -> float:
        """Fill the (L, 3) kernel coefficients −η · rate from group time scales."""
        L = self.network.L
        self._coef[:] = -np.asarray(scales[:3 * L], dtype=float).reshape(L, 3) * self._rates[:, None]
        if self.network.has_out_bias:
            return -float(scales[3 * L])  # the output bias: rate 1
        return 0.0

    def __call__(self, theta, out, scales, step: int = 0) -> float:
        if self.stream is not None and step != self._step:
            self._set_data(self.stream.draw(step))
            self._step = step
        coef_b = self._coefficients(scales)
        return K.loss_and_velocity(theta, self.network.layout, self._scales, self.network.off_b,
                                   self.XT, self.y, self._psi, self._loss, self._coef, coef_b,
                                   self.HT, self.GT, self.outputs, self._partial, out)

    def default_scales(self) -> np.ndarray:
        """Time scales 1 for trainable groups, 0 for frozen ones."""
        return np.array([1.0 if g.trainable else 0.0 for g in self.groups])

    def velocity(self, theta=None, scales=None, step: int = 0):
        """(loss, velocity (P,)) at ``theta`` (default: the network's parameters)."""
        theta = self.network.theta if theta is None else theta
        out = np.empty_like(theta)
        val = self(theta, out, self.default_scales() if scales is None else scales, step)
        return val, out

    def loss(self, theta=None, step: int = 0) -> float:
        """The empirical loss at ``theta`` (default: the network's parameters)."""
        theta = self.network.theta if theta is None else theta
        out = np.empty_like(theta)
        return self(theta, out, np.zeros(len(self.groups)), step)

    def dissipation(self, velocity, scales=None) -> float:
        """−dL/dt along the flow: Σ_g ‖V_g‖² / (η_g rate_g) over moving groups g.

        Since V = −η · rate · ∂L/∂θ, this is −∂L/∂θ · V.  Under mean-field scaling it is
        Σ_l η_l ∫‖∇_θ δL/δμ_l‖² dμ_l (plus η_b (∂L/∂b)² for an output bias), the energy
        identity of MATH.md §2.  It holds without projections or noise.
        """
        scales = self.default_scales() if scales is None else np.asarray(scales)
        total = 0.0
        for i, (g, eta) in enumerate(zip(self.groups, scales)):
            if eta == 0:
                continue
            rate = 1.0 if g.name == "out.b" else self._rates[i // 3]
            v = g.view(velocity).astype(float)
            total += float(np.sum(v * v)) / (eta * rate)
        return total
