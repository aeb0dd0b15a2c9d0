"""Network construction, initial laws, views and validation."""
import math

import numpy as np
import pytest

import meanfield as mf


def test_rzg_structure_and_views():
    net = mf.rzg_three_layer(8, 30, 20, k=2, seed=0)
    assert net.L == 2 and net.widths == (30, 20) and net.dims == (8, 2, 1)
    assert net.n_params == 30 * (8 + 1 + 2) + 20 * (2 + 1 + 1)
    assert [g[0] for g in net.groups()] == ["1.u", "1.c", "1.v", "2.u", "2.c", "2.v"]
    # blocks are views into theta
    net.blocks[1].v[3, 0] = 42.0
    start = dict((g[0], g[1]) for g in net.groups())["2.v"]
    assert net.theta[start + 3] == 42.0
    # default first-block law: unit sphere, zero bias
    np.testing.assert_allclose(np.linalg.norm(net.blocks[0].u, axis=1), 1.0)
    assert not net.blocks[0].c.any()


def test_sl_depth2_laws_and_freezing():
    d, r = 10, 20_000
    net = mf.sl_depth2(d, r, seed=1)
    b = net.blocks[0]
    assert b.activation == "erf" and net.output == "clip01" and b.train == {"v"}
    n = b.u.size
    assert abs(b.u.var() - 0.25) <= 4 * 0.25 * math.sqrt(2 / n)
    assert abs(b.c.var() - 0.25) <= 4 * 0.25 * math.sqrt(2 / r)
    # w = v / r ~ N(0, 1/r²)
    w = b.v[:, 0] / r
    assert abs(w.var() * r * r - 1) <= 4 * math.sqrt(2 / r)


def test_copy_with_theta_astype():
    net = mf.sl_depth1(3, 12, seed=0)
    c = net.copy()
    c.theta[:] = 0
    assert net.theta.any()
    n32 = net.astype(np.float32)
    assert n32.theta.dtype == np.float32 and n32.out_bias == 0.0
    with pytest.raises(ValueError, match="theta must be"):
        net.with_theta(np.zeros(3))


def test_ntk_scaling():
    net = mf.two_layer(3, 64, scaling="ntk", seed=0)
    X = np.random.default_rng(0).standard_normal((5, 3))
    mfnet = mf.two_layer(3, 64, seed=0)
    np.testing.assert_allclose(net(X), mfnet(X) * math.sqrt(64), rtol=1e-12)
    np.testing.assert_array_equal(net.rates, [1.0])


@pytest.mark.parametrize("bad,match", [
    (lambda: mf.Block(np.zeros(3), None, np.zeros((3, 1))), "u must have shape"),
    (lambda: mf.Block(np.zeros((3, 2)), np.zeros(2), np.zeros((3, 1))), "c must have shape"),
    (lambda: mf.Block(np.zeros((3, 2)), None, np.zeros((4, 1))), "v must have shape"),
    (lambda: mf.Block(np.zeros((3, 2)), None, np.zeros((3, 1)), "gelu"), "unknown activation"),
    (lambda: mf.Block(np.zeros((3, 2)), None, np.zeros((3, 1)), train=("w",)), "train"),
    (lambda: mf.two_layer(3, 5, output="softmax"), "unknown output"),
    (lambda: mf.two_layer(3, 5, scaling="xavier"), "unknown scaling"),
    (lambda: mf.two_layer(3, 0), "widths and dimensions"),
    (lambda: mf.stack(3, [4, 4], [2, 2]), "bottlenecks"),
    (lambda: mf.stack(3, [4, 4], [2], ["relu"]), "activations"),
    (lambda: mf.rzg_three_layer(3, 4, 4, inits={"3.u": mf.init.Zero()}), "inits"),
    (lambda: mf.Network([mf.Block(np.zeros((2, 3)), None, np.zeros((2, 2)))]), "last block"),
    (lambda: mf.Network([mf.Block(np.zeros((2, 3)), None, np.zeros((2, 2))),
                         mf.Block(np.zeros((2, 3)), None, np.zeros((2, 1)))]), "takes k_in=3"),
    (lambda: mf.Objective(mf.two_layer(3, 4), mf.Dataset(np.zeros((5, 2)), np.zeros(5))), "dimension"),
    (lambda: mf.Objective(mf.two_layer(3, 4), mf.Dataset(np.zeros((5, 3)), np.zeros(5)), loss="hinge"),
     "unknown loss"),
    (lambda: mf.Dataset(np.zeros((5, 3)), np.zeros(4)), "y must have shape"),
    (lambda: mf.Dataset(np.full((5, 3), np.nan), np.zeros(5)), "finite"),
    (lambda: mf.two_layer(3, 4)(np.zeros((5, 2))), "X must have shape"),
])
def test_bad_input_is_a_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_no_bias_means_c_fixed_at_zero():
    b = mf.Block(np.ones((3, 2)), np.ones(3), np.ones((3, 1)), bias=False)
    assert not b.c.any() and "c" not in b.train
