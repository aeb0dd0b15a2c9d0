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

For ReLU the averages have closed forms (:func:`relu_averages`), for smooth activations a
Gauss–Gegenbauer rule computes them (:func:`averages`, :func:`direction_rule`).  ν is
discretised by a quadrature rule of its initial law (fixed weights, moving nodes) and E_ρ
by a tanh–sinh rule of the norm law in its quantile variable, split at the target's
kinks; the limit is then an ODE, a velocity field like any other for :mod:`solvers`
(groups "1.u", holding r = ‖u‖, "1.c", "1.v" and "out.b": the names of the network's
groups, so stages that freeze or rescale them apply unchanged, and a norm-ball
projection of "1.u" acts on r exactly as on u), and its error is estimated by refining
the rules (the width sweep against the limit integrates it with half the nodes as
well).  Explicit Euler commutes with the reduction (the velocity of u is parallel to u),
so at equal dt the reduced scheme is the m → ∞ limit of the particle scheme itself.

:class:`TwoLayerLimit` is this flow; :class:`ThreeLayerLimit` the flow of an [RZG]
network of two blocks, whose first block reduces the same way and whose second block
(a, b, w) is integrated as it is (docs/math.md §8.1).

Supported: first blocks with ReLU (closed form) or erf, tanh, sigmoid, softplus
(quadrature), biases or not, an output bias, the identity or clipped output, frozen
groups; the norm laws ``Gaussian``, ``Ball``, ``Sphere``, ``SafranLeeDPrime``,
``Radial`` with a scipy distribution, and under bounded features (erf, tanh, sigmoid)
the heavy-tailed ``EldanShamir`` and ``SafranLeeD``; the radial targets (``ReluNorm``,
``BallIndicator``, ``RadialTarget`` with declared kinks); initial laws ``Gaussian``
(mean 0) and ``Sphere`` for the first block's u, and ``Gaussian``, ``Constant`` or
scalar ``Sphere`` laws for the other coordinates.  Anything else is refused with a
one-line reason.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from solvers import Group

from . import data as D
from . import init as I
from . import targets as T
from ._vmath import verf_d, vsigmoid_d, vsoftplus_d, vtanh_d
from .activations import ERF, RELU, SIGMOID, SOFTPLUS, TANH, act_deriv, act_value, activation_code
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
def _value_and_slope(code, x):
    """(σ(x), σ'(x)) in one evaluation for the smooth activations."""
    if code == ERF:
        return verf_d(x)
    if code == TANH:
        return vtanh_d(x)
    if code == SIGMOID:
        return vsigmoid_d(x)
    if code == SOFTPLUS:
        return vsoftplus_d(x)
    return act_value(code, x), act_deriv(code, x)


@njit(cache=True, error_model="numpy")
def averages(a, c, d, z, code, s, om):
    """(A0, A1, A2) of the activation ``code`` at a = rρ ≥ 0 and bias c: ReLU in closed
    form (:func:`relu_averages`), any other by the Gauss–Gegenbauer rule (s, om) of the
    direction cosine (:func:`direction_rule`)."""
    if code == RELU:
        return relu_averages(a, c, d, z)
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    for j in range(s.shape[0]):
        val, der = _value_and_slope(code, a * s[j] + c)
        a0 += om[j] * val
        a1 += om[j] * der
        a2 += om[j] * s[j] * der
    return a0, a1, a2


@njit(cache=True, error_model="numpy")
def _forward_at(r, c, v, w, rho, d, z, code, sd, od, F, Fabs, k):
    """F[k] = Σ_i w_i v_i A0(r_i ρ_k, c_i), summed in the order of i, and Fabs[k] the sum
    of the terms' absolute values (what bounds the sum's rounding error)."""
    s = 0.0
    sa = 0.0
    for i in range(r.shape[0]):
        wv = w[i] * v[i]
        if wv == 0.0:
            continue
        a0, _, _ = averages(r[i] * rho[k], c[i], d, z, code, sd, od)
        s += wv * a0
        sa += abs(wv * a0)
    F[k] = s
    Fabs[k] = sa


@njit(cache=True, error_model="numpy")
def _velocity_at(r, c, v, rho, wrho, e, d, z, code, sd, od, cu, cc, cv, Vr, Vc, Vv, i):
    """The reduced velocities of node i, summed over the norm nodes in their order."""
    sr = 0.0
    sc = 0.0
    sv = 0.0
    for k in range(rho.shape[0]):
        a0, a1, a2 = averages(r[i] * rho[k], c[i], d, z, code, sd, od)
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
def _forward(r, c, v, w, rho, d, z, code, sd, od, F, Fabs):
    """F[k] = Σ_i w_i v_i A0(r_i ρ_k, c_i) and Fabs[k] (written)."""
    for k in range(rho.shape[0]):
        _forward_at(r, c, v, w, rho, d, z, code, sd, od, F, Fabs, k)


@njit(parallel=True, cache=True, error_model="numpy")
def _forward_parallel(r, c, v, w, rho, d, z, code, sd, od, F, Fabs):
    for k in prange(rho.shape[0]):
        _forward_at(r, c, v, w, rho, d, z, code, sd, od, F, Fabs, k)


@njit(cache=True, error_model="numpy")
def _velocity(r, c, v, rho, wrho, e, d, z, code, sd, od, cu, cc, cv, Vr, Vc, Vv):
    """The reduced velocities with coefficients cu, cc, cv (−η of each group; 0 skips)."""
    for i in range(r.shape[0]):
        _velocity_at(r, c, v, rho, wrho, e, d, z, code, sd, od, cu, cc, cv, Vr, Vc, Vv, i)


@njit(parallel=True, cache=True, error_model="numpy")
def _velocity_parallel(r, c, v, rho, wrho, e, d, z, code, sd, od, cu, cc, cv, Vr, Vc, Vv):
    for i in prange(r.shape[0]):
        _velocity_at(r, c, v, rho, wrho, e, d, z, code, sd, od, cu, cc, cv, Vr, Vc, Vv, i)


# -- frozen features: the averages of every (node, norm node) pair, computed once -------
@njit(parallel=True, cache=True, error_model="numpy")
def _tables(r, c, rho, d, z, code, sd, od, A0, A1, A2):
    for i in prange(r.shape[0]):
        for k in range(rho.shape[0]):
            A0[i, k], A1[i, k], A2[i, k] = averages(r[i] * rho[k], c[i], d, z, code, sd, od)


