"""docs/math.md §5 and §7 closed forms against Monte Carlo through the toolkit's own
samplers, initial laws and kernels (fixed seeds, 4 standard errors)."""
import math

import numpy as np
import pytest
from scipy import integrate, special

import meanfield as mf
from meanfield import closed_forms as cf


def relu_sphere_net(d, m, seed, scale=1.0):
    """(1/m) Σ scale·ReLU(u_i·x), u_i ~ Unif(S^{d−1})."""
    return mf.two_layer(d, m, "relu", bias=False, u_init=mf.init.Sphere(1.0),
                        v_init=mf.init.Constant(scale), seed=seed)


def test_c_d_values():
    assert cf.c_d(1) == pytest.approx(0.5)  # E ReLU(±x) = |x|/2
    assert cf.c_d(400) == pytest.approx(1 / math.sqrt(2 * math.pi * 400), rel=2e-3)
    assert cf.pi_d(10 ** 6) == pytest.approx(math.pi, rel=1e-5)


@pytest.mark.parametrize("d", [3, 16])
def test_relu_sphere_mean_is_c_d_norm(d):
    m = 40_000
    net = relu_sphere_net(d, m, seed=d)
    X = mf.data.Gaussian(d).sample(5, 1) * np.array([[0.3], [1.0], [2.0], [5.0], [0.01]])
    h = net(X)
    r = np.linalg.norm(X, axis=1)
    mean = cf.c_d(d) * r
    sd = np.sqrt(r ** 2 / (2 * d) - mean ** 2)  # E ReLU(u·x)² = ‖x‖²/(2d)
    assert np.all(np.abs(h - mean) <= 4 * sd / math.sqrt(m))


@pytest.mark.parametrize("d,m", [(4, 20), (16, 50)])
def test_width_law_of_the_radial_feature(d, m):
    """E_x(h_m(x) − ‖x‖)² = (π_d − 1) E‖x‖² / m, h_m = (1/m) Σ ReLU(u_i·x)/c_d."""
    law = mf.data.Gaussian(d)  # E‖x‖² = d
    reps = []
    for seed in range(200):
        net = relu_sphere_net(d, m, seed, scale=1 / cf.c_d(d))
        X = law.sample(200, 10_000 + seed)
        reps.append(np.mean((net(X) - np.linalg.norm(X, axis=1)) ** 2))
    reps = np.array(reps)
    expected = (cf.pi_d(d) - 1) * d / m
    se = reps.std(ddof=1) / math.sqrt(reps.size)
    assert abs(reps.mean() - expected) <= 4 * se
    assert se < 0.05 * expected  # the test has power


@pytest.mark.parametrize("rho", [0.0, 1.0, 1.7])
def test_sl_prop21_erf_conditional_means(rho):
    d, r = 6, 400_000
    net = mf.sl_depth2(d, r, seed=int(10 * rho))
    b = net.blocks[0]
    x = np.zeros((1, d))
    x[0, 0] = rho
    for thresh, formula in ((0.0, cf.sl_erf_mean_b_pos), (1 / math.sqrt(2), cf.sl_erf_mean_b_high)):
        sel = np.asarray(b.c) >= thresh
        # conditional mean as the output of a network whose v selects those particles
        probe = mf.Network([mf.Block(b.u.copy(), b.c.copy(), sel * (r / sel.sum()), "erf")])
        vals = special.erf(b.u[sel] @ x[0] + b.c[sel])
        se = vals.std() / math.sqrt(sel.sum())
        est = probe(x)[0]
        assert est == pytest.approx(vals.mean(), abs=1e-12)
        assert abs(est - float(formula(rho))) <= 4 * se


def test_sl_prop21_against_quadrature():
    """The two closed forms against direct 2-D quadrature over (u·x, b)."""
    for rho in (0.5, 1.5):
        s = rho / 2  # u·x ~ N(0, ρ²/4)
        for thresh, formula in ((0.0, cf.sl_erf_mean_b_pos), (1 / math.sqrt(2), cf.sl_erf_mean_b_high)):
            pb = lambda bb: 2 * math.sqrt(2 / math.pi) * math.exp(-2 * bb * bb)  # N(0, 1/4) density
            num = integrate.dblquad(
                lambda w, bb: special.erf(w + bb) * pb(bb) * math.exp(-w * w / (2 * s * s)) / (s * math.sqrt(2 * math.pi)),
                thresh, 6, -8 * s, 8 * s)[0]
            den = integrate.quad(pb, thresh, 6)[0]
            assert num / den == pytest.approx(float(formula(rho)), abs=1e-7)


