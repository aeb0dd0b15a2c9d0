"""Rates of the gap in the width, with confidence intervals over seeds, and
Richardson extrapolation of observables to infinite width (docs/math.md §3).

Theory predicts two rates: the RMS gap of single networks (fluctuations, ∝ m^(−1/2))
and the gap of the seed-averaged function f̄_m − f_M (bias, ∝ 1/m).  With subsample
coupling a width-m member of an M-particle reference differs from it by the finite-
population factor (1/m − 1/M), so rates are fitted against the effective width
m_eff = (1/m − 1/M)⁻¹ when ``M`` is given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import streams


@dataclass(frozen=True)
class RateFit:
    """gap ≈ C · x^(−β), x the width or the effective width.

    beta, C : the least-squares fit on log–log axes of the seed-reduced gaps
    beta_lo, beta_hi : the interval at ``level``: ``interval = "jackknife"`` (the default)
        β ± t_{S−1} · its delete-one-seed jackknife standard error; ``"percentile"`` the
        bootstrap percentile interval (seeds resampled with replacement, ``n_boot`` times,
        from ``numpy.random.default_rng(seed)``).  Measured coverage of a nominal 90 %
        at t = 0, where the true rate is 1/2 (``python -m benchmarks coverage``, 400
        sweeps each): jackknife 0.86, 0.89, 0.89 and percentile 0.75, 0.84, 0.87 with
        5, 10, 20 seeds.
    x : "m" or "effective width (1/m - 1/M)^-1"
    """

    beta: float
    C: float
    beta_lo: float
    beta_hi: float
    level: float
    n_boot: int
    x: str
    interval: str = "jackknife"


INTERVALS = ("jackknife", "percentile")

# Measured coverage of the nominal 90 % intervals at 5, 10 and 20 seeds, at t = 0 against
# the exact limit where the true rate is 1/2 (``python -m benchmarks coverage``: 400
# sweeps per cell, binomial standard errors 0.015-0.023; benchmarks/results/coverage.md).
COVERAGE = {"jackknife": {5: 0.858, 10: 0.887, 20: 0.892},
            "percentile": {5: 0.750, 10: 0.838, 20: 0.870}}
FEW_SEEDS = 10   # below this many seeds the summaries warn that intervals are too short


def _jackknife(x, stat, S: int, level: float) -> tuple:
    """(lo, hi) = β ± t_{S−1} se_jack, se_jack from ``stat(keep)`` (β without a seed)."""
    from scipy import stats

    beta = stat(np.arange(S))
    jack = np.array([stat(np.delete(np.arange(S), s)) for s in range(S)])
    se = float(np.sqrt((S - 1) / S * np.sum((jack - jack.mean()) ** 2)))
    half = float(stats.t.ppf((1 + level) / 2, S - 1)) * se
    return beta - half, beta + half


def effective_widths(widths, M=None, coupling: str = "subsample") -> np.ndarray:
    """m; or against an M-particle reference, (1/m − 1/M)⁻¹ for subsample members (every
    m < M) and (1/m + 1/M)⁻¹ for independent ones (the two variances add)."""
    m = np.asarray(widths, dtype=float)
    if M is None:
        return m
    if coupling == "independent":
        return 1.0 / (1.0 / m + 1.0 / float(M))
    if coupling != "subsample":
        raise ValueError(f"coupling: expected 'subsample' or 'independent', got {coupling!r}")
    if np.any(m >= M):
        raise ValueError(f"effective widths need every width below the reference's {M}")
    return 1.0 / (1.0 / m - 1.0 / float(M))


def _slope(x, y) -> tuple:
    A = np.vstack([np.log(x), np.ones_like(x)]).T
    (b, a), *_ = np.linalg.lstsq(A, np.log(y), rcond=None)
    return -float(b), float(np.exp(a))


def _slopes(x, y) -> np.ndarray:
    """β of the least-squares fits of log y[:, b] on log x for every column b of y (W, B)."""
    lx = np.log(x)
    lx = lx - lx.mean()
    ly = np.log(y)
    return -(lx @ (ly - ly.mean(axis=0))) / (lx @ lx)


def _check(widths, gaps):
    gaps = np.asarray(gaps, dtype=float)
    if gaps.ndim != 2 or gaps.shape[0] != len(widths) or gaps.shape[0] < 2:
        raise ValueError(f"gaps must be (W, S) with W = {len(widths)} >= 2 widths, got {gaps.shape}")
    if not np.all(np.isfinite(gaps)) or np.any(gaps < 0):
        raise ValueError("gaps must be finite and >= 0")
    return gaps


def width_label(M, coupling) -> str:
    if M is None:
        return "m"
    return "effective width (1/m - 1/M)^-1" if coupling == "subsample" else \
        "effective width (1/m + 1/M)^-1"


def _check_interval(interval: str) -> None:
    if interval not in INTERVALS:
        raise ValueError(f"interval: expected one of {', '.join(INTERVALS)}, got {interval!r}")


def fit_rate(widths, gaps, *, M=None, coupling: str = "subsample", reduce: str = "rms",
             n_boot: int = 1000, level: float = 0.9, seed: int = 0,
             interval: str = "jackknife") -> RateFit:
    """Fit the rate of ``gaps (W, S)`` (per width, per seed) over ``widths (W,)``.

    Each width's gaps are reduced over seeds (``"rms"``: root mean square, the RMS gap of
    single networks; ``"mean"``), then log gap is fitted linearly in log x.  The
    interval (see :class:`RateFit`): ``"jackknife"``, the fit without each seed in turn;
    ``"percentile"``, the same fit on ``n_boot`` resamples of the seeds (drawn with
    replacement, all at once, as ``default_rng(seed).integers(0, S, (n_boot, S))``).
    """
    gaps = _check(widths, gaps)
    _check_interval(interval)
    red = {"rms": lambda g: np.sqrt(np.mean(g * g, axis=-1)),
           "mean": lambda g: np.mean(g, axis=-1)}.get(reduce)
    if red is None:
        raise ValueError(f"reduce: expected 'rms' or 'mean', got {reduce!r}")
    x = effective_widths(widths, M, coupling)
    beta, C = _slope(x, red(gaps))
    S = gaps.shape[1]
    if interval == "jackknife":
        lo, hi = _jackknife(x, lambda keep: _slope(x, red(gaps[:, keep]))[0], S, level)
    else:
        cols = streams.generator(seed).integers(0, S, (n_boot, S))
        boot = _slopes(x, red(gaps[:, cols]))   # (W, n_boot, S) reduced to (W, n_boot)
        lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return RateFit(beta, C, float(lo), float(hi), level, n_boot,
                   width_label(M, coupling), interval)


def bias_gaps(f_members, f_reference) -> np.ndarray:
    """(W,) ‖f̄_m − f_M‖ (L² over the sample): f̄_m the mean over seeds of the members'
    outputs ``f_members (W, S, N)``, f_M the reference's ``f_reference (N,)``."""
    return np.sqrt(np.mean((np.mean(f_members, axis=1) - f_reference) ** 2, axis=-1))