@njit(cache=True, error_model="numpy")
def _forward_tables(v, w, A0, F, Fabs):
    """F[k] = Σ_i w_i v_i A0[i, k] and Fabs[k]: the sums of :func:`_forward` in the same
    order."""
    for k in range(A0.shape[1]):
        s = 0.0
        sa = 0.0
        for i in range(v.shape[0]):
            wv = w[i] * v[i]
            if wv == 0.0:
                continue
            s += wv * A0[i, k]
            sa += abs(wv * A0[i, k])
        F[k] = s
        Fabs[k] = sa


@njit(cache=True, error_model="numpy")
def _velocity_tables(v, rho, wrho, e, A0, A1, A2, cu, cc, cv, Vr, Vc, Vv):
    """:func:`_velocity` from the tables, the same sums in the same order."""
    for i in range(v.shape[0]):
        sr = 0.0
        sc = 0.0
        sv = 0.0
        for k in range(rho.shape[0]):
            we = wrho[k] * e[k]
            sr += we * rho[k] * A2[i, k]
            sc += we * A1[i, k]
            sv += we * A0[i, k]
        Vr[i] = cu * v[i] * sr
        Vc[i] = cc * v[i] * sc
        Vv[i] = cv * sv


# -- [RZG] networks: a first block (r, c, v ∈ R^k) under a second block (a ∈ R^k, b, w) --
@njit(cache=True, error_model="numpy")
def _deep_forward_at(r, c, v, w1, a, b, wv, w2, rho, d, z, code1, sd, od, code2, H, F, Fabs, Gam, kk):
    """At norm node kk: H[kk] = Σ_i w1_i v_i A0(r_i ρ, c_i) (R^k), F[kk] = Σ_i w2_i wv_i
    σ₂(a_i·H + b_i) and Γ[kk] = Σ_i w2_i wv_i σ₂'(a_i·H + b_i) a_i, each summed in the
    order of i."""
    k = v.shape[1]
    for j in range(k):
        H[kk, j] = 0.0
        Gam[kk, j] = 0.0
    for i in range(r.shape[0]):
        a0, _, _ = averages(r[i] * rho[kk], c[i], d, z, code1, sd, od)
        if a0 == 0.0:
            continue
        for j in range(k):
            H[kk, j] += w1[i] * v[i, j] * a0
    f = 0.0
    fa = 0.0
    for i in range(b.shape[0]):
        zz = b[i]
        for j in range(k):
            zz += a[i, j] * H[kk, j]
        ww = w2[i] * wv[i]
        term = ww * act_value(code2, zz)
        f += term
        fa += abs(term)
        dd = ww * act_deriv(code2, zz)
        for j in range(k):
            Gam[kk, j] += dd * a[i, j]
    F[kk] = f
    Fabs[kk] = fa


@njit(cache=True, error_model="numpy")
def _deep_first_at(r, c, v, rho, wrho, G, d, z, code1, sd, od, cu, cc, cv, Vr, Vc, Vv, i):
    """The velocities of first-block node i: the two-layer ones with the back-propagated
    signal G(ρ) = e(ρ) Γ(ρ) ∈ R^k in place of the residual."""
    k = v.shape[1]
    sr = 0.0
    sc = 0.0
    for j in range(k):
        Vv[i, j] = 0.0
    for kk in range(rho.shape[0]):
        a0, a1, a2 = averages(r[i] * rho[kk], c[i], d, z, code1, sd, od)
        vg = 0.0
        for j in range(k):
            vg += v[i, j] * G[kk, j]
        we = wrho[kk]
        sr += we * vg * rho[kk] * a2
        sc += we * vg * a1
        for j in range(k):
            Vv[i, j] += we * G[kk, j] * a0
    Vr[i] = cu * sr
    Vc[i] = cc * sc
    for j in range(k):
        Vv[i, j] *= cv


@njit(cache=True, error_model="numpy")
def _deep_second_at(a, b, wv, wrho, e, H, code2, ca, cb, cw, Va, Vb, Vw, i):
    """The velocities of second-block node i: E_ρ[e w σ₂' H], E_ρ[e w σ₂'], E_ρ[e σ₂]."""
    k = a.shape[1]
    sb = 0.0
    sw = 0.0
    for j in range(k):
        Va[i, j] = 0.0
    for kk in range(H.shape[0]):
        zz = b[i]
        for j in range(k):
            zz += a[i, j] * H[kk, j]
        we = wrho[kk] * e[kk]
        q = we * wv[i] * act_deriv(code2, zz)
        for j in range(k):
            Va[i, j] += q * H[kk, j]
        sb += q
        sw += we * act_value(code2, zz)
    for j in range(k):
        Va[i, j] *= ca
    Vb[i] = cb * sb
    Vw[i] = cw * sw


@njit(cache=True, error_model="numpy")
def _deep_forward(r, c, v, w1, a, b, wv, w2, rho, d, z, code1, sd, od, code2, H, F, Fabs, Gam):
    for kk in range(rho.shape[0]):
        _deep_forward_at(r, c, v, w1, a, b, wv, w2, rho, d, z, code1, sd, od, code2, H, F, Fabs,
                         Gam, kk)


@njit(parallel=True, cache=True, error_model="numpy")
def _deep_forward_parallel(r, c, v, w1, a, b, wv, w2, rho, d, z, code1, sd, od, code2, H, F, Fabs,
                           Gam):
    for kk in prange(rho.shape[0]):
        _deep_forward_at(r, c, v, w1, a, b, wv, w2, rho, d, z, code1, sd, od, code2, H, F, Fabs,
                         Gam, kk)


@njit(cache=True, error_model="numpy")
def _deep_velocity(r, c, v, a, b, wv, rho, wrho, e, G, H, d, z, code1, sd, od, code2, coef,
                   Vr, Vc, Vv, Va, Vb, Vw):
    for i in range(r.shape[0]):
        _deep_first_at(r, c, v, rho, wrho, G, d, z, code1, sd, od, coef[0], coef[1], coef[2],
                       Vr, Vc, Vv, i)
    for i in range(b.shape[0]):
        _deep_second_at(a, b, wv, wrho, e, H, code2, coef[3], coef[4], coef[5], Va, Vb, Vw, i)


