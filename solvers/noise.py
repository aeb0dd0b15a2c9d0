"""Counter-based Gaussian numbers: functions of a key and integer counters alone.

Each standard normal is computed from a SplitMix64 hash of (key, a, b) by the
Box–Muller transform, so a draw never depends on the order of evaluation, on the
number of threads, or on how many other draws were made.  Streams are keyed:

- :func:`stream_key` folds any tuple of non-negative integers into one 64-bit key
  (a domain tag, a seed, a member, a group, ...);
- :func:`add_noise` adds σ·ξ to a group's slab, ξ keyed by (key, step, index within
  the group), so a particle's noise depends on its group's key, its index and the step
  alone: the same network draws the same noise alone or inside an ensemble, and a run
  resumed at step n draws exactly what the uninterrupted run drew;
- :func:`keyed_normals` fills an (n, k) array with draws keyed by (key, row, column):
  the first m rows of an (M, k) draw are the (m, k) draw.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, uint64

_GOLDEN = uint64(0x9E3779B97F4A7C15)
_M1 = uint64(0xBF58476D1CE4E5B9)
_M2 = uint64(0x94D049BB133111EB)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53
_MASK = (1 << 64) - 1

NOISE_DOMAIN = 0x4E4F495345  # stream_key(NOISE_DOMAIN, seed, *group key): Langevin noise


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


def _mix_py(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def stream_key(*parts: int) -> int:
    """One 64-bit key from non-negative integers (order matters; SplitMix64 folding)."""
    h = 0x243F6A8885A308D3
    for p in parts:
        p = int(p)
        if p < 0 or p >= 1 << 64:
            raise ValueError(f"stream keys are integers in [0, 2**64), got {p}")
        h = _mix_py((h ^ ((p * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & _MASK)) & _MASK)
    return h


@njit(cache=True)
def counter_normal(key, a, b):
    """One N(0, 1) draw keyed by (key, a, b) (non-negative integers)."""
    h = _key(key, a, b)
    u1 = ((h >> uint64(11)) + uint64(1)) * _INV53          # (0, 1]
    h2 = _mix(h + _GOLDEN)
    u2 = (h2 >> uint64(11)) * _INV53                        # [0, 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(parallel=True, cache=True)
def add_noise(y, start, stop, sigma, key, step):
    """y[start + i] += sigma · ξ_i for i < stop − start, ξ_i = counter_normal(key, step, i)."""
    for i in prange(stop - start):
        y[start + i] += sigma * counter_normal(key, step, i)


@njit(cache=True)
def _fill_normals(key, out):
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = counter_normal(key, i, j)


def keyed_normals(key: int, n: int, k: int) -> np.ndarray:
    """(n, k) standard normals, entry (i, j) keyed by (key, i, j)."""
    out = np.empty((int(n), int(k)))
    _fill_normals(uint64(key), out)
    return out


def normals(key: int, step: int, start: int, stop: int) -> np.ndarray:
    """The draws :func:`add_noise` adds to a group's entries start..stop−1 at ``step``
    (tests, analysis)."""
    out = np.zeros(stop)
    add_noise(out, 0, stop, 1.0, uint64(key), step)
    return out[start:]
