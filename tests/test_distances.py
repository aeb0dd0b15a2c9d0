"""meanfield.distances against independent oracles: scipy's assignment solver (equal
sizes, and unequal sizes by replicating points to a common size), 1-D sliced = exact,
and the closed form of the Gaussian-kernel MMD between two Gaussians."""
import math

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from meanfield import distances as D


def _w2_assignment(a, b):
    """W₂ by an optimal assignment after replicating both clouds to lcm(n, n') points."""
    n, m = len(a), len(b)
    k = n * m // math.gcd(n, m)
    A, B = np.repeat(a, k // n, axis=0), np.repeat(b, k // m, axis=0)
    C = ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)
    r, c = linear_sum_assignment(C)
    return math.sqrt(C[r, c].mean())


@pytest.mark.parametrize("n,m,p", [(40, 40, 3), (30, 45, 2), (24, 16, 5), (1, 7, 2)])
def test_exact_w2_against_assignment(n, m, p):
    rng = np.random.default_rng(n + m + p)
    a, b = rng.standard_normal((n, p)), rng.standard_normal((m, p)) + 0.5
    assert D.wasserstein2(a, b) == pytest.approx(_w2_assignment(a, b), rel=1e-10)
    assert D.wasserstein2(a, a) == pytest.approx(0.0, abs=1e-12)
    # a shift by δ moves W₂ to exactly ‖δ‖ between a cloud and its translate
    assert D.wasserstein2(a, a + np.array([3.0] + [0.0] * (p - 1))) == pytest.approx(3.0, rel=1e-12)


def test_iteration_limit_is_an_error():
    rng = np.random.default_rng(0)
    with pytest.raises(RuntimeError, match="not solved to optimality"):
        D.wasserstein2(rng.standard_normal((200, 3)), rng.standard_normal((150, 3)), num_itermax=10)


@pytest.mark.parametrize("n,m", [(50, 50), (37, 61), (1, 9)])
def test_sliced_equals_exact_in_one_dimension(n, m):
    rng = np.random.default_rng(n * m)
    a, b = rng.standard_normal((n, 1)), 2.0 * rng.standard_normal((m, 1)) + 1.0
    exact = _w2_assignment(a, b)
    assert D.sliced_wasserstein2(a, b, n_projections=3, seed=1) == pytest.approx(exact, rel=1e-12)


def test_sliced_is_seeded_and_below_exact():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((60, 4)), rng.standard_normal((80, 4)) * 1.5
    s1 = D.sliced_wasserstein2(a, b, n_projections=64, seed=5)
    assert s1 == D.sliced_wasserstein2(a, b, n_projections=64, seed=5)
    assert s1 != D.sliced_wasserstein2(a, b, n_projections=64, seed=6)
    assert s1 <= D.wasserstein2(a, b)   # each projection is 1-Lipschitz


def _gauss_kernel_mean(delta2, var, p, h):
    """E exp(−‖Z‖²/(2h²)) for Z ~ N(δ, var I_p), ‖δ‖² = delta2."""
    return (h * h / (h * h + var)) ** (p / 2) * math.exp(-delta2 / (2 * (h * h + var)))


def test_mmd2_is_unbiased_for_two_gaussians():
    """Mean over repetitions within 4 standard errors of the closed form."""
    p, h, s1, s2 = 3, 1.3, 1.0, 1.4
    mu = np.array([0.6, 0.0, 0.0])
    exact = (_gauss_kernel_mean(0.0, 2 * s1 ** 2, p, h) + _gauss_kernel_mean(0.0, 2 * s2 ** 2, p, h)
             - 2 * _gauss_kernel_mean(float(mu @ mu), s1 ** 2 + s2 ** 2, p, h))
    rng = np.random.default_rng(7)
    vals = np.array([D.mmd2(s1 * rng.standard_normal((40, p)), mu + s2 * rng.standard_normal((30, p)),
                            bandwidth=h) for _ in range(400)])
    se = vals.std(ddof=1) / math.sqrt(vals.size)
    assert abs(vals.mean() - exact) < 4 * se, (vals.mean(), exact, se)
    # one law against itself: the unbiased estimate averages to 0
    same = np.array([D.mmd2(rng.standard_normal((30, p)), rng.standard_normal((30, p)), bandwidth=h)
                     for _ in range(300)])
    assert abs(same.mean()) < 4 * same.std(ddof=1) / math.sqrt(same.size)


def test_median_bandwidth_and_bad_input():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((100, 2))
    d = np.sqrt(((a[:, None] - a[None]) ** 2).sum(-1))[np.triu_indices(100, 1)]
    assert D.median_bandwidth(a[:50], a[50:]) == pytest.approx(np.median(d), rel=1e-12)
    for bad in (lambda: D.wasserstein2(np.zeros((3, 2)), np.zeros((3, 3))),
                lambda: D.mmd2(np.zeros((1, 2)), np.zeros((3, 2))),
                lambda: D.sliced_wasserstein2(np.zeros((3, 2)), np.zeros((3, 2)), n_projections=0),
                lambda: D.wasserstein2(np.full((2, 2), np.nan), np.zeros((2, 2)))):
        with pytest.raises(ValueError):
            bad()