@njit(parallel=True, cache=True, error_model="numpy")
def _deep_velocity_parallel(r, c, v, a, b, wv, rho, wrho, e, G, H, d, z, code1, sd, od, code2,
                            coef, Vr, Vc, Vv, Va, Vb, Vw):
    n1 = r.shape[0]
    for t in prange(n1 + b.shape[0]):
        if t < n1:
            _deep_first_at(r, c, v, rho, wrho, G, d, z, code1, sd, od, coef[0], coef[1], coef[2],
                           Vr, Vc, Vv, t)
        else:
            _deep_second_at(a, b, wv, wrho, e, H, code2, coef[3], coef[4], coef[5],
                            Va, Vb, Vw, t - n1)


# ----------------------------------------------------------------------------------
# quadrature rules
# ----------------------------------------------------------------------------------
BOUNDED = (ERF, TANH, SIGMOID)   # activations whose features have every moment under any law


def norm_quantile(law, bounded: bool = False):
    """(Q, Qbar, description) of a radial law the limit supports: the quantile function
    Q(p) of ‖x‖ and Qbar(q) = Q(1 − q), accurate for small q; ValueError naming the law
    otherwise.  The heavy-tailed laws (Eldan–Shamir, [SL]'s D_d) only with ``bounded``
    features (erf, tanh, sigmoid): with ReLU features the population loss does not exist
    under them.  D_d, a mixture, has no quantile function here (Q is None): its rule is
    the union of its components' rules (:func:`norm_rule`)."""
    if isinstance(law, D.EldanShamir) and bounded:
        tab, scale = law._tab, law._c          # t = 2π R_d ρ, tabulated with a 1/t tail

        def Qbar(q):
            q = np.asarray(q, dtype=float)
            tail = 1.0 - tab.cdf[-1]
            far = tab.grid[-1] * tail / np.maximum(q, 1e-300)   # P(t' > t) = tail t_max / t
            near = np.interp(1.0 - q, tab.cdf, tab.grid)
            return np.where(q < tail, far, near) / scale
        return law.norm_ppf, Qbar, f"EldanShamir(d={law.d})"
    if isinstance(law, D.SafranLeeD) and bounded:   # a mixture: see norm_rule
        return None, None, f"SafranLeeD(d={law.d}, alpha={law.alpha})"
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
        from scipy.special import betaincinv, betaln

        a = (law.d - 1) / 2

        def lower(p):   # B's quantile; where scipy underflows (p ≲ 1e-250), its leading
            p = np.asarray(p, dtype=float)   # term: I_x(a, a) ≈ x^a / (a B(a, a))
            x = betaincinv(a, a, p)
            tiny = ~np.isfinite(x) | (p < 1e-200)
            with np.errstate(divide="ignore"):
                x = np.where(tiny, np.exp((np.log(p) + math.log(a) + betaln(a, a)) / a), x)
            return x
        return ((lambda p: 2.0 * np.sqrt(lower(p))), (lambda q: 2.0 * np.sqrt(1.0 - lower(q))),
                f"SafranLeeDPrime(d={law.d})")
    if isinstance(law, (D.EldanShamir, D.SafranLeeD)):
        raise ValueError(f"the data law {type(law).__name__} has a heavy-tailed norm "
                         "(P(‖x‖ > t) ~ 1/t): ReLU (and softplus) features have infinite second "
                         "moment under it, so the population loss of the limit does not exist "
                         "(bounded activations — erf, tanh, sigmoid — are supported)")
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
    x = tanh(π/2 sinh t) at t = kh, ``|k| ≤ n``, h = 6.1/n (the outermost nodes 1e-300 from
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


def norm_rule(law, n: int, kinks=(), bounded: bool = False):
    """(ρ (K,), weights (K,)) with Σ w h(ρ) ≈ E h(‖x‖): a tanh–sinh rule of 2n + 1 nodes
    in the quantile variable p ∈ (0, 1), ρ = Q(p), on each piece between the CDFs of the
    kinks (E h(‖x‖) = ∫ h(Q(p)) dp, and Q's singularities at p = 0 and 1 are what the
    rule is made for).  A point mass (Sphere) is one node."""
    Q, Qbar, _ = norm_quantile(law, bounded)
    if isinstance(law, D.SafranLeeD):   # ½ μ̄ (Eldan–Shamir scaled by 1/k) + ½ N(0, I/d)
        k = law._k
        r1, w1 = norm_rule(law._es, n, [k * x for x in kinks], bounded)
        r2, w2 = norm_rule(law._g, n, kinks, bounded)
        return np.concatenate([r1 / k, r2]), 0.5 * np.concatenate([w1, w2])
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
    if isinstance(law, I.Sphere):   # the "sphere" of R¹: ±radius, each with probability ½
        return np.array([-float(law.radius), float(law.radius)]), np.array([0.5, 0.5])
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
                     f"for {what} (supported: Gaussian, Constant, Sphere of a scalar)")


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


RULES = ("tensor", "homogeneous")


def _gaussian_parts(law, what: str):
    """(mean, std) of a Gaussian initial law with std > 0, or ValueError naming why the
    homogeneous rule cannot take it."""
    if not isinstance(law, I.Gaussian) or not law.std > 0:
        raise ValueError(f"the homogeneous rule needs a Gaussian with std > 0 for {what}, not "
                         f"{law!r} (use the tensor rule)")
    return float(law.mean), float(law.std)