def test_sl_xi_values_and_sign_change():
    assert cf.sl_xi(1.0) == pytest.approx(0.4717, abs=1e-4)
    assert cf.sl_xi(2.0) == pytest.approx(0.4505, abs=1e-4)
    for lam in (1.0, 1.3, 2.0):
        xi = cf.sl_xi(lam)
        f = lambda rho: cf.sl_erf_mean_b_pos(rho) - xi * cf.sl_erf_mean_b_high(rho)
        assert abs(f(lam)) < 1e-12
        assert f(lam - 0.05) * f(lam + 0.05) < 0


def test_arccos_and_erf_kernels_monte_carlo():
    d, n = 5, 400_000
    rng = np.random.default_rng(0)
    W = rng.standard_normal((2, d)) * np.array([[0.7], [1.3]])
    X = mf.data.Gaussian(d).sample(n, 1)
    for act, kern in (("relu", cf.arccos_kernel), ("erf", cf.erf_kernel)):
        sig = mf.act_numpy(act, X @ W.T)
        prod = sig[:, 0] * sig[:, 1]
        se = prod.std() / math.sqrt(n)
        assert abs(prod.mean() - kern(W[:1], W[1:])[0, 0]) <= 4 * se
        sq = sig[:, 0] ** 2
        assert abs(sq.mean() - kern(W[:1], W[:1])[0, 0]) <= 4 * sq.std() / math.sqrt(n)
    # ϑ = 0: ‖w‖²/2 (E ReLU(g)² = 1/2);  ϑ = π: 0
    w = np.array([[1.0, 2.0]])
    assert cf.arccos_kernel(w, w)[0, 0] == pytest.approx(2.5)
    assert cf.arccos_kernel(w, -w)[0, 0] == pytest.approx(0.0, abs=1e-15)


def test_population_loss_of_relu_networks_matches_kernel_monte_carlo():
    d, n = 4, 200_000
    student = mf.two_layer(d, 30, "relu", bias=False, seed=1)
    teacher = mf.two_layer(d, 5, "relu", bias=False, seed=2)
    X = mf.data.Gaussian(d).sample(n, 3)
    obj = mf.Objective(student, mf.Dataset(X, mf.Teacher(teacher)(X)))
    mc = obj.loss()
    per = 0.5 * (obj.outputs - obj.y) ** 2
    exact = cf.gaussian_relu_loss(student, teacher)
    assert abs(mc - exact) <= 4 * per.std() / math.sqrt(n)
    assert cf.gaussian_relu_loss(teacher, teacher) == pytest.approx(0.0, abs=1e-14)


def test_rzg_can_represent_relu_norm_exactly():
    """h = κ‖x‖ and one second-block particle (v, u, c) = (1, −1/κ, 1) give ReLU(1 − ‖x‖)."""
    d, m, kappa = 5, 60_000, 1.0
    first = relu_sphere_net(d, m, seed=0, scale=kappa / cf.c_d(d))
    b1 = first.blocks[0]
    net = mf.Network([mf.Block(b1.u.copy(), None, b1.v.copy(), "relu", bias=False),
                      mf.Block(np.array([[-1 / kappa]]), np.array([1.0]), np.array([[1.0]]), "relu")])
    X = mf.data.Ball(d, 1.5).sample(2000, 1)
    f = net(X)
    target = mf.ReluNorm(1.0)(X)
    # the only error is the first block's Monte Carlo error, (π_d − 1)E‖x‖²/m in mean square
    ex2 = np.mean(np.sum(X ** 2, axis=1))
    assert np.mean((f - target) ** 2) <= 4 * (cf.pi_d(d) - 1) * ex2 / m
    # and with the exact feature it is exact
    h = kappa * np.linalg.norm(X, axis=1)
    assert np.array_equal(np.maximum(1 - h / kappa, 0), target)
