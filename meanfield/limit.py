"""The exact infinite-width, infinite-data limit of rotation-invariant problems
(docs/math.md §8).

For a two-layer network f(x) = ∫ v σ(u·x + c) dμ (+ b) trained on x = ρξ (ρ from a norm
law, ξ uniform on the sphere S^{d−1}) with a radial target y = g(ρ), and an initial law
whose u is rotation-invariant (û = u/‖u‖ uniform and independent of (‖u‖, c, v)), the
Wasserstein gradient flow keeps its symmetry: f and the residual e = f − g are radial,
every particle keeps its direction û, and only (r = ‖u‖, c, v) move.  With s = û·ξ
(density ∝ (1 − s²)^{(d−3)/2} on [−1, 1]) and the direction averages

    A0(a, c) = E_s σ(as + c),   A1(a, c) = E_s σ'(as + c),   A2(a, c) = E_s[s σ'(as + c)],

the limit is a flow of the law ν of (r, c, v) on R₊ × R × R:

    F(ρ) = ∫ v A0(rρ, c) dν (+ b),     e(ρ) = F(ρ) − g(ρ),     L = ½ E_ρ e(ρ)²,
    ṙ = −η_u v E_ρ[e ρ A2(rρ, c)],   ċ = −η_c v E_ρ[e A1(rρ, c)],   v̇ = −η_v E_ρ[e A0(rρ, c)],
    ḃ = −η_b E_ρ[e].

For ReLU the averages have closed forms (:func:`relu_averages`).  ν is discretised by a
quadrature rule of its initial law (fixed weights, moving nodes) and E_ρ by a tanh–sinh
rule of the norm law in its quantile variable, split at the target's kinks; the limit is then
an ODE, a velocity field like any other for :mod:`solvers` (groups "1.u", holding
r = ‖u‖, "1.c", "1.v" and "out.b": the names of the network's groups, so stages that
freeze or rescale them apply unchanged, and a norm-ball projection of "1.u" acts on r
exactly as on u), and its error is estimated by refining both rules
(:func:`refinement_error`).  Explicit Euler commutes with the reduction (the velocity
of u is parallel to u), so at equal dt the reduced scheme is the m → ∞ limit of the
particle scheme itself.

Supported: two-layer ReLU networks (with or without biases and output bias), the norm
laws ``Gaussian``, ``Ball``, ``Sphere``, ``SafranLeeDPrime`` and ``Radial`` with a scipy
distribution, the
radial targets (``ReluNorm``, ``BallIndicator``, ``RadialTarget`` with declared kinks),
initial laws ``Gaussian`` (mean 0) and ``Sphere`` for u, and ``Gaussian`` or
``Constant`` for c and v.  Anything else is refused with a one-line reason.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from solvers import Group

from . import data as D
from . import init as I
from . import targets as T
from .parallel import Schedule


# ----------------------------------------------------------------------------------
# direction averages (ReLU, closed form)
# ----------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _beta_half(d):
    """Z = B(½, (d − 1)/2) = ∫_{−1}^{1} (1 − s²)^{(d−3)/2} ds, by its recursion."""
    if d % 2 == 1:
        z, n = 2.0, 0.0
    else:
        z, n = math.pi, -0.5
    while n + 1.0 <= (d - 3) / 2.0 + 1e-9:
        n += 1.0
        z *= 2.0 * n / (2.0 * n + 1.0)
    return z


@njit(cache=True, error_model="numpy")
def _cdf_nonneg(t, d):
    """P(s ≤ t) for t ∈ [0, 1], s with density ∝ (1 − s²)^{(d−3)/2} on [−1, 1].

    With J_n(t) = I_n(t) / I_n(1), I_n(t) = ∫_{−1}^{t} (1 − s²)^n ds, the recursion
    (2n + 1) I_n = t(1 − t²)^n + 2n I_{n−1} reads J_n = J_{n−1} + t(1 − t²)^n / ((2n + 1) Z_n)
    with Z_n = I_n(1); every increment is ≥ 0 for t ≥ 0, so it is stable.  Started at
    J_0 = (t + 1)/2 (d odd) or J_{−1/2} = (arcsin t + π/2)/π (d even).
    """
    q = 1.0 - t * t
    if d % 2 == 1:
        j, n, z, p = 0.5 * (t + 1.0), 0.0, 2.0, 1.0        # p = q^n
    else:
        j, n, z = (math.asin(t) + 0.5 * math.pi) / math.pi, -0.5, math.pi
        p = 1.0 / math.sqrt(q) if q > 0.0 else 0.0
        if q <= 0.0:
            return 1.0
    top = (d - 3) / 2.0
    while n + 1.0 <= top + 1e-9:
        n += 1.0
        p *= q
        z *= 2.0 * n / (2.0 * n + 1.0)
        j += t * p / ((2.0 * n + 1.0) * z)
    return min(j, 1.0)


@njit(cache=True, error_model="numpy")
def relu_averages(a, c, d, z):
    """(A0, A1, A2) of σ = ReLU at a = rρ ≥ 0, bias c, input dimension d ≥ 2, with
    ``z`` = B(½, (d − 1)/2) (:func:`_beta_half`).

    τ = −c/a clipped to [−1, 1];  A1 = P(s > τ);  A2 = (1 − τ²)^{(d−1)/2} / ((d − 1) z);
    A0 = a A2 + c A1.  At a = 0: A1 = 1{c > 0}, A2 = 0, A0 = ReLU(c).
    """
    if a <= 0.0 or c >= a:
        if c > 0.0:
            return c, 1.0, 0.0
        return 0.0, 0.0, 0.0
    if c <= -a:
        return 0.0, 0.0, 0.0
    tau = -c / a
    if tau >= 0.0:
        a1 = 1.0 - _cdf_nonneg(tau, d)
    else:
        a1 = _cdf_nonneg(-tau, d)
    q = 1.0 - tau * tau
    a2 = q ** (0.5 * (d - 1)) / ((d - 1) * z)
    return a * a2 + c * a1, a1, a2


@njit(cache=True, error_model="numpy")
def _forward_at(r, c, v, w, rho, d, z, F, k):
    """F[k] = Σ_i w_i v_i A0(r_i ρ_k, c_i), summed in the order of i."""
    s = 0.0
    for i in range(r.shape[0]):
        wv = w[i] * v[i]
        if wv == 0.0:
            continue
        a0, _, _ = relu_averages(r[i] * rho[k], c[i], d, z)
        s += wv * a0
    F[k] = s


@njit(cache=True, error_model="numpy")
def _velocity_at(r, c, v, rho, wrho, e, d, z, cu, cc, cv, Vr, Vc, Vv, i):
    """The reduced velocities of node i, summed over the norm nodes in their order."""
    sr = 0.0
    sc = 0.0
    sv = 0.0
    for k in range(rho.shape[0]):
        a0, a1, a2 = relu_averages(r[i] * rho[k], c[i], d, z)
        we = wrho[k] * e[k]
        sr += we * rho[k] * a2
        sc += we * a1
        sv += we * a0
    Vr[i] = cu * v[i] * sr
    Vc[i] = cc * v[i] * sc
    Vv[i] = cv * sv


# Each output element is one thread's sum in a fixed order, so the serial and parallel
# kernels give the same bits whatever the number of threads.
@njit(cache=True, error_model="numpy")
def _forward(r, c, v, w, rho, d, z, F):
    """F[k] = Σ_i w_i v_i A0(r_i ρ_k, c_i) (written)."""
    for k in range(rho.shape[0]):
        _forward_at(r, c, v, w, rho, d, z, F, k)


@njit(parallel=True, cache=True, error_model="numpy")
def _forward_parallel(r, c, v, w, rho, d, z, F):
    for k in prange(rho.shape[0]):
        _forward_at(r, c, v, w, rho, d, z, F, k)


@njit(cache=True, error_model="numpy")
def _velocity(r, c, v, rho, wrho, e, d, z, cu, cc, cv, Vr, Vc, Vv):
    """The reduced velocities with coefficients cu, cc, cv (−η of each group; 0 skips)."""
    for i in range(r.shape[0]):
        _velocity_at(r, c, v, rho, wrho, e, d, z, cu, cc, cv, Vr, Vc, Vv, i)


@njit(parallel=True, cache=True, error_model="numpy")
def _velocity_parallel(r, c, v, rho, wrho, e, d, z, cu, cc, cv, Vr, Vc, Vv):
    for i in prange(r.shape[0]):
        _velocity_at(r, c, v, rho, wrho, e, d, z, cu, cc, cv, Vr, Vc, Vv, i)


# ----------------------------------------------------------------------------------
# quadrature rules
# ----------------------------------------------------------------------------------
def norm_quantile(law):
    """(Q, Qbar, description) of a radial law the limit supports: the quantile function
    Q(p) of ‖x‖ and Qbar(q) = Q(1 − q), accurate for small q; ValueError naming the law
    otherwise."""
    if isinstance(law, D.Gaussian):
        from scipy import stats

        chi = stats.chi(law.d, scale=law.s)
        return chi.ppf, chi.isf, f"Gaussian(d={law.d}, s={law.s})"
    if isinstance(law, D.Ball):
        R, d = law.radius, law.d
        return ((lambda p: R * np.asarray(p) ** (1.0 / d)),
                (lambda q: R * np.exp(np.log1p(-np.asarray(q)) / d)), f"Ball(d={d}, radius={R})")
    if isinstance(law, D.Sphere):
        R = law.radius
        const = lambda p: np.full_like(np.asarray(p, dtype=float), R)  # noqa: E731
        return const, const, f"Sphere(radius={R})"
    if isinstance(law, D.Radial) and hasattr(law.norm, "ppf") and hasattr(law.norm, "isf"):
        return law.norm.ppf, law.norm.isf, "Radial(scipy norm law)"
    if isinstance(law, D.SafranLeeDPrime):
        # ‖x‖² = 2 + 2s with B = (1 + s)/2 ~ Beta(a, a), a = (d−1)/2: ‖x‖ = 2√B, and
        # by symmetry 1 − B has the same law
        from scipy.special import betaincinv

        a = (law.d - 1) / 2
        return ((lambda p: 2.0 * np.sqrt(betaincinv(a, a, np.asarray(p)))),
                (lambda q: 2.0 * np.sqrt(1.0 - betaincinv(a, a, np.asarray(q)))),
                f"SafranLeeDPrime(d={law.d})")
    if isinstance(law, (D.EldanShamir, D.SafranLeeD)):
        raise ValueError(f"the data law {type(law).__name__} has a heavy-tailed norm "
                         "(P(‖x‖ > t) ~ 1/t): ReLU features have infinite second moment under "
                         "it, so the population loss of the limit does not exist")
    raise ValueError(f"the limit solver does not support the data law {type(law).__name__} "
                     "(supported: Gaussian, Ball, Sphere, SafranLeeDPrime, Radial with a scipy "
                     "norm law)")


def target_profile(target):
    """(g, kinks) of a radial target: its profile ρ ↦ g(ρ) and the norms where g is not
    smooth; ValueError for a target that is not radial."""
    if isinstance(target, T.ReluNorm):
        return target.profile, (target.r,)
    if isinstance(target, T.BallIndicator):
        return target.profile, (target.lam,)
    if isinstance(target, T.RadialTarget):
        return target.profile, tuple(getattr(target, "kinks", ()))
    raise ValueError(f"the limit needs a radial target (a RadialTarget: y = g(‖x‖)); "
                     f"{type(target).__name__} is not one")


def tanh_sinh(n: int):
    """(1 + x, 1 − x, weights) of the tanh–sinh rule with 2n + 1 nodes on [−1, 1]:
    x = tanh(π/2 sinh t) at t = kh, |k| ≤ n, h = 6.1/n (the outermost nodes 1e-300 from
    the ends).  Exponentially convergent for integrands analytic inside the interval,
    whatever their singularities at the ends; 1 ± x are computed without cancellation."""
    t = np.arange(-n, n + 1) * (6.1 / n)
    u = 0.5 * np.pi * np.sinh(t)
    e = np.exp(-2.0 * np.abs(u))
    small = 2.0 * e / (1.0 + e)                  # 1 − |x|
    big = 2.0 / (1.0 + e)                        # 1 + |x|
    one_plus = np.where(u >= 0, big, small)
    one_minus = np.where(u >= 0, small, big)
    w = (6.1 / n) * 0.5 * np.pi * np.cosh(t) * 4.0 * e / (1.0 + e) ** 2
    keep = w > 0
    return one_plus[keep], one_minus[keep], w[keep]


def norm_rule(law, n: int, kinks=()):
    """(ρ (K,), weights (K,)) with Σ w h(ρ) ≈ E h(‖x‖): a tanh–sinh rule of 2n + 1 nodes
    in the quantile variable p ∈ (0, 1), ρ = Q(p), on each piece between the CDFs of the
    kinks (E h(‖x‖) = ∫ h(Q(p)) dp, and Q's singularities at p = 0 and 1 are what the
    rule is made for).  A point mass (Sphere) is one node."""
    Q, Qbar, _ = norm_quantile(law)
    if isinstance(law, D.Sphere):
        return np.array([law.radius]), np.array([1.0])
    cuts = sorted({float(np.clip(law.norm_cdf(k), 0.0, 1.0)) for k in kinks} - {0.0, 1.0})
    edges = [0.0, *cuts, 1.0]
    op, om, wx = tanh_sinh(int(n))
    rhos, ws = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        half = 0.5 * (hi - lo)
        low = op <= om                           # nodes in the lower half of the piece
        rho = np.empty_like(op)
        rho[low] = Q(lo + half * op[low])
        if hi == 1.0:
            rho[~low] = Qbar(half * om[~low])
        else:
            rho[~low] = Q(hi - half * om[~low])
        rhos.append(rho)
        ws.append(half * wx)
    return np.concatenate(rhos), np.concatenate(ws)


def half_normal_rule(n: int):
    """(nodes y (n,), weights (n,)) of the n-point Gauss rule of the weight
    e^{−y²/2}/√(2π) on [0, ∞) (weights sum to ½): exact for polynomials in y of degree
    < 2n.  Its recurrence is computed by the discretised Stieltjes procedure on a
    100-point Gauss–Legendre rule of [0, 14] (exact to rounding for the polynomials of
    degree < 2n ≤ 80 times the weight, whose tail beyond 14 is below 1e-44; numpy's
    larger Legendre rules carry weight errors of 1e-14)."""
    x, wx = np.polynomial.legendre.leggauss(100)
    y = 7.0 * (x + 1.0)
    wd = 7.0 * wx * np.exp(-0.5 * y * y) / math.sqrt(2 * math.pi)
    alpha, beta = np.zeros(n), np.zeros(n)
    p_prev, p = np.zeros_like(y), np.ones_like(y)
    norm_prev = 1.0
    for k in range(n):
        norm = float(np.dot(wd, p * p))
        alpha[k] = float(np.dot(wd, y * p * p)) / norm
        beta[k] = norm if k == 0 else norm / norm_prev
        p_prev, p = p, (y - alpha[k]) * p - (beta[k] if k > 0 else 0.0) * p_prev
        norm_prev = norm
    J = np.diag(alpha) + np.diag(np.sqrt(beta[1:]), 1) + np.diag(np.sqrt(beta[1:]), -1)
    nodes, vecs = np.linalg.eigh(J)
    return nodes, beta[0] * vecs[0] ** 2


def _scalar_rule(law, n: int, what: str, kink_at_zero: bool = False):
    """(nodes, weights) of a scalar initial law: Gauss–Hermite for a Gaussian, one node
    for a constant.  With ``kink_at_zero`` (the bias c, where ReLU(c) has its kink) a
    centred Gaussian gets the Gauss rule of each half-line instead
    (:func:`half_normal_rule`, n nodes a side): exact for polynomials in |c|."""
    if isinstance(law, I.Constant):
        return np.array([float(law.value)]), np.array([1.0])
    if isinstance(law, I.Gaussian):
        if law.std == 0:
            return np.array([float(law.mean)]), np.array([1.0])
        if kink_at_zero and law.mean == 0:
            y, w = half_normal_rule(int(n))
            c = law.std * y
            return np.concatenate([-c[::-1], c]), np.concatenate([w[::-1], w])
        from scipy.special import roots_hermitenorm

        x, w = roots_hermitenorm(int(n))
        return law.mean + law.std * x, w / w.sum()
    raise ValueError(f"the limit solver does not support the initial law {type(law).__name__} "
                     f"for {what} (supported: Gaussian, Constant)")


def _radius_rule(law, d: int, n: int):
    """(nodes, weights) of r = ‖u‖ for a rotation-invariant initial law of u ∈ R^d."""
    if isinstance(law, I.Sphere):
        return np.array([float(law.radius)]), np.array([1.0])
    if isinstance(law, I.Gaussian) and law.mean == 0:
        # r = std·χ_d: with w = r²/(2 std²), r's law is the Gamma(d/2) law of w
        from scipy.special import roots_genlaguerre

        x, wts = roots_genlaguerre(int(n), d / 2 - 1)
        return law.std * np.sqrt(2 * x), wts / wts.sum()
    raise ValueError(f"the limit needs a rotation-invariant initial law of the first block's u "
                     f"(Gaussian with mean 0, or Sphere); {law!r} is not one")


def initial_rule(d: int, u_init, c_init, v_init, n: int, bias: bool = True):
    """(r, c, v, w) nodes and weights of the initial law of (‖u‖, c, v): a tensor rule
    of ``n`` nodes per random coordinate (Gauss–Laguerre in r²/(2 std²) for Gaussian u,
    ``n`` nodes on each side of 0 for a centred Gaussian c, Gauss–Hermite for v)."""
    r, wr = _radius_rule(u_init, d, n)
    c, wc = _scalar_rule(c_init, n, "1.c", kink_at_zero=True) if bias else (np.zeros(1), np.ones(1))
    v, wv = _scalar_rule(v_init, n, "1.v")
    R, C, V = np.meshgrid(r, c, v, indexing="ij")
    W = wr[:, None, None] * wc[None, :, None] * wv[None, None, :]
    return R.ravel(), C.ravel(), V.ravel(), W.ravel()


# ----------------------------------------------------------------------------------
# the limit of a two-layer network
# ----------------------------------------------------------------------------------
class TwoLayerLimit:
    """The reduced population flow of a two-layer ReLU network (a velocity field).

    Parameters
    ----------
    d : input dimension (≥ 2)
    law : the data law (a radial law, see :func:`norm_quantile`)
    target : a radial target (see :func:`target_profile`)
    nodes : nodes per random coordinate of the initial law (a tensor rule)
    norm_nodes : Gauss nodes of the norm law per piece between kinks
    u_init, c_init, v_init : initial laws (defaults those of
        :func:`meanfield.network.two_layer`: u ~ N(0, I/d), c, v ~ N(0, 1))
    bias : whether c exists (and moves);  out_bias : an output bias b (starts at 0)
    train : which of "u", "c", "v" move;  train_out_bias : whether b moves

    The state ``y`` is (r (n,), c (n,), v (n,), [b]) with ``n`` quadrature nodes of fixed
    weights ``w``; ``y0`` is the initial state.  Calling ``field(y, out, scales, step)``
    writes the reduced velocities and returns the population loss ½ E_ρ (F − g)².
    """

    def __init__(self, d: int, law, target, *, nodes: int = 16, norm_nodes: int = 64,
                 u_init=None, c_init=None, v_init=None, bias: bool = True,
                 out_bias: bool = False, activation: str = "relu", train=("u", "c", "v"),
                 train_out_bias: bool = True):
        if activation != "relu":
            raise ValueError(f"the limit solver supports activation 'relu' for now, not {activation!r}")
        d = int(d)
        if d < 2:
            raise ValueError(f"the limit needs d >= 2 (a sphere of directions), got d = {d}")
        if getattr(law, "d", d) != d:
            raise ValueError(f"the data law has d = {law.d} but the network takes d = {d}")
        self.d = d
        self.law = law
        self.law_description = norm_quantile(law)[2]
        self.g, self.kinks = target_profile(target)
        self.rho, self.wrho = norm_rule(law, norm_nodes, self.kinks)
        self.y_rho = self.g(self.rho)
        u_init = u_init or I.Gaussian(1 / math.sqrt(d))
        c_init = c_init or I.Gaussian(1.0)
        v_init = v_init or I.Gaussian(1.0)
        r, c, v, w = initial_rule(d, u_init, c_init, v_init, nodes, bias)
        self.n = r.shape[0]
        self.w = w
        self.z = _beta_half(d)
        self.bias = bool(bias)
        self.has_out_bias = bool(out_bias)
        n = self.n
        names = ("1.u", "1.c", "1.v")   # "1.u" holds r = ‖u‖ (the direction never moves)
        trains = ("u" in train, "c" in train and bias, "v" in train)
        self.groups = tuple(Group(nm, i * n, (n, 1), tr, key=(0, i))
                            for i, (nm, tr) in enumerate(zip(names, trains)))
        if out_bias:
            self.groups += (Group("out.b", 3 * n, (1, 1), bool(train_out_bias), key=(0, 3)),)
        self.size = 3 * n + (1 if out_bias else 0)
        self.y0 = np.concatenate([r, c, v, [0.0] if out_bias else []])
        self._F = np.zeros_like(self.rho)
        # the closed forms cost about (d − 3)/2 + 10 operations a pair (node, norm node)
        self._schedule = Schedule(float(self.n * self.rho.size * (d // 2 + 8)))

    def __repr__(self) -> str:
        return (f"TwoLayerLimit(d={self.d}, law={self.law_description}, kinks={self.kinks}, "
                f"{self.n} nodes, {self.rho.size} norm nodes, bias={self.bias}, "
                f"out_bias={self.has_out_bias})")

    # -- the state ------------------------------------------------------------------
    def split(self, y):
        """(r, c, v, b) views of a state (b = 0.0 without an output bias)."""
        n = self.n
        b = float(y[3 * n]) if self.has_out_bias else 0.0
        return y[:n], y[n:2 * n], y[2 * n:3 * n], b

    def profile(self, y, rho=None) -> np.ndarray:
        """F(ρ) = f(x) at ‖x‖ = ρ (default: the norm rule's nodes), shape like ``rho``."""
        r, c, v, b = self.split(y)
        rho = self.rho if rho is None else np.atleast_1d(np.asarray(rho, dtype=float))
        F = np.empty_like(rho)
        _forward(r, c, v, self.w, rho, self.d, self.z, F)   # off the hot path: serial
        return F + b

    def loss(self, y) -> float:
        """The population loss ½ E_ρ (F(ρ) − g(ρ))²."""
        e = self.profile(y) - self.y_rho
        return 0.5 * float(np.dot(self.wrho, e * e))

    def __call__(self, y, out, scales, step: int = 0) -> float:
        r, c, v, b = self.split(y)
        n = self.n
        s = np.asarray(scales, dtype=float)
        t = self._schedule.begin()
        try:
            (_forward_parallel if t else _forward)(r, c, v, self.w, self.rho, self.d, self.z, self._F)
            e = self._F + b - self.y_rho
            (_velocity_parallel if t else _velocity)(
                r, c, v, self.rho, self.wrho, e, self.d, self.z, -s[0], -s[1], -s[2],
                out[:n], out[n:2 * n], out[2 * n:3 * n])
        finally:
            self._schedule.end(t)
        if self.has_out_bias:
            out[3 * n] = -s[3] * float(np.dot(self.wrho, e))
        return 0.5 * float(np.dot(self.wrho, e * e))

    def default_scales(self) -> np.ndarray:
        return np.array([1.0 if g.trainable else 0.0 for g in self.groups])

    def velocity(self, y=None, scales=None):
        """(loss, velocity (size,)) at ``y`` (default: the initial state)."""
        y = self.y0 if y is None else y
        out = np.empty(self.size)
        val = self(y, out, self.default_scales() if scales is None else scales)
        return val, out

    def dissipation(self, velocity, scales=None) -> float:
        """−dL/dt along the flow: Σ_g Σ_i w_i V_i² / η_g (the output bias: V_b² / η_b)."""
        scales = self.default_scales() if scales is None else np.asarray(scales)
        total = 0.0
        for i, (g, eta) in enumerate(zip(self.groups, scales)):
            if eta == 0:
                continue
            V = g.view(velocity)[:, 0]
            wts = self.w if g.name != "out.b" else np.ones(1)
            total += float(np.dot(wts, V * V)) / eta
        return total

    def conserved(self, y) -> np.ndarray:
        """v² − r² − c² of every node: constant along the exact flow of a ReLU network
        (2-homogeneity) with all of u, c, v moving at one time scale."""
        r, c, v, _ = self.split(y)
        return v * v - r * r - c * c