def homogeneous_rule(d: int, u_init, c_init, v_init, n: int, bias: bool = True,
                     radial_nodes: int = 8):
    """The initial law of θ = (r, c, v) for a 2-homogeneous activation (ReLU), with its
    radial coordinate integrated out (docs/math.md §8, "2-homogeneity").

    With θ = λω (λ = ‖θ‖, ω on the half sphere ω_r ≥ 0 of R^D, D = 3, or 2 without a
    bias), a ReLU unit's contribution v A0(rρ, c) is 2-homogeneous in θ and its velocity
    1-homogeneous, so the trajectory from λω is λ times the trajectory from ω.  The
    integral of any 2-homogeneous φ against the initial law p is then

        ∫ φ dp = ∫_{half sphere} φ(ω) W(ω) dS(ω),   W(ω) = ∫_0^∞ λ^{D+1} p(λω) dλ,

    a rule on the (D − 1)-dimensional half sphere: Gauss–Legendre in the angles, ω_c =
    sin α (``n`` nodes on each side of α = 0, the kink of ReLU(c)) and (ω_r, ω_v) =
    cos α (cos β, sin β) (``2n`` nodes in β ∈ (−π/2, π/2)), dS = cos α dα dβ; W by a
    generalised Gauss–Laguerre rule in λ²q/2 (exact in closed form for centred laws).
    Needs Gaussian laws: u ~ N(0, s²I) (r = s χ_d), c and v Gaussian with std > 0 (any
    mean), or c = 0 at the start (then the directions are those of (r, 0, v), D = 2).
    The weights integrate λ² (Σ W = E‖θ‖², tested), so they are not a probability: the
    limits' ``clouds`` sample the law itself, with ``radial_nodes`` Gauss nodes of λ
    given ω per direction.  Only a flow that commutes with scaling keeps the reduction
    exact: a projection of the first block (a ball of radius R is not homogeneous) or
    noise does not, and :func:`meanfield.config.make_limit` refuses them with this rule.

    Returns (r, c, v, W, probability weights P (n_dir,), radial nodes (n_dir, J), radial
    probabilities (n_dir, J)): the nodes on the unit sphere, W the λ²-weights, P the
    law's probability of each direction's cell and λ | ω's rule.
    """
    from scipy.special import gammaln, roots_genlaguerre

    if not (isinstance(u_init, I.Gaussian) and u_init.mean == 0 and u_init.std > 0):
        raise ValueError(f"the homogeneous rule needs u ~ Gaussian(mean 0, std > 0), not "
                         f"{u_init!r} (use the tensor rule)")
    su = float(u_init.std)
    mv, sv = _gaussian_parts(v_init, "1.v")
    n = int(n)
    xa, wa = np.polynomial.legendre.leggauss(n)
    xb, wb = np.polynomial.legendre.leggauss(2 * n)
    beta, wbeta = 0.5 * math.pi * xb, 0.5 * math.pi * wb
    if bias and isinstance(c_init, I.Constant) and c_init.value == 0:
        bias = False   # c starts at 0 (and moves): the directions of (r, 0, v), D = 2
    if bias:
        mc, sc = _gaussian_parts(c_init, "1.c")
        half = 0.25 * math.pi * (xa + 1.0)   # α ∈ (0, π/2): Gauss–Legendre on each side of 0
        alpha = np.concatenate([-half[::-1], half])
        walpha = np.concatenate([wa[::-1], wa]) * 0.25 * math.pi
        A, B = np.meshgrid(alpha, beta, indexing="ij")
        WA, WB = np.meshgrid(walpha, wbeta, indexing="ij")
        wr = np.cos(A) * np.cos(B)
        wc = np.sin(A)
        wv = np.cos(A) * np.sin(B)
        dS = (WA * WB * np.cos(A)).ravel()
        wr, wc, wv = wr.ravel(), wc.ravel(), wv.ravel()
        D = 3
    else:
        mc, sc = 0.0, 1.0
        wr, wc, wv = np.cos(beta), np.zeros_like(beta), np.sin(beta)
        dS = wbeta.copy()
        D = 2
    q = wr ** 2 / su ** 2 + (wc ** 2 / sc ** 2 if bias else 0.0) + wv ** 2 / sv ** 2
    ell = (wc * mc / sc ** 2 if bias else 0.0) + wv * mv / sv ** 2
    # log of the constant of p: χ_d of r/s, and the Gaussians of c and v
    logc = (-d * math.log(su) - (d / 2 - 1) * math.log(2) - gammaln(d / 2)
            - 0.5 * math.log(2 * math.pi) - math.log(sv) - mv ** 2 / (2 * sv ** 2))
    if bias:
        logc += -0.5 * math.log(2 * math.pi) - math.log(sc) - mc ** 2 / (2 * sc ** 2)

    def radial(power):
        """log ∫_0^∞ λ^power p(λω) dλ / c_ω (per direction) with its Laguerre rule:
        λ^power (λω_r)^{d−1} e^{−λ²q/2 + λℓ}, x = λ²q/2."""
        a = power + d - 1
        al = (a - 1) / 2
        x, w = roots_genlaguerre(64, al)
        lam = np.sqrt(2 * x[None, :] / q[:, None])                  # (n_dir, 64)
        tilt = np.exp(ell[:, None] * lam)
        total = (w[None, :] * tilt).sum(axis=1)
        log = (0.5 * a * np.log(2 / q) - 0.5 * np.log(2 * q) + np.log(total)
               + (d - 1) * np.log(np.maximum(wr, 1e-300)))
        return log, lam, w[None, :] * tilt
    logW, _, _ = radial(D + 1)
    W = dS * np.exp(logc + logW)
    logP, lam, pw = radial(D - 1)
    P = dS * np.exp(logc + logP)
    # λ | ω: J Gauss nodes of the same weight (a generalised Laguerre rule of J nodes)
    J = int(radial_nodes)
    a = D - 1 + d - 1
    xj, wj = roots_genlaguerre(J, (a - 1) / 2)
    lamj = np.sqrt(2 * xj[None, :] / q[:, None])
    pj = wj[None, :] * np.exp(ell[:, None] * lamj)
    pj = pj / pj.sum(axis=1, keepdims=True)
    keep = wr > 0
    return wr[keep], wc[keep], wv[keep], W[keep], P[keep], lamj[keep], pj[keep]


def _scaled_cloud(nodes, P, lam, plam):
    """(points (n·J, p), probabilities (n·J,)): the law of a homogeneous rule's block,
    each direction's node (n, p) scaled by its J radial nodes ``lam`` (n, J), with the
    probabilities P (n,) of the directions times ``plam`` (n, J) of λ given each."""
    n, J = lam.shape
    pts = (nodes[:, None, :] * lam[:, :, None]).reshape(n * J, nodes.shape[1])
    return pts, (P[:, None] * plam).ravel()


def _vector_rule(law, k: int, n: int, what: str, kink_at_zero: bool = False):
    """(nodes (q, k), weights (q,)) of a law on R^k with i.i.d. coordinates (a tensor of
    :func:`_scalar_rule`); a Sphere law only for k = 1 (on R^k it is not a product)."""
    if isinstance(law, I.Sphere) and k > 1:
        raise ValueError(f"the limit solver supports a Sphere initial law for {what} only in "
                         f"dimension 1 (here {k}: not a product of scalar laws)")
    x, w = _scalar_rule(law, n, what, kink_at_zero)
    return _tensor(*[(x[:, None], w)] * k)


