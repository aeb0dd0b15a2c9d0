"""Activation functions σ and their derivatives σ', usable from Numba kernels.

Every activation has an integer code (the kernels branch on it once per particle,
never per sample) and a name (what users and configs write).  The scalar functions
:func:`act_value` and :func:`act_deriv` work inside any ``@njit`` function; the tile
helper :func:`act_tile` fills σ(z) and σ'(z) for a whole vector of pre-activations.
erf, tanh, sigmoid and softplus (and their derivatives) come from
:mod:`meanfield._vmath`: vectorisable implementations with tested error bounds against
scipy.special (erf ≤ 1e-14 relative, the others ≤ 1e-15), so a tile of them compiles
to SIMD code like ReLU's.

==========  ====  =================================  ===========================
name        code  σ(z)                               σ'(z)
==========  ====  =================================  ===========================
identity    0     z                                  1
relu        1     max(z, 0)                          1{z > 0}
erf         2     erf(z)                             2/√π · exp(−z²)
sigmoid     3     1 / (1 + exp(−z))                  σ(z)(1 − σ(z))
tanh        4     tanh(z)                            1 − tanh²(z)
softplus    5     log(1 + exp(z))                    1 / (1 + exp(−z))
quadratic   6     z²                                 2z
==========  ====  =================================  ===========================
"""
from __future__ import annotations


import numpy as np
from numba import njit

from ._vmath import verf_d, vsigmoid_d, vsoftplus_d, vtanh_d

IDENTITY, RELU, ERF, SIGMOID, TANH, SOFTPLUS, QUADRATIC = range(7)

ACTIVATIONS = {
    "identity": IDENTITY,
    "relu": RELU,
    "erf": ERF,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "softplus": SOFTPLUS,
    "quadratic": QUADRATIC,
}
ACTIVATION_NAMES = {code: name for name, code in ACTIVATIONS.items()}

def activation_code(name: str) -> int:
    """Code of the activation called ``name``; ValueError naming the choices otherwise."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}"
        ) from None


@njit(cache=True, error_model="numpy")
def act_value(code, z):
    """σ(z) for the activation with the given code (scalar, Numba-callable)."""
    if code == RELU:
        return z if z > 0 else 0.0 * z
    if code == ERF:
        return verf_d(z)[0]
    if code == SIGMOID:
        return vsigmoid_d(z)[0]
    if code == TANH:
        return vtanh_d(z)[0]
    if code == SOFTPLUS:
        return vsoftplus_d(z)[0]
    if code == QUADRATIC:
        return z * z
    return z


@njit(cache=True, error_model="numpy")
def act_deriv(code, z):
    """σ'(z) for the activation with the given code (scalar, Numba-callable)."""
    if code == RELU:
        return 1.0 if z > 0 else 0.0
    if code == ERF:
        return verf_d(z)[1]
    if code == SIGMOID:
        return vsigmoid_d(z)[1]
    if code == TANH:
        return vtanh_d(z)[1]
    if code == SOFTPLUS:
        return vsoftplus_d(z)[1]
    if code == QUADRATIC:
        return 2.0 * z
    return 1.0


@njit(cache=True, inline="always", error_model="numpy")
def act_tile(code, z, s, ds, n, want_s, want_d):
    """Fill ``s[:n] = σ(z[:n])`` (if ``want_s``) and ``ds[:n] = σ'(z[:n])`` (if ``want_d``).

    The branch on ``code`` is taken once; each loop body is branch-light so that the
    compiler can vectorise relu, identity and quadratic.  Arrays keep their dtype.
    """
    if code == RELU:
        if want_s:
            for b in range(n):
                s[b] = max(z[b], 0.0)
        if want_d:
            for b in range(n):
                ds[b] = 1.0 if z[b] > 0 else 0.0
    elif code == IDENTITY:
        if want_s:
            for b in range(n):
                s[b] = z[b]
        if want_d:
            for b in range(n):
                ds[b] = 1.0
    elif code == QUADRATIC:
        if want_s:
            for b in range(n):
                s[b] = z[b] * z[b]
        if want_d:
            for b in range(n):
                ds[b] = 2.0 * z[b]
    elif code == TANH:
        for b in range(n):
            v, dv = vtanh_d(z[b])
            if want_s:
                s[b] = v
            if want_d:
                ds[b] = dv
    elif code == SIGMOID:
        for b in range(n):
            v, dv = vsigmoid_d(z[b])
            if want_s:
                s[b] = v
            if want_d:
                ds[b] = dv
    elif code == ERF:
        for b in range(n):
            v, dv = verf_d(z[b])
            if want_s:
                s[b] = v
            if want_d:
                ds[b] = dv
    else:  # SOFTPLUS
        for b in range(n):
            v, dv = vsoftplus_d(z[b])
            if want_s:
                s[b] = v
            if want_d:
                ds[b] = dv


def act_numpy(name: str, z: np.ndarray) -> np.ndarray:
    """σ(z) in plain NumPy/SciPy, independent of the Numba code (reference and tests)."""
    from scipy import special

    code = activation_code(name)
    if code == RELU:
        return np.maximum(z, 0.0)
    if code == ERF:
        return special.erf(z)
    if code == SIGMOID:
        return special.expit(z)
    if code == TANH:
        return np.tanh(z)
    if code == SOFTPLUS:
        return np.logaddexp(0.0, z)
    if code == QUADRATIC:
        return z * z
    return np.asarray(z, dtype=float).copy()
