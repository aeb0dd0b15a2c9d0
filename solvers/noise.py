"""Counter-based Gaussian noise: a function of (seed, element index, step) alone.

Each standard normal is computed from a SplitMix64 hash of (seed, step, index) by
the Box–Muller transform, so the noise added to an element at a step never depends on
the order of evaluation or on the number of threads, and a run resumed at step n
draws exactly what the uninterrupted run drew.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, uint64

_GOLDEN = uint64(0x9E3779B97F4A7C15)
_M1 = uint64(0xBF58476D1CE4E5B9)
_M2 = uint64(0x94D049BB133111EB)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, inline="always")
def _mix(z):
    z = (z ^ (z >> uint64(30))) * _M1
    z = (z ^ (z >> uint64(27))) * _M2
    return z ^ (z >> uint64(31))


@njit(cache=True, inline="always")
def _key(seed, step, index):
    # three rounds of mixing so that nearby (seed, step, index) are decorrelated
    h = _mix(uint64(seed) * _GOLDEN + uint64(0x632BE59BD9B4E019))
    h = _mix(h ^ (uint64(step) * _GOLDEN + uint64(0x1F123BB5159A55E5)))
    return _mix(h ^ (uint64(index) * _GOLDEN))


@njit(cache=True)
def counter_normal(seed, step, index):
    """One N(0, 1) draw keyed by (seed, step, index) (non-negative integers)."""
    h = _key(seed, step, index)
    u1 = ((h >> uint64(11)) + uint64(1)) * _INV53          # (0, 1]
    h2 = _mix(h + _GOLDEN)
    u2 = (h2 >> uint64(11)) * _INV53                        # [0, 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(parallel=True, cache=True)
def add_noise(y, start, stop, sigma, seed, step):
    """y[start:stop] += sigma · ξ with ξ_i = counter_normal(seed, step, i)."""
    for i in prange(start, stop):
        y[i] += sigma * counter_normal(seed, step, i)


def normals(seed: int, step: int, start: int, stop: int) -> np.ndarray:
    """The draws :func:`add_noise` adds to elements start..stop−1 at ``step`` (tests, analysis)."""
    out = np.zeros(stop)
    add_noise(out, start, stop, 1.0, seed, step)
    return out[start:]
