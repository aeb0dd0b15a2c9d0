"""Initial laws of particle parameters: ``law.sample(rng, shape) -> array``.

Used per parameter (u, c, v of each block) by the network constructors.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Gaussian:
    """Entries i.i.d. N(mean, std²)."""

    std: float = 1.0
    mean: float = 0.0

    def sample(self, rng: np.random.Generator, shape: tuple) -> np.ndarray:
        if not self.std >= 0:
            raise ValueError(f"Gaussian init: std must be >= 0, got {self.std}")
        return self.mean + self.std * rng.standard_normal(shape)


@dataclass(frozen=True)
class Sphere:
    """Each particle's row uniform on the sphere of the given radius in R^k.

    For a scalar parameter (shape (m,)) the "sphere" in R¹ is {−radius, +radius}.
    """

    radius: float = 1.0

    def sample(self, rng: np.random.Generator, shape: tuple) -> np.ndarray:
        if not self.radius >= 0:
            raise ValueError(f"Sphere init: radius must be >= 0, got {self.radius}")
        g = rng.standard_normal(shape if len(shape) == 2 else (shape[0], 1))
        norms = np.linalg.norm(g, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        out = self.radius * g / norms
        return out.reshape(shape)


@dataclass(frozen=True)
class Constant:
    """Every entry equal to ``value``."""

    value: float = 0.0

    def sample(self, rng: np.random.Generator, shape: tuple) -> np.ndarray:
        return np.full(shape, float(self.value))


def Zero() -> Constant:
    """Every entry zero."""
    return Constant(0.0)


INIT_LAWS = {"gaussian": Gaussian, "sphere": Sphere, "constant": Constant, "zero": Zero}
