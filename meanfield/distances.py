"""Distances between particle clouds (docs/math.md §3): W₂, sliced W₂ and MMD².

Clouds are arrays ``a (n, p)`` and ``b (n', p)`` of points with uniform weights (a
block's particles θ = (u, c, v), say).  The W₂ functions return the distance itself, not
its square.

- :func:`wasserstein2`: exact optimal transport with POT's network simplex
  (``ot.emd2``) on the squared Euclidean cost; the iteration limit is raised, and a
  solve that stops before optimality is an error (POT only warns).
- :func:`sliced_wasserstein2`: the root mean square over random directions (seeded,
  uniform on the sphere) of the exact one-dimensional W₂ between the projections,
  computed from the two quantile functions on the union of their breakpoints.
- :func:`mmd2`: the unbiased estimator of the squared maximum mean discrepancy with the
  Gaussian kernel exp(−‖x − y‖²/(2h²)); h by the median heuristic (the median distance
  between points of the pooled cloud) unless given.

Between two independent samples of one law in dimension p, W₂ itself decays only like
n^(−1/p): compare distances with their noise floor at the same sizes.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from . import streams

MAX_COST_ENTRIES = 200_000_000   # n · n' above this: subsample first (a dense cost matrix)


def _clouds(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if b.ndim == 1:
        b = b[:, None]
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"clouds must be (n, p) and (n', p) arrays, got {a.shape} and {b.shape}")
    if a.shape[0] < 1 or b.shape[0] < 1:
        raise ValueError("clouds must hold at least one point each")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("clouds must be finite")
    return a, b


def wasserstein2(a, b, *, num_itermax: int | None = None) -> float:
    """Exact W₂ between the uniform measures on the rows of ``a (n, p)`` and ``b (n', p)``.

    ``num_itermax`` bounds POT's network simplex (default max(10⁷, 100 n n')); reaching
    it raises RuntimeError instead of returning a suboptimal value.
    """
    import ot

    a, b = _clouds(a, b)
    n, m = a.shape[0], b.shape[0]
    if n * m > MAX_COST_ENTRIES:
        raise ValueError(f"a dense {n} x {m} cost matrix is too large; subsample the clouds")
    M = ot.dist(a, b, metric="sqeuclidean")
    limit = num_itermax if num_itermax is not None else max(10 ** 7, 100 * n * m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cost, log = ot.emd2(np.full(n, 1.0 / n), np.full(m, 1.0 / m), M, numItermax=int(limit),
                            log=True)
    if log.get("result_code") != 1:
        raise RuntimeError(f"exact W2 not solved to optimality ({log.get('warning')}); "
                           f"raise num_itermax (was {int(limit)})")
    return math.sqrt(max(float(cost), 0.0))


def _quantile_grid(n: int, m: int):
    """Indices into the sorted values and weights of the intervals on which both
    quantile functions (breakpoints k/n and l/m) are constant."""
    # breakpoints k/n and l/m, merged exactly as k·m and l·n over n·m
    ticks = np.union1d(np.arange(1, n + 1) * m, np.arange(1, m + 1) * n)
    lo = np.concatenate([[0], ticks[:-1]])
    mid2 = lo + ticks            # twice the midpoint of each interval, in units of 1/(n m)
    ix = np.minimum(mid2 // (2 * m), n - 1)
    iy = np.minimum(mid2 // (2 * n), m - 1)
    return ix, iy, (ticks - lo) / (n * m)


def _w2_1d_squared(x, y) -> np.ndarray:
    """Squared W₂ between uniform measures on the values x (n, …) and y (m, …), along
    the first axis (one value per remaining index)."""
    xs, ys = np.sort(x, axis=0), np.sort(y, axis=0)
    n, m = xs.shape[0], ys.shape[0]
    if n == m:
        return np.mean((xs - ys) ** 2, axis=0)
    ix, iy, width = _quantile_grid(n, m)
    d = xs[ix] - ys[iy]
    return np.tensordot(width, d * d, axes=(0, 0))


def sliced_wasserstein2(a, b, *, n_projections: int = 128, seed: int = 0) -> float:
    """Sliced W₂: (mean over ``n_projections`` directions θ of W₂²(θ·a, θ·b))^½, the
    directions uniform on the sphere from ``numpy.random.default_rng(seed)``."""
    a, b = _clouds(a, b)
    if int(n_projections) != n_projections or n_projections < 1:
        raise ValueError(f"n_projections must be a positive integer, got {n_projections}")
    p = a.shape[1]
    theta = streams.generator(seed).standard_normal((int(n_projections), p))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    return math.sqrt(float(np.mean(_w2_1d_squared(a @ theta.T, b @ theta.T))))


def median_bandwidth(a, b, *, max_points: int = 2000, seed: int = 0) -> float:
    """The median heuristic: the median Euclidean distance between distinct points of the
    pooled cloud (at most ``max_points`` of them, drawn with ``seed``)."""
    a, b = _clouds(a, b)
    z = np.concatenate([a, b])
    if z.shape[0] > max_points:
        z = z[streams.generator(seed).choice(z.shape[0], max_points, replace=False)]
    sq = np.sum(z * z, axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * z @ z.T
    iu = np.triu_indices(z.shape[0], 1)
    d = np.sqrt(np.maximum(d2[iu], 0.0))
    d = d[d > 0]
    if d.size == 0:
        raise ValueError("all points coincide: give a bandwidth")
    return float(np.median(d))


def _kernel_sum(x, y, h, block: int = 2048) -> float:
    """Σ_ij exp(−‖x_i − y_j‖²/(2h²)), in row blocks (no n × n' array at once)."""
    total = 0.0
    sy = np.sum(y * y, axis=1)
    for i in range(0, x.shape[0], block):
        xb = x[i:i + block]
        d2 = np.sum(xb * xb, axis=1)[:, None] + sy[None, :] - 2.0 * xb @ y.T
        total += float(np.exp(-np.maximum(d2, 0.0) / (2.0 * h * h)).sum())
    return total


def mmd2(a, b, bandwidth: float | None = None) -> float:
    """Unbiased MMD² between the clouds with the Gaussian kernel of ``bandwidth`` h
    (median heuristic when None).  Needs at least two points in each cloud; may be
    slightly negative (it is unbiased)."""
    a, b = _clouds(a, b)
    n, m = a.shape[0], b.shape[0]
    if n < 2 or m < 2:
        raise ValueError("the unbiased MMD needs at least two points in each cloud")
    h = median_bandwidth(a, b) if bandwidth is None else float(bandwidth)
    if not h > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    kaa = (_kernel_sum(a, a, h) - n) / (n * (n - 1))   # the diagonal is exp(0) = 1
    kbb = (_kernel_sum(b, b, h) - m) / (m * (m - 1))
    kab = _kernel_sum(a, b, h) / (n * m)
    return kaa + kbb - 2.0 * kab
