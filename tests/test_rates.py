"""Rate fits with bootstrap intervals and Richardson extrapolation on synthetic data with
known answers."""
import numpy as np
import pytest

from meanfield.discretization import rates as R

WIDTHS = np.array([16, 32, 64, 128, 256, 512, 1024])


def _gaps(beta, C, S, rng, M=None):
    """Per-seed gaps whose RMS over seeds is C x^-beta: |gap| = C x^-beta |z|, E z² = 1."""
    x = R.effective_widths(WIDTHS, M)
    return C * x[:, None] ** (-beta) * np.abs(rng.standard_normal((len(WIDTHS), S)))


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_fit_recovers_beta_and_the_interval_covers_it(beta):
    fit = R.fit_rate(WIDTHS, _gaps(beta, 2.0, 10, np.random.default_rng(1)), n_boot=500, seed=0)
    assert fit.beta_lo <= beta <= fit.beta_hi
    assert abs(fit.beta - beta) < 0.1 and fit.beta_hi - fit.beta_lo < 0.3
    # coverage of the 90 % interval over independent data sets (fixed seeds)
    cover = [R.fit_rate(WIDTHS, _gaps(beta, 2.0, 10, np.random.default_rng(100 + r)),
                        n_boot=300, seed=r) for r in range(60)]
    rate = np.mean([f.beta_lo <= beta <= f.beta_hi for f in cover])
    assert rate >= 0.75, rate


def test_effective_width_removes_the_finite_population_bias():
    M = 2048
    gaps = _gaps(0.5, 1.0, 40, np.random.default_rng(3), M=M)
    plain = R.fit_rate(WIDTHS, gaps, n_boot=200)
    eff = R.fit_rate(WIDTHS, gaps, M=M, n_boot=200)
    assert eff.beta_lo <= 0.5 <= eff.beta_hi
    assert plain.beta > eff.beta + 0.05       # against m the slope comes out too steep
    assert eff.x.startswith("effective")


def test_bias_rate_of_the_seed_averaged_function():
    """Members f_m = f_M + 3 b/m + ε_s with ε_s cancelling over the seeds (pairs ±):
    the seed average's gap is exactly 3‖b‖/m, so β = 1 whatever the fluctuations."""
    rng = np.random.default_rng(5)
    N = 200
    ref = np.sin(np.linspace(0, 3, N))
    bias = np.cos(np.linspace(0, 3, N))
    eps = rng.standard_normal((15, N))
    noise = np.concatenate([eps, -eps])            # (30, N), mean exactly zero
    f = np.stack([ref + 3.0 * bias / m + noise / np.sqrt(m) for m in WIDTHS])
    fit = R.fit_bias_rate(WIDTHS, f, ref, n_boot=100)
    assert fit.beta == pytest.approx(1.0, abs=1e-8)
    single = R.fit_rate(WIDTHS, np.sqrt(np.mean((f - ref) ** 2, axis=-1)), n_boot=100)
    assert abs(single.beta - 0.5) < 0.1          # single networks: fluctuations dominate


def test_richardson_extrapolation():
    m = np.array([64, 128, 256, 512])
    e = R.extrapolate(m, 2.0 + 3.0 / m)
    assert e.variable == "1/m" and e.value == pytest.approx(2.0, abs=1e-12) and e.error < 1e-12
    e = R.extrapolate(m, 1.5 - 0.7 / np.sqrt(m))
    assert e.variable == "1/sqrt(m)" and e.value == pytest.approx(1.5, abs=1e-12)
    noisy = 2.0 + 3.0 / m + np.array([1e-4, -1e-4, 5e-5, 0.0])
    e = R.extrapolate(m, noisy, variable="1/m")
    assert abs(e.value - 2.0) < 5 * max(e.error, 1e-4)


def test_richardson_extrapolation_of_an_observable_at_many_points():
    """values (W, N): every column extrapolated in the one variable that fits best, equal
    to the scalar extrapolation of each column in that variable."""
    m = np.array([64, 128, 256, 512])
    a, b = np.array([0.5, -1.0, 2.0]), np.array([3.0, 0.2, -4.0])
    e = R.extrapolate(m, a[None, :] + b[None, :] / m[:, None])
    assert e.variable == "1/m" and e.value.shape == (3,)
    assert np.allclose(e.value, a, atol=1e-12) and np.all(e.error < 1e-12)
    noisy = a[None, :] + b[None, :] / np.sqrt(m)[:, None] + 1e-4 * np.arange(12).reshape(4, 3) % 3
    e = R.extrapolate(m, noisy)
    assert e.variable == "1/sqrt(m)"
    for k in range(3):
        one = R.extrapolate(m, noisy[:, k], variable="1/sqrt(m)")
        assert e.value[k] == pytest.approx(one.value, rel=1e-12)
        assert e.error[k] == pytest.approx(one.error, rel=1e-9, abs=1e-15)


def test_bad_input():
    with pytest.raises(ValueError, match="gaps must be"):
        R.fit_rate([16], np.ones((1, 3)))
    with pytest.raises(ValueError, match="below the reference"):
        R.effective_widths([16, 4096], M=4096)
    with pytest.raises(ValueError, match="reduce"):
        R.fit_rate(WIDTHS, np.ones((len(WIDTHS), 3)), reduce="median")
    with pytest.raises(ValueError, match="at least three"):
        R.extrapolate([16, 32], [1.0, 2.0])


