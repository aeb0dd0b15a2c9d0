"""Integrators, schedules, projections, noise, stopping and divergence."""
import math

import numpy as np
import pytest
from scipy import linalg, stats

import meanfield as mf
import solvers
from solvers import BallProjection, BoxProjection, Group, Langevin, Stage, Stop

from .reference import loss_and_grad


class Linear:
    """y' = −A y on two groups (a: 3 particles × 2, b: 2 particles × 1); loss ½‖y‖²."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        B = rng.standard_normal((8, 8))
        self.A = B @ B.T / 8 + 0.2 * np.eye(8)
        self.groups = (Group("a", 0, (3, 2)), Group("b", 6, (2, 1)))
        self.size = 8

    def __call__(self, y, out, scales, step):
        out[:] = -(self.A @ y)
        out[:6] *= scales[0]
        out[6:] *= scales[1]
        return 0.5 * float(y @ y)


def small_problem(act="tanh", seed=0, n=80):
    net = mf.rzg_three_layer(3, 12, 10, k=2, activations=(act, act), seed=seed)
    rng = np.random.default_rng(seed + 1)
    X = rng.standard_normal((n, 3))
    return net, mf.Dataset(X, np.maximum(1 - np.linalg.norm(X, axis=1), 0))


def final_theta(obj, theta, **kw):
    return solvers.solve(obj, theta, **kw).y


# -- one Euler step is one gradient-descent step --------------------------------------
def test_euler_step_is_gradient_descent():
    net, ds = small_problem("softplus")
    obj = mf.Objective(net, ds)
    dt, eta = 0.05, {"1": 0.7, "2": 1.3}
    y1 = final_theta(obj, net.theta, method="euler", dt=dt, stop=Stop(steps=1),
                     schedule=[Stage(time_scales=eta)])
    _, grad = loss_and_grad(net, ds.X, ds.y)
    lr = np.zeros(net.n_params)
    for name, start, shape, _ in net.groups():
        l = int(name[0])
        lr[start:start + int(np.prod(shape))] = eta[str(l)] * net.widths[l - 1] * dt
    expected = net.theta - lr * grad
    assert np.max(np.abs(y1 - expected)) <= 1e-12 * np.max(np.abs(expected))
    assert np.max(np.abs(y1 - net.theta)) > 1e-6  # the step moved the particles


# -- convergence orders ---------------------------------------------------------------
@pytest.mark.parametrize("method,order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_convergence_order_on_network_flow(method, order):
    net, ds = small_problem("tanh")
    obj = mf.Objective(net, ds)
    T = 0.8
    ref = final_theta(obj, net.theta, method="rk4", dt=T / 2048, stop=Stop(t_end=T))
    dts = [T / 8, T / 16, T / 32, T / 64]
    errs = [np.max(np.abs(final_theta(obj, net.theta, method=method, dt=h, stop=Stop(t_end=T)) - ref))
            for h in dts]
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(slope - order) <= 0.3, (slope, errs)


@pytest.mark.parametrize("method,order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_convergence_order_against_exact_linear_flow(method, order):
    f = Linear()
    y0 = np.linspace(-1, 1, 8)
    T = 1.0
    exact = linalg.expm(-T * f.A) @ y0
    dts = [T / 4, T / 8, T / 16, T / 32]
    errs = [np.max(np.abs(final_theta(f, y0, method=method, dt=h, stop=Stop(t_end=T)) - exact))
            for h in dts]
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(slope - order) <= 0.3, (slope, errs)


def test_rk45_meets_tolerance_and_adapts():
    f = Linear()
    y0 = np.linspace(-1, 1, 8)
    exact = linalg.expm(-3.0 * f.A) @ y0
    errs = []
    for rtol in (1e-4, 1e-7):
        s = solvers.solve(f, y0, method="rk45", dt=1e-3, rtol=rtol, atol=rtol * 1e-2,
                          stop=Stop(t_end=3.0))
        assert s.t == 3.0 and s.done == "t_end"
        errs.append(np.max(np.abs(s.y - exact)))
        assert errs[-1] < 50 * rtol
    assert errs[1] < errs[0] / 100
    # on the network flow, against a fine RK4 reference
    net, ds = small_problem("erf")
    obj = mf.Objective(net, ds)
    ref = final_theta(obj, net.theta, method="rk4", dt=1 / 1024, stop=Stop(t_end=1.0))
    s = solvers.solve(obj, net.theta, method="rk45", dt=0.01, rtol=1e-8, atol=1e-10,
                      stop=Stop(t_end=1.0))
    assert np.max(np.abs(s.y - ref)) < 1e-6 * np.max(np.abs(ref))
    assert s.step < 1024


# -- energy identity --------------------------------------------------------------------
def _energy_problems():
    net, ds = small_problem("softplus")
    yield "rzg-mf", net, ds, {"1": 0.5, "2": 2.0}
    X = mf.data.Ball(3, 2.0).sample(80, 5)
    yield "depth1-out-bias", mf.sl_depth1(3, 20, "tanh", seed=1), mf.Dataset(X, mf.BallIndicator(1.0)(X)), \
        {"out.b": 3.0}
    yield "ntk", mf.two_layer(3, 30, "erf", scaling="ntk", seed=2), ds, {"1.v": 0.3}


@pytest.mark.parametrize("case", range(3))
def test_energy_identity(case):
    """dL/dt = −Σ_l η_l ∫‖∇δL/δμ_l‖² dμ_l (plus the output bias), measured along the flow."""
    name, net, ds, sc = list(_energy_problems())[case]
    obj = mf.Objective(net, ds)
    stage = [Stage(time_scales=sc)]
    s0 = solvers.solve(obj, net.theta, method="rk4", dt=0.01, stop=Stop(t_end=0.3), schedule=stage)
    h = 1e-3
    traj = list(solvers.iterate(obj, s0.y, method="rk4", dt=h, stop=Stop(steps=2), schedule=stage))
    dLdt = (traj[2].loss - traj[0].loss) / (2 * h)
    scales = solvers.resolve(stage[0], obj.groups).scales
    _, V = obj.velocity(traj[1].y, scales)
    diss = obj.dissipation(V, scales)
    assert diss > 0
    assert dLdt == pytest.approx(-diss, rel=1e-3), name


# -- determinism ------------------------------------------------------------------------
def test_same_seed_bit_identical_with_noise():
    net, ds = small_problem("relu")
    obj = mf.Objective(net, ds)
    kw = dict(method="heun", dt=0.02, stop=Stop(steps=30), seed=11,
              schedule=[Stage(langevin=Langevin(tau=1e-3, lam=0.1))])
    a = final_theta(obj, net.theta, **kw)
    b = final_theta(mf.Objective(net.copy(), ds), net.theta.copy(), **kw)
    assert a.tobytes() == b.tobytes()
    c = final_theta(obj, net.theta, **dict(kw, seed=12))
    assert a.tobytes() != c.tobytes()


def test_resume_from_state_is_bit_identical():
    net, ds = small_problem("tanh")
    obj = mf.Objective(net, ds)
    sched = [Stage(steps=7, freeze=("2",)), Stage(langevin=Langevin(tau=1e-4))]
    kw = dict(method="rk4", dt=0.05, schedule=sched, seed=3)
    full = solvers.solve(obj, net.theta, stop=Stop(steps=20), **kw)
    states = list(solvers.iterate(obj, net.theta, stop=Stop(steps=20), every=5, **kw))
    mid = states[1]
    assert mid.step == 5
    resumed = solvers.solve(obj, None, state=mid, stop=Stop(steps=20), **kw)
    assert resumed.y.tobytes() == full.y.tobytes()
    assert resumed.t == full.t and resumed.step == full.step == 20


# -- noise --------------------------------------------------------------------------------
def test_counter_noise_is_standard_normal_and_keyed():
    z = solvers.normals(key=5, step=3, start=0, stop=200_000)
    assert abs(z.mean()) < 4 / math.sqrt(z.size)
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / z.size)
    assert stats.kstest(z[:20000], "norm").pvalue > 1e-3
    # a slice keyed by its global indices gives the same draws
    np.testing.assert_array_equal(solvers.normals(5, 3, 1000, 1100), z[1000:1100])
    # neighbouring steps and seeds are uncorrelated
    for other in (solvers.normals(5, 4, 0, 200_000), solvers.normals(6, 3, 0, 200_000)):
        assert abs(np.corrcoef(z, other)[0, 1]) < 4 / math.sqrt(z.size)


def test_langevin_ornstein_uhlenbeck_stationary_variance():
    """With V = 0: dθ = −ηλθ dt + √(2ητ) dW has stationary variance τ/λ."""

    class Zero:
        groups = (Group("p", 0, (4000, 1)),)
        size = 4000

        def __call__(self, y, out, scales, step):
            out[:] = 0.0
            return 0.0

    tau, lam, eta = 0.3, 2.0, 0.5
    s = solvers.solve(Zero(), np.zeros(4000), method="euler", dt=0.01, stop=Stop(t_end=6.0),
                      schedule=[Stage(time_scales={"p": eta}, langevin=Langevin(tau, lam))])
    # Euler–Maruyama's exact stationary variance for this linear SDE
    a = 1 - eta * lam * 0.01
    var_em = 2 * eta * tau * 0.01 / (1 - a * a)
    se = var_em * math.sqrt(2 / 4000)
    assert abs(s.y.var() - var_em) < 4 * se
    assert var_em == pytest.approx(tau / lam, rel=0.01)


# -- stages, projections, freezing ----------------------------------------------------------
def test_stages_freeze_and_land_on_boundaries():
    net, ds = small_problem("tanh")
    obj = mf.Objective(net, ds)
    sched = [Stage(duration=0.25, freeze=("2",)), Stage(duration=0.3, freeze=("1.u", "1.c"))]
    states = list(solvers.iterate(obj, net.theta, method="euler", dt=0.1, schedule=sched))
    final = states[-1]
    assert final.done == "schedule"
    assert final.t == pytest.approx(0.55, abs=1e-15)
    by = {s.step: s for s in states}
    # stage 1: steps of 0.1, 0.1, 0.05 (clipped); block 2 never moved
    assert by[3].t == pytest.approx(0.25, abs=1e-15)
    g = {gr.name: gr for gr in obj.groups}
    for name in ("2.u", "2.c", "2.v"):
        assert np.array_equal(g[name].view(by[3].y), g[name].view(net.theta))
    # stage 2: 1.u and 1.c frozen from the end of stage 1 on, 1.v moved
    for name in ("1.u", "1.c"):
        assert np.array_equal(g[name].view(final.y), g[name].view(by[3].y))
    assert not np.array_equal(g["1.v"].view(final.y), g["1.v"].view(by[3].y))


def test_frozen_parameters_never_move():
    net = mf.sl_depth2(4, 30, seed=1)
    X = mf.data.Ball(4, 2.0).sample(100, 0)
    obj = mf.Objective(net, mf.Dataset(X, mf.BallIndicator(1.0)(X)))
    s = solvers.solve(obj, net.theta, method="rk4", dt=0.5, stop=Stop(steps=20),
                      schedule=[Stage(langevin=Langevin(tau=1e-3, lam=0.1))])
    b = net.blocks[0]
    moved = net.with_theta(s.y).blocks[0]
    assert np.array_equal(moved.u, b.u) and np.array_equal(moved.c, b.c)
    assert not np.array_equal(moved.v, b.v)


def test_time_scale_is_a_clock_rate():
    net, ds = small_problem("tanh")
    obj = mf.Objective(net, ds)
    a = final_theta(obj, net.theta, method="rk4", dt=0.01, stop=Stop(t_end=0.2),
                    schedule=[Stage(time_scales={"*": 2.0})])
    b = final_theta(obj, net.theta, method="rk4", dt=0.02, stop=Stop(t_end=0.4))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())


def test_projections_keep_particles_in_their_sets():
    net, ds = small_problem("relu")
    obj = mf.Objective(net, ds)
    sched = [Stage(steps=3), Stage(projections=(BallProjection(("1.u",), 0.5),
                                                BoxProjection(("2.v", "2.c"), -0.2, 0.3)))]
    s = solvers.solve(obj, net.theta, method="heun", dt=0.2, stop=Stop(steps=15), schedule=sched)
    out = net.with_theta(s.y)
    assert np.linalg.norm(out.blocks[0].u, axis=1).max() <= 0.5 * (1 + 1e-12)
    assert out.blocks[1].v.min() >= -0.2 and out.blocks[1].v.max() <= 0.3
    assert out.blocks[1].c.min() >= -0.2 and out.blocks[1].c.max() <= 0.3
    assert np.linalg.norm(net.blocks[0].u, axis=1).max() > 0.5  # the projection was active
    # whole-group ball
    p = BallProjection("a", 1.0, per="group")
    y = np.arange(8.0)
    p.apply(y, Linear().groups, [0])
    assert np.linalg.norm(y[:6]) == pytest.approx(1.0) and np.array_equal(y[6:], [6, 7])


def test_divergence_raises_with_last_finite_state():
    net = mf.two_layer(3, 20, "quadratic", seed=0)
    X = np.random.default_rng(0).standard_normal((50, 3)) * 3
    obj = mf.Objective(net, mf.Dataset(X, np.zeros(50)))
    with pytest.raises(solvers.DivergenceError, match="non-finite") as ei:
        solvers.solve(obj, net.theta, method="euler", dt=5.0, stop=Stop(steps=500))
    last = ei.value.state
    assert last is not None and math.isfinite(last.loss)
    assert np.isfinite(last.y).all()
    assert math.isfinite(obj.loss(last.y))


def test_stop_conditions():
    f = Linear()
    y0 = np.ones(8)
    assert solvers.solve(f, y0, dt=0.1, stop=Stop(steps=7)).step == 7
    s = solvers.solve(f, y0, dt=0.1, stop=Stop(t_end=0.35))
    assert s.t == 0.35 and s.done == "t_end" and s.step == 4
    s = solvers.solve(f, y0, dt=0.1, stop=Stop(loss_tol=0.5))
    assert s.done == "loss_tol" and s.loss <= 0.5
    states = list(solvers.iterate(f, y0, dt=0.1, stop=Stop(steps=10), every=4))
    assert [x.step for x in states] == [0, 4, 8, 10]


def test_bad_solver_input():
    f = Linear()
    with pytest.raises(ValueError, match="unknown method"):
        solvers.solve(f, np.ones(8), method="rk7", stop=Stop(steps=1))
    with pytest.raises(ValueError, match="matches no group"):
        solvers.solve(f, np.ones(8), schedule=[Stage(freeze=("c",))], stop=Stop(steps=1))
    with pytest.raises(ValueError, match="only the last stage"):
        solvers.solve(f, np.ones(8), schedule=[Stage(), Stage(steps=2)], stop=Stop(steps=1))
    with pytest.raises(ValueError, match="Langevin"):
        solvers.solve(f, np.ones(8), method="rk45",
                      schedule=[Stage(langevin=Langevin(tau=1.0))], stop=Stop(steps=1))
    with pytest.raises(ValueError, match="shape"):
        solvers.solve(f, np.ones(7), stop=Stop(steps=1))
    with pytest.raises(ValueError, match="duration"):
        Stage(duration=1.0, steps=3)


def test_fresh_samples_each_step_are_deterministic():
    net = mf.two_layer(3, 16, "tanh", seed=0)
    law = mf.data.Gaussian(3)
    stream = mf.Stream(law.sample, mf.ReluNorm(1.0), n=64, seed=9)
    a = mf.train(net, stream, dt=0.1, stop=Stop(steps=10))
    b = mf.train(net, stream, dt=0.1, stop=Stop(steps=10))
    assert a.state.y.tobytes() == b.state.y.tobytes()
    assert not np.array_equal(stream.draw(0).X, stream.draw(1).X)
    # the stream's step-0 sample is what a fixed dataset of that sample gives for one step
    c = mf.train(net, stream.draw(0), dt=0.1, stop=Stop(steps=1))
    d = mf.train(net, stream, dt=0.1, stop=Stop(steps=1))
    assert c.state.y.tobytes() == d.state.y.tobytes()


def test_ensemble_moves_members_as_if_alone():
    """Networks of several widths and seeds in one solver loop, through one schedule."""
    members = []
    for m, seed in ((8, 0), (16, 1), (16, 2)):
        _, ds = small_problem("tanh", seed=seed)
        net = mf.rzg_three_layer(3, m, m, k=2, activations=("tanh", "tanh"), seed=seed)
        members.append((net, mf.Objective(net, ds)))
    ens = solvers.Ensemble([o for _, o in members], names=["w8", "w16a", "w16b"])
    sched = [Stage(duration=0.2, freeze=("2",)), Stage(time_scales={"w16b/1": 0.5})]
    kw = dict(method="rk4", dt=0.05, stop=Stop(t_end=0.5))
    s = solvers.solve(ens, ens.pack([n.theta for n, _ in members]), schedule=sched, **kw)
    assert s.loss == pytest.approx(float(np.sum(ens.last_values)), rel=1e-14)
    for (net, obj), y, name in zip(members, ens.unpack(s.y), ens.names):
        alone_sched = [Stage(duration=0.2, freeze=("2",)),
                       Stage(time_scales={"1": 0.5} if name == "w16b" else {})]
        alone = solvers.solve(obj, net.theta, schedule=alone_sched, **kw)
        assert y.tobytes() == alone.y.tobytes()
    with pytest.raises(ValueError, match="matches no group"):
        solvers.resolve(Stage(freeze=("w32/1.u",)), ens.groups)
