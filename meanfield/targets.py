"""Targets y(x) (MATH.md §4).  Each is a callable X (N, d) -> y (N,); radial targets
also expose their profile ``profile(ρ)`` so that y(x) = profile(‖x‖)."""
from __future__ import annotations

import numpy as np


class RadialTarget:
    """y(x) = g(‖x‖) for a vectorised function ``g`` of the norm."""

    def __init__(self, g):
        if not callable(g):
            raise TypeError("g must be a callable of the norm")
        self.g = g

    def profile(self, rho):
        return np.asarray(self.g(np.asarray(rho, dtype=float)), dtype=float)

    def __call__(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2:
            raise ValueError(f"X must have shape (N, d), got {X.shape}")
        return self.profile(np.linalg.norm(X, axis=1))


class ReluNorm(RadialTarget):
    """f*(x) = ReLU(r − ‖x‖) ([RZG] with r = 1)."""

    def __init__(self, r: float = 1.0):
        if not r > 0:
            raise ValueError(f"ReluNorm: r must be > 0, got {r}")
        self.r = float(r)
        super().__init__(lambda rho: np.maximum(self.r - rho, 0.0))


class BallIndicator(RadialTarget):
    """y(x) = 1{‖x‖ ≤ λ} ([SL], λ ∈ [1, 2])."""

    def __init__(self, lam: float = 1.0):
        if not lam > 0:
            raise ValueError(f"BallIndicator: lam must be > 0, got {lam}")
        self.lam = float(lam)
        super().__init__(lambda rho: (rho <= self.lam).astype(float))


class Teacher:
    """y(x) = teacher(x) for a :class:`~meanfield.network.Network` (student–teacher)."""

    def __init__(self, network):
        self.network = network

    def __call__(self, X) -> np.ndarray:
        return np.asarray(self.network(np.asarray(X)), dtype=float)


TARGETS = {"relu-norm": ReluNorm, "ball": BallIndicator, "radial": RadialTarget,
           "teacher": Teacher}