def fit_bias_rate(widths, f_members, f_reference, *, M=None, coupling: str = "subsample",
                  n_boot: int = 1000, level: float = 0.9, seed: int = 0,
                  interval: str = "jackknife") -> RateFit:
    """The rate of ‖f̄_m − f_M‖ (L² over the sample), f̄_m the mean over seeds of the
    members' outputs ``f_members (W, S, N)``; the interval as :func:`fit_rate`'s (the
    jackknife leaves a seed out of the mean; the bootstrap resamples seeds)."""
    f = np.asarray(f_members, dtype=float)
    ref = np.asarray(f_reference, dtype=float)
    if f.ndim != 3 or f.shape[0] != len(widths) or f.shape[2] != ref.shape[0]:
        raise ValueError(f"f_members must be (W, S, N) with N = {ref.shape[0]}, got {f.shape}")
    _check_interval(interval)

    x = effective_widths(widths, M, coupling)
    beta, C = _slope(x, bias_gaps(f, ref))
    S = f.shape[1]
    if interval == "jackknife":
        lo, hi = _jackknife(x, lambda keep: _slope(x, bias_gaps(f[:, keep], ref))[0], S, level)
        return RateFit(beta, C, float(lo), float(hi), level, n_boot,
                       width_label(M, coupling), interval)
    cols = streams.generator(seed).integers(0, S, (n_boot, S))
    boot = np.empty(n_boot)
    for a in range(0, n_boot, 64):   # seed means of 64 resamples at a time: (W, 64, N)
        w = np.zeros((min(64, n_boot - a), S))
        for k in range(w.shape[0]):
            w[k] = np.bincount(cols[a + k], minlength=S) / S
        fbar = np.einsum("bs,wsn->wbn", w, f)
        boot[a:a + w.shape[0]] = _slopes(x, np.sqrt(np.mean((fbar - ref) ** 2, axis=-1)))
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return RateFit(beta, C, float(lo), float(hi), level, n_boot,
                   width_label(M, coupling), interval)


def _pair_products(f_members, f_reference) -> np.ndarray:
    """(W, S, S) h(s, s') = mean_x D_s D_s' per width, D_s = f_s − f_M (checked shapes)."""
    f = np.asarray(f_members, dtype=float)
    ref = np.asarray(f_reference, dtype=float)
    if f.ndim != 3 or f.shape[1] < 2 or f.shape[2] != ref.shape[0]:
        raise ValueError(f"f_members must be (W, S, N) with S >= 2 and N = {ref.shape[0]}, "
                         f"got {f.shape}")
    D = f - ref
    return np.einsum("wsn,wtn->wst", D, D) / D.shape[2]


