"""The exact limit of rotation-invariant problems (meanfield/limit.py, docs/math.md §8):
the closed forms against adaptive quadrature, the reduced velocities against a Monte
Carlo of the full d-dimensional velocity field, the loss at t = 0 against an independent
quadrature, the energy identity and the conservation law, refinement, and bad input."""
import math

import numpy as np
import pytest
from scipy import integrate, special, stats

import meanfield as mf
import solvers
from meanfield import limit as LM


def _above(g, d, tau):
    """∫_τ^1 g(s) p_d(s) ds by scipy's quad with the algebraic weight of the density's
    endpoint singularities ((1 − s)^n, n = (d − 3)/2; and (1 + s)^n when τ ≤ −1, else
    that factor in the integrand)."""
    n = (d - 3) / 2
    if tau >= 1.0:
        return 0.0
    if tau <= -1.0:   # the whole interval: both endpoint singularities in the weight
        val, _ = integrate.quad(g, -1.0, 1.0, weight="alg", wvar=(n, n), epsabs=1e-13,
                                epsrel=1e-14, limit=200)
    else:
        val, _ = integrate.quad(lambda s: g(s) * (1 + s) ** n, tau, 1.0, weight="alg",
                                wvar=(0.0, n), epsabs=1e-13, epsrel=1e-13, limit=200)
    return val / special.beta(0.5, (d - 1) / 2)


@pytest.mark.parametrize("d", [2, 3, 4, 5, 8, 20, 64])
def test_relu_averages_against_quadrature(d):
    z = LM._beta_half(d)
    assert z == pytest.approx(special.beta(0.5, (d - 1) / 2), rel=1e-14)
    for a, c in [(1.0, 0.0), (2.0, 0.7), (0.5, -0.3), (3.0, -2.9), (1.0, 0.999), (0.7, -0.69),
                 (0.0, 0.4), (0.0, -0.4), (1.0, 1.5), (1.0, -1.5), (5.0, 0.01)]:
        A0, A1, A2 = LM.relu_averages(a, c, d, z)
        tau = -c / a if a > 0 else (-np.inf if c > 0 else np.inf)   # σ'(as + c) = 1{s > τ}
        q0 = _above(lambda s: a * s + c, d, tau)
        q1 = _above(lambda s: 1.0, d, tau)
        q2 = _above(lambda s: s, d, tau)
        assert abs(A0 - q0) <= 1e-12 * max(1, abs(q0)), (a, c)
        assert abs(A1 - q1) <= 1e-12, (a, c)
        assert abs(A2 - q2) <= 1e-12, (a, c)


def test_relu_averages_against_the_beta_function():
    """P(s > τ) = 1 − I_{(1+τ)/2}((d−1)/2, (d−1)/2) (scipy's regularised incomplete beta)."""
    for d in (2, 3, 6, 9, 33, 64):
        z = LM._beta_half(d)
        for tau in np.linspace(-0.99, 0.99, 23):
            _, A1, _ = LM.relu_averages(1.0, -tau, d, z)
            ref = 1 - special.betainc((d - 1) / 2, (d - 1) / 2, (1 + tau) / 2)
            assert abs(A1 - ref) <= 2e-15, (d, tau)


@pytest.mark.parametrize("law", [mf.data.Gaussian(5, 0.7), mf.data.Ball(5, 2.0),
                                 mf.SafranLeeDPrime(5), mf.SafranLeeDPrime(40),
                                 mf.Radial(5, stats.gamma(2.0))])
def test_norm_rule_against_the_law(law):
    """E ρ² and E ρ by the rule against closed forms or scipy, and the quantile function
    against the law's own CDF."""
    # 60 nodes a piece: D′_40, concentrated near √2 far from the kink, is at 1.6e-11 with
    # 40 and 3e-15 with 60 (tanh–sinh converges exponentially)
    rho, w = LM.norm_rule(law, 60, kinks=(1.0,))
    assert w.sum() == pytest.approx(1.0, abs=1e-14) and np.all(np.isfinite(rho))
    Q, _, _ = LM.norm_quantile(law)
    p = np.linspace(0.01, 0.99, 17)
    assert np.allclose(law.norm_cdf(Q(p)), p, atol=1e-12)
    m2 = {mf.data.Gaussian: 5 * 0.49, mf.data.Ball: 5 / 7 * 4.0, mf.SafranLeeDPrime: 2.0,
          mf.Radial: 6.0}[type(law)]   # D′_d: ‖x‖² = 2 + 2s, E s = 0
    assert float(w @ rho ** 2) == pytest.approx(m2, rel=1e-13)


