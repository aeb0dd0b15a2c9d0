"""Initial laws of particle parameters, drawn from keyed counter-based streams.

A law's ``sample(key, shape)`` returns an array of ``shape`` ((m, k) or (m,)) whose
row i is a function of (key, i) alone, with ``key = init_key(seed, block, param)``.
So, for the same init seed, the first m particles of a width-M block are exactly the
particles of the width-m block, for every block and parameter: widths nest, and a
width-m network is a sub-network of a width-M one (what coupled width sweeps need).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers import keyed_normals

from .registry import Param, Registry
from .streams import init_key  # noqa: F401  (the key of a block's parameter; see streams.py)


def _normals(key: int, shape: tuple) -> np.ndarray:
    k = shape[1] if len(shape) == 2 else 1
    return keyed_normals(key, shape[0], k).reshape(shape)


@dataclass(frozen=True)
class Gaussian:
    """Entries i.i.d. N(mean, std²)."""

    std: float = 1.0
    mean: float = 0.0

    def sample(self, key: int, shape: tuple) -> np.ndarray:
        if not self.std >= 0:
            raise ValueError(f"Gaussian init: std must be >= 0, got {self.std}")
        return self.mean + self.std * _normals(key, shape)


@dataclass(frozen=True)
class Sphere:
    """Each particle's row uniform on the sphere of the given radius in R^k.

    For a scalar parameter (shape (m,)) the "sphere" in R¹ is {−radius, +radius}.
    """

    radius: float = 1.0

    def sample(self, key: int, shape: tuple) -> np.ndarray:
        if not self.radius >= 0:
            raise ValueError(f"Sphere init: radius must be >= 0, got {self.radius}")
        g = _normals(key, shape if len(shape) == 2 else (shape[0], 1))
        norms = np.linalg.norm(g, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return (self.radius * g / norms).reshape(shape)


@dataclass(frozen=True)
class Constant:
    """Every entry equal to ``value``."""

    value: float = 0.0

    def sample(self, key: int, shape: tuple) -> np.ndarray:
        return np.full(shape, float(self.value))


def Zero() -> Constant:
    """Every entry zero."""
    return Constant(0.0)


INIT_LAWS = Registry("initial law")
INIT_LAWS.register("gaussian", Gaussian, {"std": Param("number", 1.0, lo=0),
                                          "mean": Param("number", 0.0)})
INIT_LAWS.register("sphere", Sphere, {"radius": Param("number", 1.0, lo=0)})
INIT_LAWS.register("constant", Constant, {"value": Param("number", 0.0)})
INIT_LAWS.register("zero", Zero)
