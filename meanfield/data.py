"""Radial input distributions (docs/math.md §6): seeded samplers with their norm laws.

Every law here is radial: x = ρ·θ with θ uniform on S^{d−1} and ρ = ‖x‖ drawn from the
law's norm distribution.  Each law has

- ``sample(n, rng) -> X (n, d)``  (``rng``: a numpy Generator or an integer seed),
- ``norm_pdf(ρ)`` and ``norm_cdf(ρ)``: the density and distribution function of ‖x‖.

Laws: :class:`Gaussian` N(0, s²I), :class:`Sphere`, :class:`Ball`, :class:`Radial`
(any norm law), :class:`EldanShamir` (the φ² law), :class:`SafranLeeD` ([SL] D_d) and
:class:`SafranLeeDPrime` ([SL] D′_d).
"""
from __future__ import annotations

from typing import Any

from numpy.typing import ArrayLike

import math

import numpy as np
from scipy import special, stats

from . import streams
from .registry import Param, Registry


def as_rng(rng) -> np.random.Generator:
    """A numpy Generator from a Generator or an integer seed."""
    return streams.generator(rng)


def uniform_directions(n: int, d: int, rng) -> np.ndarray:
    """n points uniform on the unit sphere S^{d−1}, shape (n, d)."""
    g = as_rng(rng).standard_normal((n, d))
    nrm = np.linalg.norm(g, axis=1, keepdims=True)
    nrm[nrm == 0] = 1.0
    return g / nrm


def _check_d(d) -> int:
    if int(d) != d or d < 1:
        raise ValueError(f"d must be a positive integer, got {d}")
    return int(d)


class RadialLaw:
    """Base class: a radial law on R^d given by the law of ‖x‖ (subclasses give it)."""

    d: int

    def sample_norms(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """n i.i.d. points, shape (n, d)."""
        if int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n}")
        rng = as_rng(rng)
        rho = self.sample_norms(int(n), rng)
        return rho[:, None] * uniform_directions(int(n), self.d, rng)

    def __call__(self, n: int, rng=None) -> np.ndarray:
        return self.sample(n, rng)

    def norm_pdf(self, rho: ArrayLike) -> np.ndarray:
        raise NotImplementedError

    def norm_cdf(self, rho: ArrayLike) -> np.ndarray:
        raise NotImplementedError


class _Tabulated:
    """Inverse-CDF sampling from a norm density tabulated on a grid (cumulative
    trapezoid).  Beyond the grid an optional tail P(ρ > r) = p_tail · r_max / r is used."""

    def __init__(self, grid: np.ndarray, pdf: np.ndarray, tail: bool = False):
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
        self.grid = grid
        self.cdf = cdf if tail else cdf / cdf[-1]
        self.tail = tail

    def ppf(self, u: np.ndarray) -> np.ndarray:
        top = self.cdf[-1]
        out = np.interp(u, self.cdf, self.grid)
        if self.tail:
            hi = u > top
            out[hi] = self.grid[-1] * (1.0 - top) / (1.0 - u[hi])
        return out

    def cdf_at(self, rho):
        rho = np.asarray(rho, dtype=float)
        out = np.interp(rho, self.grid, self.cdf)
        if self.tail:
            hi = rho > self.grid[-1]
            out = np.where(hi, 1.0 - (1.0 - self.cdf[-1]) * self.grid[-1] / np.maximum(rho, 1e-300),
                           out)
        return out