def _tensor(*rules):
    """The tensor product of rules (nodes (q_i, p_i), weights (q_i,)): nodes (Π q_i, Σ p_i),
    the last rule varying fastest."""
    nodes, weights = np.zeros((1, 0)), np.ones(1)
    for x, w in rules:
        x = np.asarray(x, dtype=float).reshape(len(w), -1)
        q0, q1 = nodes.shape[0], x.shape[0]
        nodes = np.concatenate([np.repeat(nodes, q1, axis=0), np.tile(x, (q0, 1))], axis=1)
        weights = np.repeat(weights, q1) * np.tile(np.asarray(w, dtype=float), q0)
    return nodes, weights


# ----------------------------------------------------------------------------------
# the limit of a two-layer network
# ----------------------------------------------------------------------------------
def direction_rule(d: int, q: int):
    """(s (q,), weights (q,)) with Σ w h(s) ≈ E h(s) for the direction cosine s, whose
    density is ∝ (1 − s²)^{(d−3)/2} on [−1, 1]: the q-point Gauss–Jacobi rule with
    α = β = (d − 3)/2 (Gauss–Gegenbauer), exact for polynomials of degree < 2q and
    spectrally accurate for smooth activations (more nodes as a = rρ grows against the
    activation's scale)."""
    from scipy.special import roots_jacobi

    al = (int(d) - 3) / 2
    s, w = roots_jacobi(int(q), al, al)
    return s, w / w.sum()


OUTPUTS = ("identity", "clip01")


def _output(name: str, pre: np.ndarray, bound=None, n: int = 1):
    """(f, ψ'(pre)) for the output ψ: identity, or clip to [0, 1] whose derivative is 1
    inside, 0 outside and ½ at 0 and 1 (the limit's convention, docs/math.md §8.3: the
    mean of the one-sided derivatives, which is what the clip's derivative averages to
    over a wide network's output, whose sign fluctuates around a limit output of 0).
    "At 0" means within the rounding error of the sum of ``n`` terms whose absolute
    values sum to ``bound`` (n ε bound): there the sign of the computed sum is rounding,
    and a flow that starts at exactly 0 must not depend on it."""
    if name == "identity":
        return pre, np.ones_like(pre)
    f = np.clip(pre, 0.0, 1.0)
    slope = np.where((pre > 0.0) & (pre < 1.0), 1.0, 0.0)
    tol = 0.0 if bound is None else (n + 2) * np.finfo(float).eps * bound
    slope[(np.abs(pre) <= tol) | (np.abs(pre - 1.0) <= tol)] = 0.5
    return f, slope


def _smooth(activation: str, d: int, q: int):
    """(code, s, w) of a first block's activation: its code and, unless it is ReLU (in
    closed form), the direction rule of ``q`` nodes."""
    code = activation_code(activation)
    if code == RELU:
        return code, np.zeros(1), np.zeros(1)
    return (code, *direction_rule(d, q))


class _Field:
    """What both limits share: time scales, the velocity at a state, the population loss
    and the dissipation −dL/dt = Σ_g Σ_i w_i ‖V_i‖² / η_g (the output bias: V² / η)."""

    def default_scales(self) -> np.ndarray:
        return np.array([1.0 if g.trainable else 0.0 for g in self.groups])

    def velocity(self, y=None, scales=None):
        """(loss, velocity (size,)) at ``y`` (default: the initial state)."""
        y = self.y0 if y is None else y
        out = np.empty(self.size)
        val = self(y, out, self.default_scales() if scales is None else scales)
        return val, out

    def f_and_blocks(self, y, rho=None):
        """(F (K,), block outputs): f(x) at ‖x‖ = ρ and :meth:`block_outputs`, from one
        forward pass (default ρ: the norm rule's nodes)."""
        blocks = self.block_outputs(y, rho)
        return _output(self.output, blocks[-1][:, 0] + self._out_bias(y))[0], blocks

    def profile(self, y, rho=None) -> np.ndarray:
        """F(ρ) = f(x) at ‖x‖ = ρ (default: the norm rule's nodes), shape like ``rho``."""
        return self.f_and_blocks(y, rho)[0]

    def loss_of(self, F) -> float:
        """½ E_ρ (F(ρ) − g(ρ))² for F on the norm rule's nodes (:meth:`profile`)."""
        e = F - self.y_rho
        return 0.5 * float(np.dot(self.wrho, e * e))

    def loss(self, y) -> float:
        """The population loss ½ E_ρ (F(ρ) − g(ρ))²."""
        return self.loss_of(self.profile(y))

    def velocity_norms(self, velocity) -> np.ndarray:
        """(L,) each block's velocity in L²(ν): √(Σ_i w_i ‖V_i‖²) over its groups (the
        output bias apart), what :class:`meanfield.record.Recorder` writes as
        ``velocity_norm`` (for a network, √((1/m) Σ_i ‖V_i‖²): the same with weights
        1/m).  With unit time scales, Σ_l norm_l² (+ V_b²) is the dissipation."""
        out = np.zeros(self.L)
        for g in self.groups:
            if g.name == "out.b":
                continue
            V = g.view(velocity)
            out[int(g.name.split(".")[0]) - 1] += float(np.dot(self._group_weights(g),
                                                               np.sum(V * V, axis=1)))
        return np.sqrt(out)

    def dissipation(self, velocity, scales=None) -> float:
        """−dL/dt along the flow at ``velocity`` (the field's output at a state)."""
        scales = self.default_scales() if scales is None else np.asarray(scales)
        total = 0.0
        for g, eta in zip(self.groups, scales):
            if eta == 0:
                continue
            V = g.view(velocity)
            total += float(np.dot(self._group_weights(g), np.sum(V * V, axis=1))) / eta
        return total


