"""Samplers of docs/math.md §6 against their norm laws, written out independently here
(Bessel-sum closed form, quadrature of the stated densities, scipy.stats)."""
import math

import numpy as np
import pytest
from scipy import integrate, special, stats

import meanfield as mf
from meanfield.data import unit_ball_radius

N = 4000
P_MIN = 1e-3  # KS p-value threshold at a fixed seed


def es_cdf_even(d, rho):
    """φ² norm CDF for even d: with t = 2πR_dρ, ν = d/2 (integer),
    d ∫₀ᵗ J_ν(s)²/s ds = 1 − J₀(t)² − 2 Σ_{k=1}^{ν−1} J_k(t)² − J_ν(t)²."""
    nu = d // 2
    t = 2 * math.pi * unit_ball_radius(d) * np.asarray(rho, dtype=float)
    out = 1 - special.jv(0, t) ** 2 - special.jv(nu, t) ** 2
    for k in range(1, nu):
        out -= 2 * special.jv(k, t) ** 2
    return out


def cdf_by_quadrature(pdf, samples, lo=0.0):
    """Empirical points → CDF values by cumulative quadrature of ``pdf`` between them."""
    xs = np.sort(samples)
    out = np.empty_like(xs)
    acc, prev = 0.0, lo
    for i, x in enumerate(xs):
        acc += integrate.quad(pdf, prev, x, limit=200)[0]
        out[i], prev = acc, x
    return xs, out


def ks_p(sorted_x, cdf_vals):
    n = sorted_x.size
    i = np.arange(1, n + 1)
    dn = max(np.max(i / n - cdf_vals), np.max(cdf_vals - (i - 1) / n))
    return stats.kstwo.sf(dn, n)


@pytest.mark.parametrize("d", [2, 4, 8])
def test_eldan_shamir_norms_even_d(d):
    r = np.linalg.norm(mf.EldanShamir(d).sample(N, d), axis=1)
    assert stats.kstest(r, lambda x: es_cdf_even(d, x)).pvalue > P_MIN


def test_eldan_shamir_norms_odd_d_by_quadrature():
    d = 5
    R = unit_ball_radius(d)
    pdf = lambda rho: d / rho * special.jv(d / 2, 2 * math.pi * R * rho) ** 2 if rho > 0 else 0.0
    r = np.linalg.norm(mf.EldanShamir(d).sample(1500, 7), axis=1)
    xs, F = cdf_by_quadrature(pdf, r)
    assert ks_p(xs, F) > P_MIN


def test_eldan_shamir_heavy_tail():
    d, n = 4, 200_000
    r = np.linalg.norm(mf.EldanShamir(d).sample(n, 1), axis=1)
    R = unit_ball_radius(d)
    for t in (20.0, 3000.0):  # inside the tabulated range and in the asymptotic tail
        p = 1 - es_cdf_even(d, t)
        se = math.sqrt(p * (1 - p) / n)
        assert abs(np.mean(r > t) - p) <= 4 * se
        assert p == pytest.approx(d / (2 * math.pi ** 2 * R * t), rel=0.05)


@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_safran_lee_d_norms(alpha):
    d = 6
    law = mf.SafranLeeD(d, alpha)
    r = np.linalg.norm(law.sample(N, 3), axis=1)
    k = alpha * math.sqrt(d)
    cdf = lambda x: 0.5 * es_cdf_even(d, k * x) + 0.5 * stats.chi(d).cdf(math.sqrt(d) * x)
    assert stats.kstest(r, cdf).pvalue > P_MIN


@pytest.mark.parametrize("d", [3, 10])
def test_safran_lee_dprime_norms(d):
    c = special.gamma(d / 2) / (math.sqrt(math.pi) * special.gamma((d - 1) / 2))
    pdf = lambda x: c * x ** (d - 2) * (1 - x * x / 4) ** ((d - 3) / 2)
    r = np.linalg.norm(mf.SafranLeeDPrime(d).sample(1500, d), axis=1)
    assert r.max() <= 2.0
    xs, F = cdf_by_quadrature(pdf, r)
    assert ks_p(xs, F) > P_MIN


def test_simple_laws():
    d = 5
    r = np.linalg.norm(mf.data.Gaussian(d, 2.0).sample(N, 1), axis=1)
    assert stats.kstest(r / 2.0, stats.chi(d).cdf).pvalue > P_MIN
    r = np.linalg.norm(mf.data.Ball(d, 1.5).sample(N, 2), axis=1)
    assert stats.kstest(r, lambda x: np.clip(x / 1.5, 0, 1) ** d).pvalue > P_MIN
    X = mf.data.Sphere(d, 3.0).sample(N, 3)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 3.0)
    # directions uniform: mean direction 0, second moment I/d
    U = X / 3.0
    assert np.all(np.abs(U.mean(axis=0)) <= 4 * math.sqrt(1 / d / N))
    assert np.allclose(U.T @ U / N, np.eye(d) / d, atol=4 * math.sqrt(2 / N) / d)


def test_radial_laws_given_by_norm():
    law = mf.Radial(3, stats.uniform(0.5, 1.0))
    r = np.linalg.norm(law.sample(N, 1), axis=1)
    assert stats.kstest(r, stats.uniform(0.5, 1.0).cdf).pvalue > P_MIN
    law = mf.Radial.from_density(4, lambda x: x ** 2, 0.0, 1.0)
    r = np.linalg.norm(law.sample(N, 2), axis=1)
    assert stats.kstest(r, lambda x: np.clip(x, 0, 1) ** 3).pvalue > P_MIN
    law = mf.Radial(2, lambda n, rng: rng.exponential(size=n))
    r = np.linalg.norm(law.sample(N, 3), axis=1)
    assert stats.kstest(r, stats.expon.cdf).pvalue > P_MIN


def test_seeded_and_validated():
    for law in (mf.EldanShamir(3), mf.SafranLeeD(4), mf.SafranLeeDPrime(4), mf.data.Ball(3)):
        assert np.array_equal(law.sample(10, 5), law.sample(10, 5))
        assert not np.array_equal(law.sample(10, 5), law.sample(10, 6))
    with pytest.raises(ValueError, match="alpha"):
        mf.SafranLeeD(4, alpha=0.5)
    with pytest.raises(ValueError, match="d must be"):
        mf.data.Gaussian(0)
    with pytest.raises(ValueError, match="density"):
        mf.Radial.from_density(3, lambda x: -x, 0, 1)


def test_targets():
    X = np.array([[0.0, 0.0], [0.6, 0.8], [3.0, 4.0], [0.3, 0.4]])
    np.testing.assert_allclose(mf.ReluNorm(1.0)(X), [1.0, 0.0, 0.0, 0.5])
    np.testing.assert_allclose(mf.ReluNorm(2.0)(X), [2.0, 1.0, 0.0, 1.5])
    np.testing.assert_array_equal(mf.BallIndicator(1.0)(X), [1, 1, 0, 1])
    np.testing.assert_allclose(mf.RadialTarget(np.cos)(X), np.cos([0, 1, 5, 0.5]))
    t = mf.two_layer(2, 10, seed=0)
    np.testing.assert_allclose(mf.Teacher(t)(X), t.forward_numpy(X), rtol=1e-12)
