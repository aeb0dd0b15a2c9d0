"""Closed forms of docs/math.md §5 and §7, used as test oracles and in analysis."""
from __future__ import annotations

import math

import numpy as np
from scipy import special


def c_d(d: int) -> float:
    """E ReLU(u·x) = c_d ‖x‖ for u ~ Unif(S^{d−1}): c_d = Γ(d/2) / (2√π Γ((d+1)/2))."""
    return math.exp(special.gammaln(d / 2) - special.gammaln((d + 1) / 2)) / (2 * math.sqrt(math.pi))


def pi_d(d: int) -> float:
    """π_d = 1 / (2 d c_d²) (→ π); E_x(h_m − ‖x‖)² = (π_d − 1) E‖x‖² / m."""
    return 1.0 / (2 * d * c_d(d) ** 2)


def arccos_kernel(W1, W2) -> np.ndarray:
    """E_x[ReLU(w·x) ReLU(w'·x)] for x ~ N(0, I): ‖w‖‖w'‖/(2π)(sin ϑ + (π − ϑ) cos ϑ).

    W1 (m1, d), W2 (m2, d) -> (m1, m2).
    """
    W1 = np.atleast_2d(np.asarray(W1, dtype=float))
    W2 = np.atleast_2d(np.asarray(W2, dtype=float))
    n1 = np.linalg.norm(W1, axis=1)
    n2 = np.linalg.norm(W2, axis=1)
    nn = np.outer(n1, n2)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(nn > 0, (W1 @ W2.T) / np.where(nn > 0, nn, 1.0), 1.0)
    th = np.arccos(np.clip(cos, -1.0, 1.0))
    return nn / (2 * math.pi) * (np.sin(th) + (math.pi - th) * np.cos(th))


def erf_kernel(W1, W2) -> np.ndarray:
    """E_x[erf(w·x) erf(w'·x)] for x ~ N(0, I): (2/π) arcsin(2w·w' / √((1+2‖w‖²)(1+2‖w'‖²)))."""
    W1 = np.atleast_2d(np.asarray(W1, dtype=float))
    W2 = np.atleast_2d(np.asarray(W2, dtype=float))
    a = 1 + 2 * np.sum(W1 * W1, axis=1)
    b = 1 + 2 * np.sum(W2 * W2, axis=1)
    return 2 / math.pi * np.arcsin(2 * (W1 @ W2.T) / np.sqrt(np.outer(a, b)))


def gaussian_relu_loss(student, teacher) -> float:
    """Exact population loss ½ E_x (f(x) − g(x))², x ~ N(0, I), of bias-free two-layer
    ReLU networks (one block, c = 0, identity output, no output bias)."""
    parts = []
    for net in (student, teacher):
        if net.L != 1 or net.blocks[0].activation != "relu" or net.output != "identity" \
                or net.has_out_bias or np.any(net.blocks[0].c != 0):
            raise ValueError("gaussian_relu_loss needs bias-free one-block ReLU networks "
                             "with identity output")
        b = net.blocks[0]
        parts.append((np.asarray(b.u, float), net.scales[0] * np.asarray(b.v, float)[:, 0]))
    (U, a), (W, c) = parts
    return 0.5 * float(a @ arccos_kernel(U, U) @ a - 2 * a @ arccos_kernel(U, W) @ c
                       + c @ arccos_kernel(W, W) @ c)


def _a(rho):
    return 1.0 / np.sqrt(2.0 + np.asarray(rho, dtype=float) ** 2)


def sl_erf_mean_b_pos(rho):
    """[SL] Prop. 21: E[erf(u·x + b) | b ≥ 0] = (2/π) arctan((2 + ρ²)^{−1/2}), ‖x‖ = ρ,
    u ~ N(0, I/4), b ~ N(0, 1/4)."""
    return 2 / math.pi * np.arctan(_a(rho))


def sl_erf_mean_b_high(rho):
    """[SL] Prop. 21: E[erf(u·x + b) | b ≥ 1/√2] = 4/(1 − erf 1) · T(√2, (2 + ρ²)^{−1/2})."""
    return 4 / (1 - math.erf(1.0)) * special.owens_t(math.sqrt(2.0), _a(rho))


def sl_xi(lam: float) -> float:
    """ξ_λ = (1 − erf 1)/(2π) · arctan(a)/T(√2, a), a = (2 + λ²)^{−1/2}: the weight for
    which f_ξ(ρ) = E[·| b ≥ 0] − ξ E[·| b ≥ 1/√2] changes sign exactly at ρ = λ."""
    a = float(_a(lam))
    return (1 - math.erf(1.0)) / (2 * math.pi) * math.atan(a) / float(special.owens_t(math.sqrt(2.0), a))