class TwoLayerLimit(_Field):
    """The reduced population flow of a two-layer network (a velocity field).

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
    activation : σ (ReLU in closed form; erf, tanh, sigmoid, softplus, … by the
        Gauss–Gegenbauer rule of ``direction_nodes`` nodes, :func:`direction_rule`)
    output : "identity" or "clip01" (ψ, with the derivative convention of :func:`_output`)
    rule : the initial law's rule: "tensor" (a product rule of ``nodes`` per coordinate,
        2·nodes³ nodes with a bias) or "homogeneous" (ReLU and Gaussian laws only: the
        radial coordinate integrated out, a rule of the half sphere of directions,
        4·nodes² nodes, :func:`homogeneous_rule`)

    The state ``y`` is (r (n,), c (n,), v (n,), [b]) with ``n`` quadrature nodes of fixed
    weights ``w``; ``y0`` is the initial state.  Calling ``field(y, out, scales, step)``
    writes the reduced velocities and returns the population loss ½ E_ρ (f − g)².
    While r and c do not move (u and c frozen, the [SL] depth-2 learner), the averages
    of every (node, norm node) pair are computed once and kept (3 n K numbers).
    """

    L = 1   # blocks (what a recorder's velocity norms are per)

    def __init__(self, d: int, law, target, *, nodes: int = 16, norm_nodes: int = 64,
                 u_init=None, c_init=None, v_init=None, bias: bool = True,
                 out_bias: bool = False, activation: str = "relu", train=("u", "c", "v"),
                 train_out_bias: bool = True, direction_nodes: int = 64,
                 output: str = "identity", rule: str = "tensor"):
        if rule not in RULES:
            raise ValueError(f"rule: expected one of {', '.join(RULES)}, got {rule!r}")
        if output not in OUTPUTS:
            raise ValueError(f"the limit solver supports the outputs {', '.join(OUTPUTS)}, not {output!r}")
        d = int(d)
        if d < 2:
            raise ValueError(f"the limit needs d >= 2 (a sphere of directions), got d = {d}")
        if getattr(law, "d", d) != d:
            raise ValueError(f"the data law has d = {law.d} but the network takes d = {d}")
        self.d = d
        self.law = law
        self.activation, self.output = activation, output
        self.code, self.sd, self.od = _smooth(activation, d, direction_nodes)
        bounded = self.code in BOUNDED
        self.law_description = norm_quantile(law, bounded)[2]
        self.g, self.kinks = target_profile(target)
        self.rho, self.wrho = norm_rule(law, norm_nodes, self.kinks, bounded)
        self.y_rho = self.g(self.rho)
        u_init = u_init or I.Gaussian(1 / math.sqrt(d))
        c_init = c_init or I.Gaussian(1.0)
        v_init = v_init or I.Gaussian(1.0)
        self.rule = rule
        self._radial = None
        if rule == "homogeneous":
            if self.code != RELU:
                raise ValueError(f"the homogeneous rule needs a 2-homogeneous activation (relu), "
                                 f"not {activation!r} (use the tensor rule)")
            r, c, v, w, P, lam, plam = homogeneous_rule(d, u_init, c_init, v_init, nodes, bias)
            self._radial = (P, lam, plam)
        else:
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
        self._F, self._Fabs = np.zeros_like(self.rho), np.zeros_like(self.rho)
        # the closed forms cost about (d − 3)/2 + 10 operations a pair (node, norm node),
        # a quadrature about 30 a direction node
        per_pair = d // 2 + 8 if self.code == RELU else 30 * self.sd.size
        self._schedule = Schedule(float(self.n * self.rho.size * per_pair))
        self._tables = None   # (r, c, A0, A1, A2) while r and c stay where they were

    def __repr__(self) -> str:
        smooth = "" if self.code == RELU else f", {self.sd.size} direction nodes"
        return (f"TwoLayerLimit(d={self.d}, law={self.law_description}, kinks={self.kinks}, "
                f"{self.n} nodes ({self.rule} rule), {self.rho.size} norm nodes, "
                f"activation={self.activation!r}"
                f"{smooth}, output={self.output!r}, bias={self.bias}, out_bias={self.has_out_bias})")

    def _averages_at(self, r, c):
        """The tables (A0, A1, A2) (n, K) at r and c, computed when they moved."""
        t = self._tables
        if t is None or not (np.array_equal(t[0], r) and np.array_equal(t[1], c)):
            A = [np.empty((self.n, self.rho.size)) for _ in range(3)]
            _tables(r, c, self.rho, self.d, self.z, self.code, self.sd, self.od, *A)
            self._tables = t = (r.copy(), c.copy(), *A)
        return t[2:]

    # -- the state ------------------------------------------------------------------
    def split(self, y):
        """(r, c, v, b) views of a state (b = 0.0 without an output bias)."""
        n = self.n
        b = float(y[3 * n]) if self.has_out_bias else 0.0
        return y[:n], y[n:2 * n], y[2 * n:3 * n], b

    def _out_bias(self, y) -> float:
        return self.split(y)[3]

    def __call__(self, y, out, scales, step: int = 0) -> float:
        r, c, v, b = self.split(y)
        n = self.n
        s = np.asarray(scales, dtype=float)
        V = (out[:n], out[n:2 * n], out[2 * n:3 * n])
        if s[0] == 0 and s[1] == 0:   # r and c stand still: the averages are kept
            A0, A1, A2 = self._averages_at(r, c)
            _forward_tables(v, self.w, A0, self._F, self._Fabs)
            f, slope = _output(self.output, self._F + b, self._Fabs + abs(b), self.n)
            e = f - self.y_rho
            g = e * slope
            _velocity_tables(v, self.rho, self.wrho, g, A0, A1, A2, -s[0], -s[1], -s[2], *V)
        else:
            t = self._schedule.begin()
            try:
                args = (self.d, self.z, self.code, self.sd, self.od)
                (_forward_parallel if t else _forward)(r, c, v, self.w, self.rho, *args,
                                                       self._F, self._Fabs)
                f, slope = _output(self.output, self._F + b, self._Fabs + abs(b), self.n)
                e = f - self.y_rho
                g = e * slope
                (_velocity_parallel if t else _velocity)(
                    r, c, v, self.rho, self.wrho, g, *args, -s[0], -s[1], -s[2], *V)
            finally:
                self._schedule.end(t)
        if self.has_out_bias:
            out[3 * n] = -s[3] * float(np.dot(self.wrho, g))
        return 0.5 * float(np.dot(self.wrho, e * e))

    def _group_weights(self, g) -> np.ndarray:
        return np.ones(1) if g.name == "out.b" else self.w

    def conserved(self, y) -> np.ndarray:
        """v² − r² − c² of every node: constant along the exact flow of a ReLU network
        (2-homogeneity) with all of u, c, v moving at one time scale (for the
        homogeneous rule, of the trajectory from the node's unit direction)."""
        r, c, v, _ = self.split(y)
        return v * v - r * r - c * c

    def block_outputs(self, y, rho=None) -> list:
        """[h (K, 1)]: the block's output ∫ v A0 dν (before the output bias and ψ) at the
        norms ``rho`` (default: the norm rule's nodes), as
        :meth:`meanfield.network.Network.features` gives it."""
        r, c, v, _ = self.split(y)
        rho = self.rho if rho is None else np.atleast_1d(np.asarray(rho, dtype=float))
        F, Fabs = np.empty_like(rho), np.empty_like(rho)
        _forward(r, c, v, self.w, rho, self.d, self.z, self.code, self.sd, self.od, F, Fabs)
        return [F[:, None]]

    def clouds(self, y) -> list:
        """[(nodes (n, p), weights (n,))]: the first block's law in the coordinates that
        train among (r = ‖u‖, c, v), as nodes with probability weights (one block).
        For the tensor rule these are the state's nodes and weights; for the homogeneous
        rule (whose weights integrate λ², not 1) each direction's node is scaled by the J
        Gauss nodes of λ given its direction (the trajectory from λω is λ times the one
        from ω), n·J nodes."""
        r, c, v, _ = self.split(y)
        cols = [col for col, g in zip((r, c, v), self.groups[:3]) if g.trainable]
        if self._radial is None:
            return [(np.stack(cols, axis=1) if cols else np.zeros((self.n, 0)), self.w)]
        pts = np.stack(cols, axis=1) if cols else np.zeros((self.n, 0))
        return [_scaled_cloud(pts, *self._radial)]


