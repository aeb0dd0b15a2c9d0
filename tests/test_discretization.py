"""Coupled members and gap measures against closed forms (docs/math.md §3, §7)."""
import math

import numpy as np
import pytest

import meanfield as mf
from meanfield import closed_forms as CF
from meanfield import config as C
from meanfield.presets import text as preset_text
from meanfield.discretization import coupling_gap, feature_gaps, function_gap, member


def test_subsample_is_a_subsample_and_seeded():
    ref = mf.rzg_three_layer(5, 200, 150, k=2, seed=3)
    a = member(ref, [20, 30], seed=4)
    for l, (bm, br) in enumerate(zip(a.network.blocks, ref.blocks)):
        idx = a.sigma[l]
        assert len(set(idx)) == len(idx) == bm.m          # without replacement
        for p in "ucv":
            assert np.array_equal(getattr(bm, p), getattr(br, p)[idx])
    b = member(ref, [20, 30], seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a.sigma, b.sigma))
    c = member(ref, [20, 30], seed=5)
    assert not np.array_equal(a.sigma[0], c.sigma[0])
    # at t = 0 the coupling gap is exactly zero; the member is a network of its own widths
    assert np.all(coupling_gap(a.network, ref, a.sigma) == 0.0)
    assert a.network.widths == (20, 30) and a.network.scales[0] == 1 / 20
    full = member(ref, [200, 150], seed=1)   # every particle: the same function
    X = np.random.default_rng(0).standard_normal((50, 5))
    assert function_gap(full.network, ref, X) < 1e-14


def test_bad_members():
    ref = mf.two_layer(3, 10, seed=0)
    for kwargs, msg in (({"widths": 11}, "widths: each must be in 1..10"),
                        ({"widths": [3, 3]}, "expected 1 values"),
                        ({"widths": 3, "coupling": "nearest"}, "coupling: expected one of"),
                        ({"widths": 3, "coupling": "independent"}, "needs fresh")):
        with pytest.raises(ValueError, match=msg):
            member(ref, **kwargs)


def _radial_feature_net(d, m, seed):
    """h_m(x) = (1/m) Σ ReLU(u_i·x)/c_d, u_i uniform on the sphere: a bias-free ReLU block
    with v = 1/c_d (docs/math.md §7)."""
    u = mf.init.Sphere(1.0).sample(mf.init.init_key(seed, 1, "u"), (m, d))
    blk = mf.Block(u, None, np.full((m, 1), 1 / CF.c_d(d)), "relu", bias=False)
    return mf.Network([blk])


@pytest.mark.parametrize("m", [16, 64])
def test_feature_gap_at_init_matches_the_closed_form(m):
    """Independent members against the exact limit h_∞(x) = ‖x‖:
    E_x (h_m(x) − ‖x‖)² = (π_d − 1) E‖x‖² / m, within 4 standard errors over seeds."""
    d, n, seeds = 6, 400, 300
    X = mf.data.Ball(d, 2.0).sample(n, 11)
    r2 = np.sum(X * X, axis=1)
    vals = []
    for s in range(seeds):
        net = _radial_feature_net(d, m, seed=1000 + s)
        h = net.features(X)[0][:, 0]
        vals.append(np.mean((h - np.sqrt(r2)) ** 2))
    vals = np.array(vals)
    exact = (CF.pi_d(d) - 1) * r2.mean() / m
    se = vals.std(ddof=1) / math.sqrt(seeds)
    assert abs(vals.mean() - exact) < 4 * se, (vals.mean(), exact, se)


def test_function_gap_at_init_scales_like_one_over_root_m():
    """Subsample members of a wide reference: the squared function gap at t = 0 is
    σ²(1/m − 1/M) in expectation; fitted against the effective width it has slope 1/2."""
    cfg = C.load(preset_text("relu-norm-2layer"), ["model.widths=[4096]", "data.n_train=512",
                                                  "data.n_test=256"])
    exp = C.build(cfg)
    ref, X = exp.network, exp.test.X
    M = ref.widths[0]
    widths = [16, 32, 64, 128, 256, 512]
    gaps = [np.sqrt(np.mean([function_gap(member(ref, m, seed=s).network, ref, X) ** 2
                             for s in range(20)])) for m in widths]
    eff = 1 / (1 / np.array(widths) - 1 / M)
    beta = -np.polyfit(np.log(eff), np.log(gaps), 1)[0]
    assert abs(beta - 0.5) <= 0.1, (beta, gaps)
    # the feature gap of a one-block network is the function gap
    m0 = member(ref, 64, seed=0).network
    assert feature_gaps(m0, ref, X)[0] == pytest.approx(function_gap(m0, ref, X), rel=1e-12)