def test_jackknife_and_percentile_intervals():
    """The jackknife interval (the default) is centred on the fit, the percentile one is
    the bootstrap's; the bias rate takes both; an unknown interval is refused."""
    gaps = _gaps(0.5, 2.0, 10, np.random.default_rng(7))
    jk = R.fit_rate(WIDTHS, gaps)
    pc = R.fit_rate(WIDTHS, gaps, interval="percentile", n_boot=300)
    assert jk.interval == "jackknife" and pc.interval == "percentile" and jk.beta == pc.beta
    assert jk.beta - jk.beta_lo == pytest.approx(jk.beta_hi - jk.beta, rel=1e-12)
    assert (jk.beta_lo, jk.beta_hi) != (pc.beta_lo, pc.beta_hi)
    f = np.stack([np.sin(np.arange(20))[None, :] + np.random.default_rng(int(m)).standard_normal((6, 20)) / np.sqrt(m)
                  for m in WIDTHS])
    b = R.fit_bias_rate(WIDTHS, f, np.sin(np.arange(20)))
    assert b.interval == "jackknife" and b.beta_lo < b.beta < b.beta_hi
    with pytest.raises(ValueError, match="interval: expected one of jackknife, percentile"):
        R.fit_rate(WIDTHS, gaps, interval="bca")


def _members(bias_C, noise, S, rng, N=50):
    """(W, S, N) member outputs around f_M = 0: a bias C/m times a fixed profile of unit
    mean square plus independent noise of standard deviation noise/√m per point."""
    prof = np.sqrt(2) * np.sin(np.linspace(0, 2 * np.pi, N, endpoint=False) + 0.3)
    m = WIDTHS.astype(float)
    f = (bias_C / m)[:, None, None] * prof + \
        (noise / np.sqrt(m))[:, None, None] * rng.standard_normal((len(m), S, N))
    return f, np.zeros(N)


def test_debiased_squared_bias_against_brute_force_and_its_expectation():
    rng = np.random.default_rng(7)
    f, ref = _members(3.0, 1.0, 6, rng, N=20)
    B, se = R.bias_squared(f, ref)
    D = f - ref
    S = D.shape[1]
    pairs = [(s, t) for s in range(S) for t in range(S) if s != t]
    brute = np.array([np.mean([np.mean(D[w, s] * D[w, t]) for s, t in pairs])
                      for w in range(len(WIDTHS))])
    assert np.allclose(B, brute, rtol=1e-12, atol=1e-15)
    # the delete-one-seed values the rate's jackknife uses, against deleting each seed
    deleted = np.array([R.bias_squared(np.delete(f, s, axis=1), ref)[0] for s in range(S)])
    assert np.allclose(R._delete_one(R._pair_products(f, ref)), deleted, rtol=1e-12, atol=1e-15)
    # the same as ‖f̄ − f_M‖² − mean_x Var_s / S
    direct = np.mean(D.mean(axis=1) ** 2, axis=-1) - np.mean(D.var(axis=1, ddof=1), axis=-1) / S
    assert np.allclose(B, direct, rtol=1e-10, atol=1e-15)
    # unbiased: over 400 replicate sweeps of 20 seeds the mean of B is the squared bias (9/m²), within
    # 4 standard errors, while ‖f̄ − f_M‖² is above it by the noise / S
    out = [R.bias_squared(*_members(3.0, 1.0, 20, np.random.default_rng(1000 + r)))
           for r in range(400)]
    reps, ses = np.array([b for b, _ in out]), np.array([e for _, e in out])
    true = 9.0 / WIDTHS.astype(float) ** 2
    err = reps.std(axis=0, ddof=1) / np.sqrt(400)
    assert np.all(np.abs(reps.mean(axis=0) - true) < 4 * err)
    # the standard error is the spread of B over the replicates, with a bias (small m) and
    # without one (large m, where the noise term 2ζ₂ is all there is); and with no bias at all
    rms = np.sqrt(np.mean(ses ** 2, axis=0))
    assert np.all(np.abs(rms / reps.std(axis=0, ddof=1) - 1) < 0.2), rms / reps.std(axis=0)
    out = [R.bias_squared(*_members(0.0, 1.0, 20, np.random.default_rng(3000 + r)))
           for r in range(400)]
    reps, ses = np.array([b for b, _ in out]), np.array([e for _, e in out])
    rms = np.sqrt(np.mean(ses ** 2, axis=0))
    assert np.all(np.abs(rms / reps.std(axis=0, ddof=1) - 1) < 0.2), rms / reps.std(axis=0)
    naive = R.bias_gaps(*_members(3.0, 1.0, 6, np.random.default_rng(5))) ** 2
    assert naive[-1] > 5 * true[-1]      # at m = 1024: noise/S = 1.6e-4 against 8.6e-6


def test_debiased_bias_rate_finds_one_where_the_seed_mean_finds_one_half():
    """Bias 3/m under noise 1/√m per member: with 40 seeds the seed mean's gap decays at
    a rate between 1/2 and 1 (it is mostly noise beyond m ≈ 360), the debiased fit finds 1."""
    f, ref = _members(3.0, 1.0, 40, np.random.default_rng(3))
    naive = R.fit_bias_rate(WIDTHS, f, ref)
    fit = R.fit_debiased_bias_rate(WIDTHS, f, ref)
    assert naive.beta_hi < 0.95      # 0.86 [0.82, 0.90]: the noise left by 40 seeds
    assert fit.beta_lo <= 1.0 <= fit.beta_hi and abs(fit.beta - 1) < 0.15
    assert fit.C == pytest.approx(3.0, rel=0.3)
    # no bias at all: not resolved (C² within 3 standard errors of 0), in 20 of 20 sweeps
    for r in range(20):
        g, ref = _members(0.0, 1.0, 40, np.random.default_rng(100 + r))
        assert np.isnan(R.fit_debiased_bias_rate(WIDTHS, g, ref).beta)
    with pytest.raises(ValueError, match="S >= 2"):
        R.bias_squared(f[:, :1], ref)