# ----------------------------------------------------------------------------------
# the limit of an [RZG] network (two blocks, bottleneck k)
# ----------------------------------------------------------------------------------
GROUPS_3 = ("1.u", "1.c", "1.v", "2.u", "2.c", "2.v")


class ThreeLayerLimit(_Field):
    """The reduced population flow of an [RZG] network with two blocks (a velocity field).

    f(x) = ∫ w σ₂(a·h(x) + b) dμ₂ (+ b₀),  h(x) = ∫ v ReLU(u·x + c) dμ₁ ∈ R^k.  The first
    block reduces as in :class:`TwoLayerLimit` (its nodes hold r = ‖u‖, c and v ∈ R^k;
    h(x) = H(‖x‖)); the second block already lives in R^{k+2}, and its velocities need
    only E_ρ of functions of H(ρ) and e(ρ).  The signal into the first block is
    G(ρ) = e(ρ) Γ(ρ), Γ = ∫ w σ₂'(a·H + b) a dμ₂ (docs/math.md §8).

    Parameters
    ----------
    d, law, target, norm_nodes : as :class:`TwoLayerLimit`;  k : the bottleneck width
    nodes : nodes per random coordinate of both blocks' initial-law rules (tensor rules;
        a centred Gaussian bias gets ``nodes`` on each side of 0)
    init : {"1.u": law, …, "2.v": law} (missing: u ~ N(0, I/k_in), c, v ~ N(0, 1), the
        defaults of :func:`meanfield.config.make_network`)
    activation, direction_nodes : the first block's σ₁ and, unless it is ReLU, its
        direction rule (as :class:`TwoLayerLimit`);  activation2 : σ₂ (any registered
        activation);  output : ψ ("identity" or "clip01")
    bias : whether both blocks have biases;  out_bias : an output bias b₀ (starts at 0)
    frozen : names of groups that do not move ("1.u" … "2.v", "out.b")
    rule : the first block's initial-law rule, "tensor" or "homogeneous" (ReLU, Gaussian
        laws and k = 1: (r, c, v) is 2-homogeneous in the first block as in
        :class:`TwoLayerLimit`, since G depends on ρ only; :func:`homogeneous_rule`)

    State: (r (n₁,), c (n₁,), v (n₁, k), a (n₂, k), b (n₂,), w (n₂,), [b₀]) flattened in
    that order, with fixed weights ``w1`` (n₁,) and ``w2`` (n₂,); groups named as the
    network's, so stages, time scales and projections address them the same way.
    """

    L = 2   # blocks

    def __init__(self, d: int, law, target, *, k: int = 1, nodes: int = 16, norm_nodes: int = 64,
                 init=None, activation: str = "relu", activation2: str = "relu",
                 bias: bool = True, out_bias: bool = False, frozen=(),
                 direction_nodes: int = 64, output: str = "identity", rule: str = "tensor"):
        if rule not in RULES:
            raise ValueError(f"rule: expected one of {', '.join(RULES)}, got {rule!r}")
        if output not in OUTPUTS:
            raise ValueError(f"the limit solver supports the outputs {', '.join(OUTPUTS)}, not {output!r}")
        d, k = int(d), int(k)
        if d < 2:
            raise ValueError(f"the limit needs d >= 2 (a sphere of directions), got d = {d}")
        if k < 1:
            raise ValueError(f"the bottleneck k must be >= 1, got {k}")
        if getattr(law, "d", d) != d:
            raise ValueError(f"the data law has d = {law.d} but the network takes d = {d}")
        self.d, self.k = d, k
        self.law = law
        self.activation, self.activation2, self.output = activation, activation2, output
        self.code1, self.sd, self.od = _smooth(activation, d, direction_nodes)
        self.code2 = activation_code(activation2)
        # features that are bounded whatever the norm: a bounded first block, or a bounded
        # second block (f is then bounded too)
        bounded = self.code1 in BOUNDED
        self.law_description = norm_quantile(law, bounded)[2]
        self.g, self.kinks = target_profile(target)
        self.rho, self.wrho = norm_rule(law, norm_nodes, self.kinks, bounded)
        self.y_rho = self.g(self.rho)
        laws = {"1.u": I.Gaussian(1 / math.sqrt(d)), "1.c": I.Gaussian(1.0), "1.v": I.Gaussian(1.0),
                "2.u": I.Gaussian(1 / math.sqrt(k)), "2.c": I.Gaussian(1.0), "2.v": I.Gaussian(1.0)}
        laws.update(init or {})
        zero = (np.zeros((1, 1)), np.ones(1))
        self.rule, self._radial = rule, None
        if rule == "homogeneous":
            if self.code1 != RELU or k != 1:
                raise ValueError(f"the homogeneous rule needs a ReLU first block with k = 1 "
                                 f"(here {activation!r}, k = {k}; use the tensor rule)")
            r, c, v, self.w1, P, lam, plam = homogeneous_rule(d, laws["1.u"], laws["1.c"],
                                                              laws["1.v"], nodes, bias)
            x1 = np.stack([r, c, v], axis=1)
            self._radial = (P, lam, plam)
        else:
            r = _radius_rule(laws["1.u"], d, nodes)
            c = _vector_rule(laws["1.c"], 1, nodes, "1.c", kink_at_zero=True) if bias else zero
            v = _vector_rule(laws["1.v"], k, nodes, "1.v")
            x1, self.w1 = _tensor((r[0][:, None], r[1]), c, v)
        a = _vector_rule(laws["2.u"], k, nodes, "2.u")
        b = _vector_rule(laws["2.c"], 1, nodes, "2.c", kink_at_zero=True) if bias else zero
        wv = _vector_rule(laws["2.v"], 1, nodes, "2.v")
        x2, self.w2 = _tensor(a, b, wv)
        self.n1, self.n2 = n1, n2 = x1.shape[0], x2.shape[0]
        self.bias, self.has_out_bias = bool(bias), bool(out_bias)
        frozen = set(frozen)
        shapes = ((n1, 1), (n1, 1), (n1, k), (n2, k), (n2, 1), (n2, 1))
        self.groups, off = (), 0
        for i, (name, sh) in enumerate(zip(GROUPS_3, shapes)):
            moves = name not in frozen and (bias or not name.endswith(".c"))
            self.groups += (Group(name, off, sh, moves, key=(0, i)),)
            off += sh[0] * sh[1]
        if out_bias:
            self.groups += (Group("out.b", off, (1, 1), "out.b" not in frozen, key=(0, 6)),)
            off += 1
        self.size = off
        self.y0 = np.concatenate([x1[:, 0], x1[:, 1], x1[:, 2:].ravel(), x2[:, :k].ravel(),
                                  x2[:, k], x2[:, k + 1], [0.0] if out_bias else []])
        self.z = _beta_half(d)
        K = self.rho.size
        self._H, self._F, self._Gam = np.zeros((K, k)), np.zeros(K), np.zeros((K, k))
        self._Fabs = np.zeros(K)
        per_pair = d // 2 + 8 if self.code1 == RELU else 30 * self.sd.size
        work = K * (n1 * (per_pair + k) + n2 * (3 * k + 20))
        self._schedule = Schedule(float(work))

    def __repr__(self) -> str:
        smooth = "" if self.code1 == RELU else f", {self.sd.size} direction nodes"
        return (f"ThreeLayerLimit(d={self.d}, k={self.k}, law={self.law_description}, "
                f"kinks={self.kinks}, {self.n1} + {self.n2} nodes, {self.rho.size} norm nodes, "
                f"activations=({self.activation!r}, {self.activation2!r}){smooth}, "
                f"output={self.output!r}, bias={self.bias}, out_bias={self.has_out_bias})")

    # -- the state ------------------------------------------------------------------
    def split(self, y):
        """(r, c, v (n₁, k), a (n₂, k), b, w, b₀) views of a state (b₀ = 0.0 without an
        output bias)."""
        g = self.groups
        views = [grp.view(y) for grp in g[:6]]
        b0 = float(g[6].view(y)[0, 0]) if self.has_out_bias else 0.0
        return (views[0][:, 0], views[1][:, 0], views[2], views[3], views[4][:, 0],
                views[5][:, 0], b0)

    def _out_bias(self, y) -> float:
        return self.split(y)[6]

    def features(self, y, rho=None):
        """(H (K, k), F (K,)): the first block's feature and f (with the output bias) at
        the norms ``rho`` (default: the norm rule's nodes)."""
        F, blocks = self.f_and_blocks(y, rho)
        return blocks[0], F

    def block_outputs(self, y, rho=None) -> list:
        """[H (K, k), F − b₀ (K, 1)]: both blocks' outputs at the norms ``rho``."""
        r, c, v, a, b, wv, b0 = self.split(y)
        rho = self.rho if rho is None else np.atleast_1d(np.asarray(rho, dtype=float))
        H, F, Gam = np.empty((rho.size, self.k)), np.empty(rho.size), np.empty((rho.size, self.k))
        _deep_forward(r, c, np.ascontiguousarray(v), self.w1, np.ascontiguousarray(a), b, wv,
                      self.w2, rho, self.d, self.z, self.code1, self.sd, self.od, self.code2,
                      H, F, np.empty(rho.size), Gam)
        return [H, F[:, None]]


    def __call__(self, y, out, scales, step: int = 0) -> float:
        r, c, v, a, b, wv, b0 = self.split(y)
        v, a = np.ascontiguousarray(v), np.ascontiguousarray(a)
        s = np.asarray(scales, dtype=float)
        coef = -s[:6]
        g = self.groups
        Vr, Vc, Vv, Va, Vb, Vw = (grp.view(out) for grp in g[:6])
        t = self._schedule.begin()
        try:
            one = (self.d, self.z, self.code1, self.sd, self.od, self.code2)
            (_deep_forward_parallel if t else _deep_forward)(
                r, c, v, self.w1, a, b, wv, self.w2, self.rho, *one, self._H, self._F,
                self._Fabs, self._Gam)
            f, slope = _output(self.output, self._F + b0, self._Fabs + abs(b0), self.n2)
            e = f - self.y_rho
            es = e * slope
            G = es[:, None] * self._Gam
            (_deep_velocity_parallel if t else _deep_velocity)(
                r, c, v, a, b, wv, self.rho, self.wrho, es, G, self._H, *one, coef,
                Vr[:, 0], Vc[:, 0], Vv, Va, Vb[:, 0], Vw[:, 0])
        finally:
            self._schedule.end(t)
        if self.has_out_bias:
            out[g[6].start] = -s[6] * float(np.dot(self.wrho, es))
        return 0.5 * float(np.dot(self.wrho, e * e))

    def _group_weights(self, g) -> np.ndarray:
        return np.ones(1) if g.name == "out.b" else (self.w1 if g.name[0] == "1" else self.w2)

    def clouds(self, y) -> list:
        """[(nodes (n₁, p₁), w1), (nodes (n₂, p₂), w2)]: each block's nodes in its trained
        coordinates ((r, c, v) for the first, (a, b, w) for the second)."""
        r, c, v, a, b, wv, _ = self.split(y)
        cols = ((r[:, None], c[:, None], v), (a, b[:, None], wv[:, None]))
        out = []
        for blk, (wts, n) in enumerate(((self.w1, self.n1), (self.w2, self.n2))):
            keep = [x for x, g in zip(cols[blk], self.groups[3 * blk:3 * blk + 3]) if g.trainable]
            out.append((np.concatenate(keep, axis=1) if keep else np.zeros((n, 0)), wts))
        if self._radial is not None:   # the first block's law: each direction times λ | ω
            out[0] = _scaled_cloud(out[0][0], *self._radial)
        return out
