"""Targets y(x) (docs/math.md §4).  Each is a callable X (N, d) -> y (N,); radial targets
also expose their profile ``profile(ρ)`` so that y(x) = profile(‖x‖)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from .activations import ACTIVATIONS
from .network import two_layer
from .registry import Param, Registry

if TYPE_CHECKING:
    from .network import Network


class RadialTarget:
    """y(x) = g(‖x‖) for a vectorised function ``g`` of the norm."""

    def __init__(self, g: Callable[[np.ndarray], ArrayLike]):
        if not callable(g):
            raise TypeError("g must be a callable of the norm")
        self.g = g

    def profile(self, rho: ArrayLike) -> np.ndarray:
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

    def __init__(self, network: Network):
        self.network = network

    def __call__(self, X) -> np.ndarray:
        return np.asarray(self.network(np.asarray(X)), dtype=float)


# ----------------------------------------------------------------------------------
# the registry (Python API and configurations): one registration per target
# ----------------------------------------------------------------------------------
PROFILES = ("relu", "cos", "bump")


def _radial_profile(ctx, profile, r, freq, width):
    """The named radial profiles a configuration can give (a file cannot carry a function)."""
    if profile == "relu":
        return RadialTarget(lambda rho: np.maximum(r - rho, 0.0))
    if profile == "cos":
        return RadialTarget(lambda rho: np.cos(freq * rho))
    return RadialTarget(lambda rho: np.exp(-rho ** 2 / (2 * width * width)))


def _teacher(ctx, teacher_width, teacher_activation, teacher_seed):
    return Teacher(two_layer(ctx["d"], teacher_width, teacher_activation, seed=teacher_seed))


def _activations():
    return tuple(ACTIVATIONS)


TARGETS = Registry("target")
TARGETS.register("relu-norm", ReluNorm, {"r": Param("number", 1.0, lo=0, strict=True)})
TARGETS.register("ball", BallIndicator, {"lam": Param("number", 1.0, lo=0, strict=True)})
TARGETS.register("radial", RadialTarget, {
    "profile": Param("string", "cos", choices=PROFILES,
                     doc="relu: ReLU(r − ρ), cos: cos(freq ρ), bump: exp(−ρ²/(2 width²))"),
    "r": Param("number", 1.0, lo=0, strict=True), "freq": Param("number", 1.0),
    "width": Param("number", 1.0, lo=0, strict=True)}, build=_radial_profile)
TARGETS.register("teacher", Teacher, {
    "teacher_width": Param("integer", 8, lo=1),
    "teacher_activation": Param("string", "relu", choices=_activations()),
    "teacher_seed": Param("integer", lambda ctx: ctx["seed"]["data"] + 1, lo=0,
                          doc="initialisation seed of the teacher (default seed.data + 1)")},
    build=_teacher)