def _delete_one(G) -> np.ndarray:
    """(S, W) B without seed s, from the pair products G (W, S, S): the pairs that do
    not involve s, (Σ_{t≠t'} h − 2 Σ_{t≠s} h(s, t)) / ((S − 1)(S − 2))."""
    S = G.shape[1]
    diag = np.einsum("wss->ws", G)
    total = G.sum(axis=(1, 2)) - diag.sum(axis=1)             # (W,)
    rows = G.sum(axis=2) - diag                                # (W, S)
    return ((total[:, None] - 2 * rows) / ((S - 1) * (S - 2))).T


def bias_squared(f_members, f_reference) -> tuple:
    """The squared bias of the seed-averaged function, without the seeds' noise.

    ``f_members (W, S, N)``: the members' outputs on the test sample (S ≥ 2 independent
    members per width); ``f_reference (N,)``.  With D_s = f_s − f_M and h(s, s') =
    mean_x D_s D_s', returns ``(B, se)``, both (W,): B = the mean of h over pairs s ≠ s'
    = mean_x [D̄² − Var_s(D)/S], an unbiased estimate of ‖E f_m − f_M‖² (L² over the
    sample, the expectation over the members' seeds; it can be negative where the bias
    is below the noise), and its standard error from Hoeffding's variance of a U-statistic
    of degree 2, Var B = (4(S − 2) ζ₁ + 2 ζ₂) / (S(S − 1)), with ζ₂ = Var h estimated by
    the pairs and ζ₁ = Var_s E[h(s, ·) | s] by the spread of the row means less their own
    noise (clipped at 0).  (A delete-one-seed jackknife is erratic where ζ₁ = 0, as
    without a bias: at t = 0 of a 64-seed sweep it gave 0.26 to 1.75 times this value.)
    Over 400 synthetic sweeps of 20 seeds the root-mean-square se is 0.90–1.17 times the
    spread of B (tests/test_rates.py); with 6 seeds and a large bias it is 0.7 times.
    ‖f̄_m − f_M‖² (:func:`bias_gaps` squared) exceeds B by Var/S, the fluctuations that
    averaging S seeds leaves, which decay like 1/(S m) and hide a bias of order 1/m
    unless S ≫ m.
    """
    return _hoeffding(_pair_products(f_members, f_reference))


def _hoeffding(G) -> tuple:
    """(B, se) of :func:`bias_squared` from the pair products G (W, S, S)."""
    W, S, _ = G.shape
    B, se = np.empty(W), np.full(W, np.nan)
    off = ~np.eye(S, dtype=bool)
    for w in range(W):
        h = G[w][off].reshape(S, S - 1)   # row s: h(s, s') for s' ≠ s
        B[w] = h.mean()
        if S < 3:
            continue
        zeta2 = float(np.mean(h * h) - B[w] ** 2)
        rows = h.mean(axis=1)
        zeta1 = max(0.0, (float(np.var(rows, ddof=1)) - zeta2 / (S - 1)) * (S - 1) / (S - 2))
        se[w] = math.sqrt((4 * (S - 2) * zeta1 + 2 * zeta2) / (S * (S - 1)))
    return B, se


RESOLVED_Z = 3.0   # the fitted C² must be this many standard errors above 0


def weighted_power_fit(x, B, se) -> tuple:
    """(β, C) minimising Σ_w ((B_w − C² x_w^(−2β)) / se_w)²: for each β the best C² is a
    weighted linear fit, so β is a 1-D bounded search on [0, 4].  (nan, nan) when the
    bias is not resolved: the fitted C² is less than :data:`RESOLVED_Z` of its standard
    errors above 0, or β is at a bound of the search."""
    from scipy.optimize import minimize_scalar

    lx = np.log(x)

    def c2(beta):
        g = np.exp(-2 * beta * (lx - lx.mean())) / se
        return float(np.dot(g, B / se) / np.dot(g, g)), g

    def cost(beta):
        a, g = c2(beta)
        a = max(a, 0.0)
        return float(np.sum((B / se - a * g) ** 2))

    grid = np.linspace(0.0, 4.0, 81)
    b0 = grid[int(np.argmin([cost(b) for b in grid]))]
    opt = minimize_scalar(cost, bounds=(max(0.0, b0 - 0.05), min(4.0, b0 + 0.05)),
                          method="bounded", options={"xatol": 1e-10})
    beta = float(opt.x)
    a, g = c2(beta)
    if not a * math.sqrt(float(np.dot(g, g))) >= RESOLVED_Z or not 1e-6 < beta < 4.0 - 1e-6:
        return math.nan, math.nan
    return beta, float(math.sqrt(a) * math.exp(beta * lx.mean()))