def test_independent_members_from_a_config():
    cfg = C.load(preset_text("relu-norm-3layer"), ["model.widths=[256, 256]"])
    ref = C.make_network(cfg)

    def fresh(widths, seed):
        other = dict(cfg, seed={**cfg["seed"], "init": 10_000 + seed})
        return C.make_network(other, widths=widths)

    a = member(ref, 32, coupling="independent", seed=1, fresh=fresh)
    assert a.sigma is None and a.network.widths == (32, 32)
    # not a subsample: no particle of block 1 equals a reference particle
    u, U = a.network.blocks[0].u, ref.blocks[0].u
    assert not (np.abs(u[:, None, :] - U[None, :, :]).sum(-1) == 0).any()


# -- the [RZG] loss decomposition -----------------------------------------------------------------
from meanfield.discretization.decomposition import (decomposition, lipschitz_bound,  # noqa: E402
                                                    second_block)


def _rzg_problem(seed=0, m=200):
    net = mf.rzg_three_layer(5, m, m, k=1, seed=seed)
    X = mf.data.Radial(5, __import__("scipy").stats.uniform(0.0, 2.0)).sample(300, seed + 1)
    return net, X, mf.ReluNorm(1.0)(X)


def test_decomposition_terms_against_numpy_and_the_bound_holds():
    ref, X, y = _rzg_problem()
    import solvers

    trained = mf.train(ref, mf.Dataset(X, y), dt=0.5, stop=solvers.Stop(steps=60)).network
    for net in (ref, trained):
        mem = member(net, 20, seed=3).network
        dec = decomposition(mem, net, X, y)
        f, (h_m, _) = mem.forward_numpy(X, return_features=True)
        _, (h_M, _) = net.forward_numpy(X, return_features=True)
        r = np.linalg.norm(X, axis=1)
        kappa = (h_M[:, 0] @ r) / (r @ r)
        b2 = mem.blocks[1]
        lip = np.sum(np.abs(b2.v[:, 0]) * np.abs(b2.u[:, 0])) / b2.m      # ReLU, k = 1
        g = np.maximum(np.outer(kappa * r, b2.u[:, 0]) + b2.c, 0) @ b2.v[:, 0] / b2.m
        assert dec.kappa[0] == pytest.approx(kappa, rel=1e-12)
        assert dec.lip == pytest.approx(lip, rel=1e-12)
        assert dec.first_block == pytest.approx(lip ** 2 * np.mean((h_m[:, 0] - h_M[:, 0]) ** 2), rel=1e-10)
        assert dec.feature_error == pytest.approx(lip ** 2 * np.mean((h_M[:, 0] - kappa * r) ** 2), rel=1e-10)
        assert dec.perfect_first == pytest.approx(np.mean((g - y) ** 2), rel=1e-10)
        assert dec.mse == pytest.approx(np.mean((f - y) ** 2), rel=1e-12)
        assert dec.holds and dec.mse <= dec.bound
    assert decomposition(ref, ref, X, y).first_block == 0.0   # the member is the reference


def test_lipschitz_bound_dominates_empirical_slopes():
    ref, _, _ = _rzg_problem(seed=2, m=50)
    h = np.random.default_rng(0).standard_normal((2000, 1)) * 3
    slopes = np.abs(np.diff(second_block(ref)(h))) / np.abs(np.diff(h[:, 0]))
    assert slopes.max() <= lipschitz_bound(ref) * (1 + 1e-12)
    # tight where no term cancels: u, v > 0, c = 0 and h > 0 make f linear with that slope
    rng = np.random.default_rng(1)
    b1 = ref.blocks[0]
    pos = mf.Network([mf.Block(b1.u.copy(), b1.c.copy(), b1.v.copy(), "relu"),
                      mf.Block(rng.random((30, 1)), np.zeros(30), rng.random((30, 1)), "relu")])
    hp = np.array([[0.5], [2.5]])
    slope = float(np.diff(second_block(pos)(hp))[0]) / 2.0
    assert slope == pytest.approx(lipschitz_bound(pos), rel=1e-12)


def test_perfect_first_block_term_is_zero_for_the_exact_representation():
    """docs/math.md §7: with h* = κ‖x‖, the particle (v, u, c) = (1, −1/κ, 1) gives
    ReLU(1 − ‖x‖) exactly."""
    ref, X, y = _rzg_problem(m=40)
    kappa = 0.37
    b1 = ref.blocks[0]
    exact = mf.Network([mf.Block(b1.u.copy(), b1.c.copy(), b1.v.copy(), "relu"),
                        mf.Block(np.array([[-1 / kappa]]), np.array([1.0]), np.array([[1.0]]), "relu")])
    dec = decomposition(exact, exact, X, y, kappa=kappa)
    assert dec.perfect_first < 1e-30 and dec.lip == pytest.approx(1 / kappa)
    with pytest.raises(ValueError, match="two blocks"):
        decomposition(mf.two_layer(5, 4), mf.two_layer(5, 4), X, y)
