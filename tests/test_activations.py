"""The vectorisable activations of meanfield._vmath against scipy.special.

Bounds (relative error, over the grids below; measured maxima in brackets when written):
exp ≤ 4e-16 [2.2e-16] on [−700, 700]; erf ≤ 1e-14 [1.1e-15]; erf' ≤ (x² + 4)·2.2e-16 [0.38 of it];
tanh, tanh', sigmoid, sigmoid', softplus, softplus' ≤ 1e-15 [8e-16].
"""
import numpy as np
import pytest
from numba import njit
from scipy import special

import meanfield as mf
from meanfield._vmath import verf_d, vexp, vsigmoid_d, vsoftplus_d, vtanh_d

EPS = np.finfo(float).eps


@njit
def _apply(x, which):
    v = np.empty_like(x)
    d = np.empty_like(x)
    for i in range(x.size):
        if which == 0:
            v[i], d[i] = vexp(x[i]), 0.0
        elif which == 1:
            v[i], d[i] = verf_d(x[i])
        elif which == 2:
            v[i], d[i] = vtanh_d(x[i])
        elif which == 3:
            v[i], d[i] = vsigmoid_d(x[i])
        else:
            v[i], d[i] = vsoftplus_d(x[i])
    return v, d


def _points():
    rng = np.random.default_rng(0)
    tiny = np.geomspace(1e-300, 1e-2, 20001)
    return np.concatenate([np.linspace(-40, 40, 1_600_001), rng.standard_normal(400_000) * 3,
                           tiny, -tiny, [0.0, 0.5, -0.5, 0.25, -0.25, 6.0, -6.0, 709.0, -708.0]])


def _rel(a, b):
    ok = np.abs(b) > 1e-300
    return np.max(np.abs(a[ok] - b[ok]) / np.abs(b[ok]))


def test_exp():
    x = np.concatenate([np.linspace(-708, 709, 2_000_001), np.linspace(-1, 1, 100001)])
    assert _rel(_apply(x, 0)[0], np.exp(x)) <= 4e-16
    v = _apply(np.array([-709.5, -1e4, 710.0, -np.inf, np.inf, np.nan]), 0)[0]
    assert v[0] == v[1] == v[3] == 0.0 and v[2] == v[4] == np.inf and np.isnan(v[5])


def test_erf_and_its_derivative():
    x = _points()
    v, d = _apply(x, 1)
    assert _rel(v, special.erf(x)) <= 1e-14
    exact_d = 2 / np.sqrt(np.pi) * np.exp(-x * x)
    ok = exact_d > 1e-300
    assert np.all(np.abs(d[ok] - exact_d[ok]) <= (x[ok] ** 2 + 4) * EPS * exact_d[ok])
    assert np.all(v[np.abs(x) >= 6] == np.sign(x[np.abs(x) >= 6]))


@pytest.mark.parametrize("which,f,df", [
    (2, np.tanh, lambda x: 1 / np.cosh(x) ** 2),
    (3, special.expit, lambda x: special.expit(x) * special.expit(-x)),
    (4, lambda x: np.logaddexp(0, x), special.expit),
])
def test_tanh_sigmoid_softplus(which, f, df):
    x = _points()
    with np.errstate(over="ignore"):
        v, d = _apply(x, which)
        assert _rel(v, f(x)) <= 1e-15
        assert _rel(d, df(x)) <= 1e-15


@pytest.mark.parametrize("which", [1, 2, 3, 4])
def test_nan_propagates_and_infinities_give_limits(which):
    v, d = _apply(np.array([np.nan, np.inf, -np.inf]), which)
    assert np.isnan(v[0]) and np.isnan(d[0])
    if which == 4:   # softplus' = sigmoid
        assert d[1] == 1.0 and 0 <= d[2] < 1e-300
    else:
        assert np.isfinite(d[1:]).all() and np.all(np.abs(d[1:]) < 1e-300)
    if which in (1, 2):
        assert v[1] == 1.0 and v[2] == -1.0
    elif which == 3:
        assert v[1] == 1.0 and v[2] < 1e-300
    else:
        assert v[1] == np.inf and v[2] < 1e-300


def test_scalar_helpers_and_numpy_reference_agree():
    z = np.linspace(-5, 5, 1001)
    for name in ("relu", "erf", "sigmoid", "tanh", "softplus", "quadratic", "identity"):
        code = mf.activation_code(name)
        vals = np.array([mf.act_value(code, t) for t in z])
        np.testing.assert_allclose(vals, mf.act_numpy(name, z), rtol=1e-14, atol=1e-300)