class Gaussian(RadialLaw):
    """N(0, s² I_d); ‖x‖/s ~ χ_d."""

    def __init__(self, d: int, s: float = 1.0):
        self.d = _check_d(d)
        if not s > 0:
            raise ValueError(f"Gaussian: s must be > 0, got {s}")
        self.s = float(s)
        self._chi = stats.chi(self.d, scale=self.s)

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        return self.s * as_rng(rng).standard_normal((int(n), self.d))

    def sample_norms(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.linalg.norm(self.sample(n, rng), axis=1)

    def norm_pdf(self, rho: ArrayLike) -> np.ndarray:
        return self._chi.pdf(rho)

    def norm_cdf(self, rho: ArrayLike) -> np.ndarray:
        return self._chi.cdf(rho)


class Sphere(RadialLaw):
    """Uniform on the sphere of the given radius."""

    def __init__(self, d: int, radius: float = 1.0):
        self.d = _check_d(d)
        if not radius > 0:
            raise ValueError(f"Sphere: radius must be > 0, got {radius}")
        self.radius = float(radius)

    def sample_norms(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.full(n, self.radius)

    def norm_cdf(self, rho: ArrayLike) -> np.ndarray:
        return (np.asarray(rho, dtype=float) >= self.radius).astype(float)


class Ball(RadialLaw):
    """Uniform in the ball of the given radius: P(‖x‖ ≤ ρ) = (ρ/R)^d."""

    def __init__(self, d: int, radius: float = 1.0):
        self.d = _check_d(d)
        if not radius > 0:
            raise ValueError(f"Ball: radius must be > 0, got {radius}")
        self.radius = float(radius)

    def sample_norms(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.radius * rng.random(n) ** (1.0 / self.d)

    def norm_pdf(self, rho: ArrayLike) -> np.ndarray:
        r = np.asarray(rho, dtype=float) / self.radius
        return np.where((r >= 0) & (r <= 1), self.d * r ** (self.d - 1) / self.radius, 0.0)

    def norm_cdf(self, rho: ArrayLike) -> np.ndarray:
        return np.clip(np.asarray(rho, dtype=float) / self.radius, 0.0, 1.0) ** self.d


class Radial(RadialLaw):
    """A radial law with a given norm law.

    ``norm`` is a frozen scipy.stats distribution (sampled through its ``ppf`` with
    this law's rng) or a callable ``norm(n, rng) -> ρ (n,)``.  Use
    :meth:`from_density` for a norm density on an interval.
    """

    def __init__(self, d: int, norm: Any):
        self.d = _check_d(d)
        self.norm = norm
        if not (callable(norm) or hasattr(norm, "ppf")):
            raise TypeError("norm must be a frozen scipy.stats distribution or a callable (n, rng) -> norms")

    @classmethod
    def from_density(cls, d: int, pdf, a: float, b: float, points: int = 20001) -> "Radial":
        """Norm density ``pdf`` on [a, b] (normalised here), sampled by inverse CDF."""
        if not (0 <= a < b and math.isfinite(b)):
            raise ValueError(f"from_density: need 0 <= a < b < inf, got a={a}, b={b}")
        grid = np.linspace(a, b, points)
        dens = np.asarray(pdf(grid), dtype=float)
        if (dens < 0).any() or not np.isfinite(dens).all() or dens.sum() <= 0:
            raise ValueError("from_density: the density must be finite, >= 0 and not all zero")
        tab = _Tabulated(grid, dens)
        law = cls(d, lambda n, rng: tab.ppf(rng.random(n)))
        law._tab = tab
        return law

    def sample_norms(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if hasattr(self.norm, "ppf"):
            rho = self.norm.ppf(rng.random(n))
        else:
            rho = np.asarray(self.norm(n, rng), dtype=float)
        if rho.shape != (n,) or (rho < 0).any() or not np.isfinite(rho).all():
            raise ValueError("the norm law must give n finite, non-negative norms")
        return rho

    def norm_cdf(self, rho: ArrayLike) -> np.ndarray:
        if hasattr(self.norm, "cdf"):
            return self.norm.cdf(rho)
        if hasattr(self, "_tab"):
            return self._tab.cdf_at(rho)
        raise NotImplementedError("norm_cdf needs a scipy distribution or from_density")


def unit_ball_radius(d: int) -> float:
    """R_d = π^{−1/2} Γ(d/2 + 1)^{1/d}: radius of the ball of unit volume in R^d."""
    return math.exp(special.gammaln(d / 2 + 1) / d) / math.sqrt(math.pi)


class EldanShamir(RadialLaw):
    """The Eldan–Shamir φ² law: density φ(x)², φ the Fourier transform of the indicator
    of the unit-volume ball.  Norm density γ(ρ) = (d/ρ) J²_{d/2}(2π R_d ρ).

    Sampling: inverse CDF of γ tabulated by the trapezoid rule on t = 2πR_d ρ ∈ [0, T]
    (step 0.01, T = ``t_max``); beyond T the tail uses P(t' > t) ∝ 1/t, the asymptotic
    form (relative error O(1/T) on a tail of mass ≈ d/(πT)).
    """

    def __init__(self, d: int, t_max: float = 4000.0):
        self.d = _check_d(d)
        self.R = unit_ball_radius(self.d)
        self.nu = self.d / 2.0
        self.t_max = float(t_max)
        t = np.linspace(0.0, self.t_max, int(self.t_max / 0.01) + 1)
        pdf_t = np.empty_like(t)
        pdf_t[1:] = self.d * special.jv(self.nu, t[1:]) ** 2 / t[1:]
        pdf_t[0] = 0.0 if self.d > 1 else self.d * 0.5  # t^{d-1} behaviour at 0
        self._tab = _Tabulated(t, pdf_t, tail=True)
        self._c = 2.0 * math.pi * self.R  # t = c ρ

    def sample_norms(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.norm_ppf(rng.random(n))

    def norm_ppf(self, q: ArrayLike) -> np.ndarray:
        """The quantile function of the norm law, at ``q`` (array) in [0, 1]."""
        return self._tab.ppf(q) / self._c

    def norm_pdf(self, rho: ArrayLike) -> np.ndarray:
        rho = np.asarray(rho, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = self.d / rho * special.jv(self.nu, self._c * rho) ** 2
        return np.where(rho > 0, out, 0.0)

    def norm_cdf(self, rho: ArrayLike) -> np.ndarray:
        return self._tab.cdf_at(self._c * np.asarray(rho, dtype=float))


class SafranLeeD(RadialLaw):
    """[SL] D_d = ½ μ̄_d + ½ N(0, I_d/d), μ̄_d the φ² law scaled by 1/(α√d)."""

    def __init__(self, d: int, alpha: float = 1.0):
        self.d = _check_d(d)
        if not alpha >= 1:
            raise ValueError(f"SafranLeeD: alpha must be >= 1, got {alpha}")
        self.alpha = float(alpha)
        self._es = EldanShamir(self.d)
        self._k = self.alpha * math.sqrt(self.d)  # μ̄: ρ = ρ_φ / k
        self._g = Gaussian(self.d, 1.0 / math.sqrt(self.d))

    def sample_norms(self, n: int, rng: np.random.Generator) -> np.ndarray:
        pick = rng.random(n) < 0.5
        rho = self._g.sample_norms(n, rng)
        rho[pick] = self._es.sample_norms(int(pick.sum()), rng) / self._k
        return rho

    def norm_pdf(self, rho: ArrayLike) -> np.ndarray:
        rho = np.asarray(rho, dtype=float)
        return 0.5 * self._k * self._es.norm_pdf(self._k * rho) + 0.5 * self._g.norm_pdf(rho)

    def norm_cdf(self, rho: ArrayLike) -> np.ndarray:
        rho = np.asarray(rho, dtype=float)
        return 0.5 * self._es.norm_cdf(self._k * rho) + 0.5 * self._g.norm_cdf(rho)


class SafranLeeDPrime(RadialLaw):
    """[SL] D′_d: x = x₁ + x₂ with x₁, x₂ i.i.d. uniform on S^{d−1} (‖x‖ ≤ 2)."""

    def __init__(self, d: int):
        self.d = _check_d(d)
        if self.d < 2:
            raise ValueError("SafranLeeDPrime needs d >= 2")

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        rng = as_rng(rng)
        return uniform_directions(int(n), self.d, rng) + uniform_directions(int(n), self.d, rng)

    def sample_norms(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.linalg.norm(self.sample(n, rng), axis=1)

    def norm_pdf(self, rho: ArrayLike) -> np.ndarray:
        d = self.d
        rho = np.asarray(rho, dtype=float)
        logc = special.gammaln(d / 2) - 0.5 * math.log(math.pi) - special.gammaln((d - 1) / 2)
        inside = (rho > 0) & (rho < 2)
        r = np.where(inside, rho, 1.0)
        val = np.exp(logc + (d - 2) * np.log(r) + (d - 3) / 2 * np.log1p(-r * r / 4))
        return np.where(inside, val, 0.0)

    def norm_cdf(self, rho: ArrayLike) -> np.ndarray:
        # ‖x‖² = 2 + 2t with t = ⟨x₁, x₂⟩, (1 + t)/2 ~ Beta((d−1)/2, (d−1)/2)
        rho = np.clip(np.asarray(rho, dtype=float), 0.0, 2.0)
        return stats.beta((self.d - 1) / 2, (self.d - 1) / 2).cdf(rho ** 2 / 4)


# ----------------------------------------------------------------------------------
# the registry (Python API and configurations): one registration per law
# ----------------------------------------------------------------------------------
def _resolve_norm(norm: dict) -> dict:
    """Validate ``{dist = "<scipy.stats continuous law>", <its parameters>}`` (a norm law
    on [0, ∞)); errors are ValueError(".key: message") for the configuration reader."""
    dist_name = norm.get("dist")
    if dist_name is None:
        raise ValueError(".dist: required (a string)")
    if not isinstance(dist_name, str):
        raise ValueError(f".dist: expected a string, got {dist_name!r}")
    dist = getattr(stats, dist_name, None)
    if not isinstance(dist, stats.rv_continuous):
        raise ValueError(f".dist: expected the name of a continuous scipy.stats distribution, "
                         f"got {dist_name!r}")
    params = {}
    for k, v in norm.items():
        if k == "dist":
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f".{k}: expected a finite number, got {v!r}")
        params[k] = float(v)
    try:
        frozen = dist(**params)
        frozen.ppf(0.5)
    except Exception as e:  # scipy says which parameter is wrong
        raise ValueError(f": bad parameters for {dist_name}: {e}") from None
    if frozen.support()[0] < 0:
        raise ValueError(f": the norm law must live on [0, inf), {dist_name} with {params} has "
                         f"support starting at {frozen.support()[0]}")
    return {"dist": dist_name, **params}


def _radial_from_norm(ctx, norm):
    params = {k: v for k, v in norm.items() if k != "dist"}
    return Radial(ctx["d"], getattr(stats, norm["dist"])(**params))


def _need_d2(ctx, params):
    if ctx["d"] < 2:
        raise ValueError("'safran-lee-dprime' needs model.d >= 2")


DISTRIBUTIONS = Registry("data distribution")
_pos = dict(lo=0, strict=True)
DISTRIBUTIONS.register("gaussian", Gaussian, {
    "std": Param("number", lambda ctx: 1.0 / math.sqrt(ctx["d"]), **_pos,
                 doc="standard deviation s (default 1/sqrt d)")},
    build=lambda ctx, std: Gaussian(ctx["d"], std))
DISTRIBUTIONS.register("sphere", Sphere, {"radius": Param("number", 1.0, **_pos)},
                       build=lambda ctx, radius: Sphere(ctx["d"], radius))
DISTRIBUTIONS.register("ball", Ball, {"radius": Param("number", 1.0, **_pos)},
                       build=lambda ctx, radius: Ball(ctx["d"], radius))
DISTRIBUTIONS.register("radial", Radial, {
    "norm": Param("table", resolve=_resolve_norm,
                  doc='law of ‖x‖: {dist = "<scipy.stats law>", <its parameters>}')},
    build=_radial_from_norm)
DISTRIBUTIONS.register("eldan-shamir", EldanShamir, build=lambda ctx: EldanShamir(ctx["d"]))
DISTRIBUTIONS.register("safran-lee-d", SafranLeeD, {"alpha": Param("number", 1.0, lo=1)},
                       build=lambda ctx, alpha: SafranLeeD(ctx["d"], alpha))
DISTRIBUTIONS.register("safran-lee-dprime", SafranLeeDPrime,
                       build=lambda ctx: SafranLeeDPrime(ctx["d"]), check=_need_d2)