def _limit(d=6, **kw):
    law = mf.Radial(d, stats.uniform(0.5, 1.5))   # ‖x‖ ~ U[0.5, 2]: no mass at 0
    kw.setdefault("nodes", 10)
    kw.setdefault("norm_nodes", 40)
    return law, LM.TwoLayerLimit(d, law, mf.ReluNorm(1.0), **kw)


def test_reduced_velocities_against_monte_carlo_of_the_full_field():
    """For a node θ = (r, c, v), the full velocity of u = r e₁ is −η v E_x[e(x) σ'(u·x + c) x]
    with the (radial) residual of the limit; its e₁ component is ṙ and the others vanish.
    Monte Carlo over x ∈ R^d, within 4 standard errors."""
    d = 6
    law, lim = _limit(d, out_bias=True, nodes=6)
    y = lim.y0.copy()
    y[-1] = 0.3                               # an output bias, so e is not just −g
    _, V = lim.velocity(y)
    r, c, v, b = lim.split(y)
    rng = np.random.default_rng(5)
    X = law.sample(200_000, rng)
    rho = np.linalg.norm(X, axis=1)
    e = lim.profile(y, rho) - mf.ReluNorm(1.0).profile(rho)
    n = lim.n
    for i in (0, n // 3, n // 2, n - 1):
        z = r[i] * X[:, 0] + c[i]
        act = (z > 0).astype(float)
        terms = {"r": -v[i] * e * act * X[:, 0], "c": -v[i] * e * act,
                 "v": -e * np.maximum(z, 0.0), "u_perp": -v[i] * e * act * X[:, 1]}
        got = {"r": V[i], "c": V[n + i], "v": V[2 * n + i], "u_perp": 0.0}
        for k, t in terms.items():
            se = t.std() / math.sqrt(t.size)
            assert abs(t.mean() - got[k]) <= 4 * se + 1e-12, (i, k, t.mean(), got[k], se)
    tb = -e
    assert abs(tb.mean() - V[-1]) <= 4 * tb.std() / math.sqrt(tb.size)


def test_loss_at_t0_against_an_independent_quadrature():
    """v ~ N(0, 1) gives F = 0 and the loss ½ E g(ρ)² exactly.  With v ≡ 1, F(ρ) = E ReLU(u·x + c)
    over u ~ N(0, I/d), c ~ N(0, 1) in the original coordinates: u·x + c ~ N(0, ρ²/d + 1),
    whose ReLU has mean σ/√(2π).  The limit's F and loss converge to that and to scipy's
    quadrature of the loss as the initial-law rule is refined (algebraically: A0 has
    kinks of order (d − 1)/2 at c = ±rρ, which no fixed rule follows); at ρ = 0 the
    split rule of c makes F exact."""
    d = 5
    law = mf.Radial(d, stats.uniform(0.0, 2.0))
    lim = LM.TwoLayerLimit(d, law, mf.ReluNorm(1.0), nodes=10, norm_nodes=40)
    # ½ E (1 − ρ)₊² with ρ ~ U[0, 2] = ½ · ½ ∫_0^1 (1 − ρ)² dρ = 1/12
    assert lim.loss(lim.y0) == pytest.approx(1 / 12, rel=1e-14)

    def F(rho):
        return math.sqrt(rho * rho / d + 1.0) / math.sqrt(2 * math.pi)

    ref, _ = integrate.quad(lambda p: 0.5 * (F(2 * p) - max(1 - 2 * p, 0.0)) ** 2, 0, 1,
                            points=[0.5], epsabs=1e-15, epsrel=1e-14)
    grid = (0.3, 1.0, 1.7)
    errs = []
    for n in (5, 10, 20):
        lim = LM.TwoLayerLimit(d, law, mf.ReluNorm(1.0), nodes=n, norm_nodes=40,
                               v_init=mf.init.Constant(1.0))
        assert lim.profile(lim.y0, 0.0)[0] == pytest.approx(F(0.0), rel=1e-14)
        errs.append((max(abs(lim.profile(lim.y0, r)[0] / F(r) - 1) for r in grid),
                     abs(lim.loss(lim.y0) / ref - 1)))
    assert errs[0][0] > errs[1][0] > errs[2][0] and errs[2][0] < 1e-5
    assert errs[0][1] > errs[2][1] and errs[2][1] < 1e-5


def test_energy_identity_and_conservation():
    law, lim = _limit(5)
    _check_energy_identity(lim)
    # v² − r² − c² per node: conserved by the exact flow, Euler drifts by O(dt²) per step
    drift = _conservation_drift(lim, "euler", (0.02, 0.01))
    assert drift[1] < 0.6 * drift[0]          # first order in dt over a fixed time
    assert _conservation_drift(lim, "rk4", (0.02,))[0] < 1e-7


def _check_energy_identity(lim):
    """−dL/dt = Σ w |V|² / η at y0, against a centred finite difference along the flow."""
    L0, V = lim.velocity()
    h = 1e-5
    dL = (lim.loss(lim.y0 + h * V) - lim.loss(lim.y0 - h * V)) / (2 * h)
    assert -dL == pytest.approx(lim.dissipation(V), rel=1e-7)


def _conservation_drift(lim, method, dts) -> list:
    """max over nodes of |Δ(v² − r² − c²)| after integrating to t = 1 with each dt."""
    out = []
    for dt in dts:
        st = solvers.solve(lim, lim.y0, method=method, dt=dt, stop=solvers.Stop(t_end=1.0))
        out.append(np.max(np.abs(lim.conserved(st.y) - lim.conserved(lim.y0))))
    return out


def test_refinement_converges():
    """The loss and F along the flow change less and less as both rules are refined."""
    d = 5
    law = mf.Radial(d, stats.uniform(0.5, 1.5))
    out = []
    for nodes, nn in ((4, 8), (8, 12), (16, 16)):
        lim = LM.TwoLayerLimit(d, law, mf.ReluNorm(1.0), nodes=nodes, norm_nodes=nn)
        st = solvers.solve(lim, lim.y0, method="rk4", dt=0.1, stop=solvers.Stop(t_end=1.0))
        grid = np.linspace(0.5, 2.0, 31)
        out.append((lim.loss(st.y), lim.profile(st.y, grid)))
    e1 = abs(out[1][0] - out[0][0]), np.max(np.abs(out[1][1] - out[0][1]))
    e2 = abs(out[2][0] - out[1][0]), np.max(np.abs(out[2][1] - out[1][1]))
    assert e2[0] < 0.25 * e1[0] and e2[1] < 0.25 * e1[1]
    assert e2[1] < 1e-4


def test_the_limit_moves_like_a_wide_network():
    """One Euler step of the limit against one of a wide particle network trained on a
    large sample of the same law, both from the same initial law: F after the step."""
    d = 4
    law = mf.Radial(d, stats.uniform(0.5, 1.5))
    lim = LM.TwoLayerLimit(d, law, mf.ReluNorm(1.0), nodes=20, norm_nodes=60)
    st = solvers.solve(lim, lim.y0, method="euler", dt=0.5, stop=solvers.Stop(steps=4))
    m, N = 20_000, 20_000
    net = mf.two_layer(d, m, seed=3)
    X = law.sample(N, 4)
    obj = mf.Objective(net, mf.Dataset(X, mf.ReluNorm(1.0)(X)))
    th = net.theta.copy()
    out = np.empty_like(th)
    sc = obj.default_scales()
    for _ in range(4):
        obj(th, out, sc, 0)
        th += 0.5 * out
    grid = np.linspace(0.6, 1.9, 8)
    Xg = grid[:, None] * np.eye(d)[0]
    f_net = net.with_theta(th)(Xg)
    f_lim = lim.profile(st.y, grid)
    # the steps moved F by about 0.08; a network of width m on N samples differs from
    # the limit by fluctuations of order 1/√m + 1/√N ≈ 0.005 (0.001–0.006 measured for
    # m = N = 10⁴ and 4·10⁴ and two seeds)
    assert np.max(np.abs(f_lim - lim.profile(lim.y0, grid))) > 0.05
    assert np.max(np.abs(f_net - f_lim)) < 0.015


def test_bad_input_is_refused_with_the_reason():
    d = 4
    law = mf.Radial(d, stats.uniform(0.0, 2.0))
    with pytest.raises(ValueError, match="radial target"):
        LM.TwoLayerLimit(d, law, mf.targets.Teacher(mf.two_layer(d, 4)))
    with pytest.raises(ValueError, match="rotation-invariant"):
        LM.TwoLayerLimit(d, law, mf.ReluNorm(1.0), u_init=mf.init.Constant(1.0))
    with pytest.raises(ValueError, match="EldanShamir has a heavy-tailed norm"):
        LM.TwoLayerLimit(d, mf.EldanShamir(d), mf.ReluNorm(1.0))
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        LM.TwoLayerLimit(d, law, mf.ReluNorm(1.0), activation="gelu")
    with pytest.raises(ValueError, match="supports the outputs identity, clip01, not 'sigmoid'"):
        LM.TwoLayerLimit(d, law, mf.ReluNorm(1.0), output="sigmoid")
    with pytest.raises(ValueError, match="SafranLeeD has a heavy-tailed norm"):
        LM.TwoLayerLimit(d, mf.SafranLeeD(d), mf.ReluNorm(1.0))
    with pytest.raises(ValueError, match="d = 3 but the network takes d = 4"):
        LM.TwoLayerLimit(d, mf.Radial(3, stats.uniform(0.0, 2.0)), mf.ReluNorm(1.0))


def test_stages_address_the_groups_by_the_networks_names():
    """A stage that freezes "1.u" keeps every r where it was; "1.c" and "1.v" move."""
    law, lim = _limit(4, nodes=4)
    # 4 r × (4 + 4) c × 4 v nodes; two pieces of the norm rule (split at the kink) of 81
    assert repr(lim) == ("TwoLayerLimit(d=4, law=Radial(scipy norm law), kinks=(1.0,), "
                         "128 nodes (tensor rule), 162 norm nodes, activation='relu', output='identity', "
                         "bias=True, out_bias=False)")
    st = solvers.solve(lim, lim.y0, method="euler", dt=0.1, stop=solvers.Stop(steps=3),
                       schedule=[solvers.Stage(freeze=["1.u"])])
    n = lim.n
    assert np.array_equal(st.y[:n], lim.y0[:n])
    assert not np.array_equal(st.y[n:], lim.y0[n:])


def test_serial_and_parallel_kernels_give_the_same_bits():
    """Each velocity and each F(ρ_k) is one thread's sum in a fixed order."""
    from meanfield.parallel import Schedule

    law, lim = _limit(6, nodes=6)
    out = {}
    for pol in ("never", "always"):
        lim._schedule = Schedule(1e12, pol, threads=2)
        v = np.empty(lim.size)
        loss = lim(lim.y0 + 0.01, v, lim.default_scales())
        out[pol] = (loss, v)
    assert out["never"][0] == out["always"][0]
    assert np.array_equal(out["never"][1], out["always"][1])


# -- [RZG] networks: two blocks ------------------------------------------------------
DEEP = """
seed = 1
[model]
d = 4
widths = [8000, 8000]
bottleneck = [1]
activations = ["relu", "relu"]
out_bias = true
[model.init]
"1.u" = {law = "sphere", radius = 1.0}
"1.c" = {law = "zero"}
"1.v" = {law = "gaussian", mean = 1.0, std = 1.0}
[data]
distribution = "radial"
norm = {dist = "uniform", loc = 0.5, scale = 1.5}
n_train = 8000
n_test = 2
[target]
kind = "relu-norm"
r = 1.0
[solver]
method = "euler"
dt = 0.5
steps = 10
"""


def test_the_three_layer_limit_moves_like_a_wide_network():
    """Ten Euler steps of the [RZG] limit against a network of width 8000 per block
    trained on 8000 samples from the same initial laws: F after the steps.  (The
    first block starts with v of mean 1, so that h ≠ 0 and both blocks move.)"""
    from meanfield import config as C
    from meanfield.experiment import drive

    cfg = C.load_config(DEEP)
    lim = C.make_limit(cfg, nodes=10, norm_nodes=40)
    assert isinstance(lim, LM.ThreeLayerLimit)
    st = solvers.solve(lim, lim.y0, method="euler", dt=0.5, stop=solvers.Stop(steps=10))
    exp = C.build(cfg)
    final, status, _ = drive(exp.objective(), exp.network.theta, **exp.solver_kwargs())
    net = exp.network.with_theta(final.y)
    grid = np.linspace(0.6, 1.9, 8)
    F = lim.profile(st.y, grid)
    # F moved by 0.091; the network differs from the limit by 0.0014, 0.0035 and 0.0020
    # for init seeds 1, 2, 3 (fluctuations of order 1/√m + 1/√N); over 40 steps
    # (t = 20, h moving by 0.42) by 3.5e-3, 1.2e-3, 1.8e-3 at widths 2000, 8000, 32000
    # on 20000 samples
    assert np.max(np.abs(F - lim.profile(lim.y0, grid))) > 0.08
    assert np.max(np.abs(net(grid[:, None] * np.eye(4)[0]) - F)) < 0.01


def test_the_three_layer_velocities_are_the_gradient_of_the_population_loss():
    """Along the velocity V (per-group time scales η), dL/dε (y + εV) at ε = 0 is
    −Σ_g Σ_i w_i ‖V_i‖² / η_g: central finite differences of the loss against the
    dissipation, at a state away from the initial one, for ReLU and erf second blocks."""
    from meanfield import init as I

    d = 5
    law = mf.Radial(d, stats.uniform(0.5, 1.5))
    for act in ("relu", "erf"):
        lim = LM.ThreeLayerLimit(d, law, mf.ReluNorm(1.0), k=2, nodes=3, norm_nodes=20,
                                 init={"1.v": I.Gaussian(1.0, mean=0.5)}, activation2=act,
                                 out_bias=True)
        st = solvers.solve(lim, lim.y0, method="euler", dt=0.5, stop=solvers.Stop(steps=1))
        eta = np.array([1.0, 2.0, 0.5, 1.5, 1.0, 0.7, 1.3])
        loss, V = lim.velocity(st.y, eta)
        assert loss == pytest.approx(lim.loss(st.y), rel=1e-14)
        eps = 1e-6
        fd = (lim.loss(st.y + eps * V) - lim.loss(st.y - eps * V)) / (2 * eps)
        assert fd == pytest.approx(-lim.dissipation(V, eta), rel=1e-6)
        assert lim.dissipation(V, eta) > 1e-5
        assert min(np.max(np.abs(g.view(V))) for g in lim.groups) > 3e-5   # every group moves


def test_the_symmetric_three_layer_limit_stays_at_its_saddle():
    """With the preset relu-norm-3layer's initial laws (v of the first block and a of the
    second centred and independent of the rest) h ≡ 0 and Γ ≡ 0 at t = 0, and by the
    symmetry neither the first block nor a ever moves: the exact limit learns only a
    constant (the second block's E[w ReLU(b)]).  Finite networks leave this saddle
    through their O(1/√m) fluctuations."""
    from meanfield import config as C
    from meanfield.presets import text

    cfg = C.load_config(text("relu-norm-3layer"), ["model.d=4"])
    lim = C.make_limit(cfg, nodes=4, norm_nodes=12)
    moved = {}
    st = solvers.solve(lim, lim.y0, method="euler", dt=0.5, stop=solvers.Stop(steps=20),
                       hooks=[lambda s: moved.update(
                           {g.name: max(moved.get(g.name, 0.0), float(np.max(np.abs(g.view(s.y) - g.view(lim.y0)))))
                            for g in lim.groups})])
    assert max(moved[g] for g in ("1.u", "1.c", "1.v", "2.u")) < 1e-15   # rounding
    assert moved["2.c"] > 1e-2 and moved["2.v"] > 1e-2
    H, F = lim.features(st.y, np.linspace(0.1, 1.9, 7))
    assert np.max(np.abs(H)) < 1e-15 and np.ptp(F) < 1e-15


# -- smooth activations, the clipped output, heavy tails -------------------------------
@pytest.mark.parametrize("act", ["erf", "tanh", "sigmoid", "softplus"])
def test_smooth_averages_against_quadrature(act):
    """A0, A1, A2 by the 64-node Gauss–Gegenbauer rule against scipy's adaptive
    quadrature with the density's algebraic endpoint weight."""
    code = mf.activations.activation_code(act)
    sig = {"erf": special.erf, "tanh": np.tanh, "sigmoid": special.expit,
           "softplus": lambda x: np.logaddexp(0, x)}[act]
    dsig = {"erf": lambda x: 2 / np.sqrt(np.pi) * np.exp(-x * x),
            "tanh": lambda x: 1 - np.tanh(x) ** 2,
            "sigmoid": lambda x: special.expit(x) * (1 - special.expit(x)),
            "softplus": special.expit}[act]
    for d in (2, 3, 5, 20):
        s, om = LM.direction_rule(d, 64)
        z = LM._beta_half(d)
        for a, c in [(0.3, 0.0), (2.0, 0.4), (6.0, -1.0), (0.0, 0.7)]:
            A = LM.averages(a, c, d, z, code, s, om)
            ref = [_above(lambda t: sig(a * t + c), d, -np.inf),
                   _above(lambda t: dsig(a * t + c), d, -np.inf),
                   _above(lambda t: t * dsig(a * t + c), d, -np.inf)]
            assert np.allclose(A, ref, rtol=0, atol=2e-13), (d, a, c, A, ref)


def test_frozen_features_are_kept_and_give_the_same_bits():
    """With u and c frozen (the [SL] depth-2 learner) the averages are computed once;
    the velocities are the kernels' own, bit for bit."""
    d = 5
    law = mf.SafranLeeDPrime(d)
    lim = LM.TwoLayerLimit(d, law, mf.BallIndicator(1.3), nodes=5, norm_nodes=16,
                           activation="erf", output="clip01", train=("v",),
                           u_init=mf.init.Gaussian(0.5), c_init=mf.init.Gaussian(0.5))
    y = lim.y0 + np.r_[np.zeros(2 * lim.n), np.linspace(0.1, 0.3, lim.n)]
    out = np.empty(lim.size)
    loss = lim(y, out, lim.default_scales())
    assert lim._tables is not None
    r, c, v, _ = lim.split(y)
    F, Fabs = np.empty(lim.rho.size), np.empty(lim.rho.size)
    args = (lim.d, lim.z, lim.code, lim.sd, lim.od)
    LM._forward(r, c, v, lim.w, lim.rho, *args, F, Fabs)
    f, slope = LM._output("clip01", F, Fabs, lim.n)
    e = f - lim.y_rho
    V = np.empty((3, lim.n))
    LM._velocity(r, c, v, lim.rho, lim.wrho, e * slope, *args, -0.0, -0.0, -1.0, *V)
    assert np.array_equal(out[2 * lim.n:], V[2]) and loss == 0.5 * float(np.dot(lim.wrho, e * e))
    assert np.all((f > 0) & (f < 1))   # inside the clip: every norm node moves v


def test_the_clipped_output_starts_with_half_the_slope():
    """At t = 0 the depth-2 learner's limit output is 0 (v has mean 0), where the clip has
    its kink; the convention ψ'(0) = ½ moves it at half the speed of the unclipped
    output, whatever the sign that rounding gives the computed 0."""
    d = 5
    kw = dict(nodes=5, norm_nodes=16, activation="erf", train=("v",),
              u_init=mf.init.Gaussian(0.5), c_init=mf.init.Gaussian(0.5))
    law = mf.SafranLeeDPrime(d)
    clip = LM.TwoLayerLimit(d, law, mf.BallIndicator(1.3), output="clip01", **kw)
    ident = LM.TwoLayerLimit(d, law, mf.BallIndicator(1.3), **kw)
    # 0 up to rounding (the nodes' terms cancel in pairs): within n ε Σ|terms| of the kink
    assert np.max(np.abs(clip.profile(clip.y0))) < 1e-17
    lc, vc = clip.velocity()
    li, vi = ident.velocity()
    assert lc == li and np.array_equal(vc, 0.5 * vi) and np.max(np.abs(vi)) > 0.01


def test_heavy_tails_with_bounded_features():
    """The Eldan–Shamir law and [SL]'s D_d (half of it Eldan–Shamir) are accepted with
    bounded (erf) features: the norm rule integrates a bounded function like a large
    sample of the law (its 1/ρ tail included), and the limit's velocities are finite."""
    d = 5
    for law in (mf.EldanShamir(d), mf.SafranLeeD(d)):
        rho, w = LM.norm_rule(law, 60, kinks=(1.0,), bounded=True)
        x = law.sample_norms(400_000, np.random.default_rng(5))
        h = lambda r: np.tanh(r) / (1 + r)   # noqa: E731
        se = h(x).std() / np.sqrt(x.size)
        assert abs(float(w @ h(rho)) - h(x).mean()) < 4 * se
        lim = LM.TwoLayerLimit(d, law, mf.BallIndicator(1.0), nodes=3, norm_nodes=20,
                               activation="erf")
        loss, V = lim.velocity()
        assert np.isfinite(loss) and np.all(np.isfinite(V))


@pytest.mark.parametrize("d,mv,n", [(2, 0.0, 16), (5, 0.5, 16), (20, -0.3, 32)])
def test_the_homogeneous_rule_integrates_the_initial_law(d, mv, n):
    """The homogeneous rule's weights integrate 2-homogeneous functions of θ = (r, c, v)
    against the initial law: E‖θ‖² = d s² + 1 + 1 + m_v², E v², E c·v, E r v; its
    probability weights and radial nodes (the clouds of a sweep's distances) reproduce
    the law's moments E r, E v, E r² (closed forms, independent of the rule).  The
    angular rule converges spectrally but needs more nodes as d grows (d = 20: E v² off
    by 1.7e-3, 1.5e-6, 2.4e-10, 1.4e-13 with n = 8, 16, 24, 32)."""
    su = 1 / math.sqrt(d)
    r, c, v, W, P, lam, plam = LM.homogeneous_rule(d, mf.init.Gaussian(su), mf.init.Gaussian(1.0),
                                                    mf.init.Gaussian(1.0, mv), n)
    Er = su * math.sqrt(2) * math.exp(special.gammaln((d + 1) / 2) - special.gammaln(d / 2))
    assert np.allclose(r * r + c * c + v * v, 1.0, atol=1e-14)
    assert np.sum(W) == pytest.approx(d * su ** 2 + 2 + mv ** 2, rel=1e-6)
    assert np.sum(W * v * v) == pytest.approx(1 + mv ** 2, rel=1e-6)
    assert np.sum(W * r * v) == pytest.approx(Er * mv, rel=1e-6, abs=1e-12)
    assert np.sum(W * c * v) == pytest.approx(0.0, abs=1e-10)
    assert np.sum(P) == pytest.approx(1.0, rel=1e-6)
    pts = (np.stack([r, c, v], axis=1)[:, None, :] * lam[:, :, None]).reshape(-1, 3)
    p = (P[:, None] * plam).ravel()
    # 8 radial nodes: exact for powers of λ², within 6e-4 for λ itself (d = 2)
    assert np.dot(p, pts[:, 0]) == pytest.approx(Er, rel=1e-3)
    assert np.dot(p, pts[:, 2]) == pytest.approx(mv, abs=1e-4)
    assert np.dot(p, pts[:, 0] ** 2) == pytest.approx(d * su ** 2, rel=1e-5)


def test_the_homogeneous_rule_follows_the_tensor_rule():
    """On U[0.5, 2] norms (no mass at the kink of ReLU(c) at ρ = 0) the homogeneous rule
    with 4·24² = 2304 directions and the tensor rule with 2·24³ = 27648 nodes give the
    same F after 40 Euler steps to 1e-6 (measured 5.9e-7, while F moved by 0.146; with
    8 nodes per coordinate the rules are 2.7e-5 and 2.2e-5 from it); its loss obeys the
    energy identity and its nodes conserve v² − r² − c² like the tensor rule's; its
    clouds are the law's."""
    d = 5
    law = mf.Radial(d, stats.uniform(0.5, 1.5))
    kw = dict(norm_nodes=16, u_init=mf.init.Gaussian(1 / math.sqrt(d)),
              v_init=mf.init.Gaussian(1.0, 0.5))
    ten = LM.TwoLayerLimit(d, law, mf.ReluNorm(1.0), nodes=24, **kw)
    F = {}
    for n in (8, 24):
        hom = LM.TwoLayerLimit(d, law, mf.ReluNorm(1.0), nodes=n, rule="homogeneous", **kw)
        assert hom.n == 4 * n * n and "homogeneous rule" in repr(hom)
        st = solvers.solve(hom, hom.y0, method="euler", dt=0.1, stop=solvers.Stop(steps=40))
        F[n] = hom.profile(st.y)
    st = solvers.solve(ten, ten.y0, method="euler", dt=0.1, stop=solvers.Stop(steps=40))
    Ft = ten.profile(st.y)
    dist = lambda a, b: math.sqrt(np.dot(ten.wrho, (a - b) ** 2))
    assert dist(F[24], Ft) < 1e-6 and dist(F[8], Ft) > 1e-5 and dist(Ft, ten.profile(ten.y0)) > 0.1
    _check_energy_identity(hom)
    # RK4 conserves v² − r² − c² to fourth order (4.7e-7 and 2.8e-8 with dt = 0.02, 0.01:
    # the largest drift is at a direction near r = c = 0, where c crosses the kink)
    drift = _conservation_drift(hom, "rk4", (0.02, 0.01))
    assert drift[1] < 1e-7 and drift[1] < drift[0] / 8
    (cloud, p), = hom.clouds(hom.y0)
    assert cloud.shape == (hom.n * 8, 3) and p.sum() == pytest.approx(1.0, rel=1e-6)
    assert np.dot(p, cloud[:, 2]) == pytest.approx(0.5, abs=1e-4)
    with pytest.raises(ValueError, match="homogeneous rule needs a 2-homogeneous activation"):
        LM.TwoLayerLimit(d, law, mf.ReluNorm(1.0), activation="erf", rule="homogeneous")
    with pytest.raises(ValueError, match=r"homogeneous rule needs u ~ Gaussian\(mean 0"):
        LM.TwoLayerLimit(d, law, mf.ReluNorm(1.0), rule="homogeneous",
                         u_init=mf.init.Sphere(1.0))
    with pytest.raises(ValueError, match="rule: expected one of tensor, homogeneous"):
        LM.TwoLayerLimit(d, law, mf.ReluNorm(1.0), rule="polar")


def test_a_memory_recorder_records_the_limit():
    """The limit is a velocity field like any other: the run loop with a
    :class:`MemoryRecorder` keeps its population loss, its states and its blocks'
    velocity norms in L²(ν), whose squares add up to the dissipation (unit time scales,
    no output bias), for one block and for two."""
    from meanfield.experiment import drive
    from meanfield.record import MemoryRecorder

    record = {"series_every": 2, "snapshot_every": 4, "checkpoint_every": 4, "test_every": 2}
    law, two = _limit(5, nodes=4)
    three = LM.ThreeLayerLimit(4, mf.Radial(4, stats.uniform(0.5, 1.5)), mf.ReluNorm(1.0),
                               nodes=3, norm_nodes=8,
                               init={"1.v": mf.init.Gaussian(1.0, 0.5)})
    for lim in (two, three):
        rec = MemoryRecorder(lim, record)
        final, status, _ = drive(lim, lim.y0, hooks=(rec,), every=rec.every(), method="euler",
                                 dt=0.1, stop=solvers.Stop(steps=8))
        assert status == "complete" and rec.series["step"] == [0, 2, 4, 6, 8]
        assert rec.snapshots["step"] == [0, 4, 8]
        assert np.array_equal(rec.snapshots["theta"][-1], final.y)
        assert rec.series["loss"][-1] == pytest.approx(lim.loss(final.y), rel=1e-12)
        # at step 8: at t = 0 the [RZG] first block stands still (w has mean 0, so Γ = 0)
        vn = np.asarray(rec.series["velocity_norm"][-1])
        assert vn.shape == (lim.L,) and np.all(vn > 0)
        _, V = lim.velocity(final.y)
        assert np.sum(vn ** 2) == pytest.approx(lim.dissipation(V), rel=1e-12)


def test_the_homogeneous_rule_of_an_rzg_first_block_follows_the_tensor_rule():
    """Two blocks, k = 1: the first block's (r, c, v) is 2-homogeneous (G depends on ρ
    only), so the homogeneous rule applies to it; after 20 Euler steps F agrees with the
    tensor rule's (measured 1.7e-7 apart with 4·12² directions against 2·12³ nodes, F
    having moved by 0.083), the energy identity holds and the first block's cloud is its
    law."""
    d = 4
    law = mf.Radial(d, stats.uniform(0.5, 1.5))
    init = {"1.v": mf.init.Gaussian(1.0, 0.5)}
    lims = [LM.ThreeLayerLimit(d, law, mf.ReluNorm(1.0), nodes=12, norm_nodes=12, init=init,
                               rule=rule) for rule in ("tensor", "homogeneous")]
    F = []
    for lim in lims:
        st = solvers.solve(lim, lim.y0, method="euler", dt=0.5, stop=solvers.Stop(steps=20))
        F.append(lim.profile(st.y))
    ten, hom = lims
    dist = lambda a, b: math.sqrt(np.dot(ten.wrho, (a - b) ** 2))
    assert dist(F[0], F[1]) < 2e-6 and dist(F[0], ten.profile(ten.y0)) > 0.05
    assert hom.n1 == 4 * 12 * 12 and hom.n2 == ten.n2
    _check_energy_identity(hom)
    (cloud, p), second = hom.clouds(hom.y0)
    assert cloud.shape == (hom.n1 * 8, 3) and p.sum() == pytest.approx(1.0, rel=1e-6)
    assert np.dot(p, cloud[:, 2]) == pytest.approx(0.5, abs=1e-4)
    assert np.array_equal(second[1], ten.clouds(ten.y0)[1][1])
    with pytest.raises(ValueError, match="homogeneous rule needs a ReLU first block with k = 1"):
        LM.ThreeLayerLimit(d, law, mf.ReluNorm(1.0), k=2, rule="homogeneous")
    # c = 0 at the start (the [RZG] preset's law): the directions of (r, 0, v), 2n of them
    r, c, v, W, *_ = LM.homogeneous_rule(d, mf.init.Gaussian(0.5), mf.init.Constant(0.0),
                                         mf.init.Gaussian(1.0, 0.5), 12)
    assert r.size == 24 and np.all(c == 0) and np.sum(W) == pytest.approx(d * 0.25 + 1.25, rel=1e-8)