def fit_debiased_bias_rate(widths, f_members, f_reference, *, M=None,
                           coupling: str = "subsample", level: float = 0.9) -> RateFit:
    """The rate of the bias ‖E f_m − f_M‖ ≈ C x^(−β) of the seed-averaged function, fitted
    to the debiased squares of :func:`bias_squared` (which may be negative) by weighted
    least squares, B_w ≈ C² x_w^(−2β) with weights 1/se_w²; β ± t_{S−1} times the
    jackknife standard error over seeds (the weights kept).  NaN where the fitted C² is
    not 3 standard errors above 0 (the bias is below what the seeds resolve), and NaN
    bounds where a delete-one-seed fit is not resolved.  Theory (docs/math.md §3) predicts
    β = 1 for the bias, against 1/2 for single networks.  Measured on synthetic sweeps
    (bias 3/m, noise 1/√m per member and point, 40 seeds, widths 16 … 1024): the 90 %
    interval covered β = 1 in 189 of 200 (tests/test_rates.py makes such sweeps)."""
    from scipy import stats

    f = np.asarray(f_members, dtype=float)
    x = effective_widths(widths, M, coupling)
    G = _pair_products(f, f_reference)
    B, se = _hoeffding(G)
    S = f.shape[1]
    nan = RateFit(math.nan, math.nan, math.nan, math.nan, level, 0, width_label(M, coupling),
                  "jackknife")
    if S < 3 or not (np.all(np.isfinite(se)) and np.all(se > 0)):
        return nan
    beta, C = weighted_power_fit(x, B, se)
    if not math.isfinite(beta):
        return nan
    # B without each seed, from the same pair products (one S × S matrix per width, not S)
    jack = np.array([weighted_power_fit(x, b, se)[0] for b in _delete_one(G)])
    if not np.all(np.isfinite(jack)):
        return RateFit(beta, C, math.nan, math.nan, level, 0, width_label(M, coupling), "jackknife")
    sej = float(np.sqrt((S - 1) / S * np.sum((jack - jack.mean()) ** 2)))
    half = float(stats.t.ppf((1 + level) / 2, S - 1)) * sej
    return RateFit(beta, C, beta - half, beta + half, level, 0, width_label(M, coupling),
                   "jackknife")


@dataclass(frozen=True)
class Extrapolation:
    """value ± error at m → ∞, from a fit in ``variable`` (1/m or 1/sqrt(m)); floats, or
    (N,) arrays for an observable given at N points."""

    value: float
    error: float
    variable: str
    residual: float


def _richardson(h, y):
    """(value, error, residual): linear fit y = v + a h on all points (along the first
    axis of y, one fit per column), and the same fit on the two smallest h; their
    difference is the error estimate; the residual is the RMS over all entries."""
    A = np.vstack([np.ones_like(h), h]).T
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = float(np.sqrt(np.mean((A @ coef - y) ** 2)))
    i = np.argsort(h)[:2]
    v2 = y[i[0]] - h[i[0]] * (y[i[1]] - y[i[0]]) / (h[i[1]] - h[i[0]])
    if y.ndim == 1:
        return float(coef[0]), abs(float(coef[0]) - float(v2)), resid
    return coef[0], np.abs(coef[0] - v2), resid


def extrapolate(widths, values, variable: str = "auto") -> Extrapolation:
    """Richardson extrapolation of an observable (test loss, f(x) at a point, ...) to
    infinite width from its values at ``widths`` (means over seeds), linear in 1/m, in
    1/√m, or (``"auto"``) in whichever of the two fits the values better.

    ``values`` (W,) gives a scalar value and error; ``values`` (W, N) (an observable at N
    points, f on a sample say) gives (N,) arrays, all in one variable: the one whose
    residual over all points is smaller."""
    m = np.asarray(widths, dtype=float)
    y = np.asarray(values, dtype=float)
    if m.ndim != 1 or y.ndim not in (1, 2) or y.shape[0] != m.size or m.size < 3:
        raise ValueError("extrapolate needs at least three widths with one value (or one row) each")
    fits = {"1/m": _richardson(1.0 / m, y), "1/sqrt(m)": _richardson(1.0 / np.sqrt(m), y)}
    if variable == "auto":
        variable = min(fits, key=lambda k: fits[k][2])
    if variable not in fits:
        raise ValueError(f"variable: expected '1/m', '1/sqrt(m)' or 'auto', got {variable!r}")
    v, err, resid = fits[variable]
    return Extrapolation(v, err, variable, resid)
