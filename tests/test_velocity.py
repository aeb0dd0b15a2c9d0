"""Every particle velocity against central finite differences of the finite-width loss,
and against the independent NumPy back-propagation in tests/reference.py."""
import itertools

import numpy as np
import pytest

import meanfield as mf
from meanfield.activations import ACTIVATIONS

from .reference import loss_and_grad, rate_vector, trainable_mask

EPS = 1e-6


def fd_velocity(obj, net):
    """−rate · ∂L/∂θ by central differences of the kernel loss, frozen entries zero."""
    th = net.theta
    g = np.zeros_like(th)
    mask = trainable_mask(net)
    for i in np.flatnonzero(mask):
        tp, tm = th.copy(), th.copy()
        tp[i] += EPS
        tm[i] -= EPS
        g[i] = (obj.loss(tp) - obj.loss(tm)) / (2 * EPS)
    return -rate_vector(net) * g


def build(act, L, k, *, bias=True, freeze=None, output="identity", out_bias=None,
          scaling="mf", seed=0, d=4):
    rng = np.random.default_rng(seed)
    widths = [7, 6, 5][:L]
    dims = [d] + [k] * (L - 1) + [1]
    blocks = []
    for l in range(L):
        train = [p for p in "ucv" if f"{l + 1}.{p}" not in (freeze or ())]
        u = rng.standard_normal((widths[l], dims[l])) / np.sqrt(dims[l])
        c = 0.5 * rng.standard_normal(widths[l])
        v = rng.standard_normal((widths[l], dims[l + 1]))
        if output == "clip01" and l == L - 1:
            v = (1.0 if L == 1 else 6.0) * v  # with the output bias 0.5: ψ clips some samples, not all
        blocks.append(mf.Block(u, c, v, act, bias=bias, train=train))
    if output == "clip01" and out_bias is None:
        out_bias = 0.5
    return mf.Network(blocks, output=output, scaling=scaling, out_bias=out_bias)


def data(net, loss, n=50, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, net.d))
    y = rng.random(n) if loss == "logistic" else np.sin(X[:, 0]) + 0.3
    if net.output == "clip01":
        y = (rng.random(n) < 0.5).astype(float)
    return mf.Dataset(X, y)


def check(net, loss="squared"):
    ds = data(net, loss)
    obj = mf.Objective(net, ds, loss=loss)
    L, V = obj.velocity()
    Vfd = fd_velocity(obj, net)
    scale = np.max(np.abs(Vfd))
    assert scale > 0
    assert np.max(np.abs(V - Vfd)) <= 1e-6 * scale, np.max(np.abs(V - Vfd)) / scale
    Lref, gref = loss_and_grad(net, ds.X, ds.y, loss)
    Vref = -rate_vector(net) * gref * trainable_mask(net)
    assert L == pytest.approx(Lref, rel=1e-12)
    assert np.max(np.abs(V - Vref)) <= 1e-10 * scale
    return V


def against_autograd(net, X, y):
    """Loss and velocities of ``net`` on (X, y) against the NumPy back-propagation: the loss
    to 1e-12 relative, every velocity to 1e-12 of the largest; returns the velocities."""
    L, V = mf.Objective(net, mf.Dataset(X, y)).velocity()
    Lref, g = loss_and_grad(net, X, y)
    Vref = -rate_vector(net) * g * trainable_mask(net)
    assert L == pytest.approx(Lref, rel=1e-12)
    assert np.max(np.abs(V - Vref)) <= 1e-12 * np.max(np.abs(Vref))
    return V


CASES = [(a, 1, 1) for a in ACTIVATIONS] + [
    (a, L, k) for a, L, k in itertools.product(ACTIVATIONS, (2, 3), (1, 3))]


@pytest.mark.parametrize("act,L,k", CASES)
def test_velocity_every_activation_depth_bottleneck(act, L, k):
    check(build(act, L, k, seed=L * 10 + k))


OPTIONS = {
    "no-bias": dict(bias=False),
    "frozen-first-u": dict(freeze=("1.u",)),
    "frozen-mixed": dict(freeze=("1.c", "1.v", "2.u", "3.c")),
    "clip01": dict(output="clip01"),
    "out-bias": dict(out_bias=0.1),
    "ntk": dict(scaling="ntk"),
}


@pytest.mark.parametrize("L", (1, 2, 3))
@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("loss", ("squared", "logistic"))
def test_velocity_options(option, L, loss):
    opts = dict(OPTIONS[option])
    if "freeze" in opts:
        opts["freeze"] = tuple(p for p in opts["freeze"] if int(p[0]) <= L)
    net = build("tanh" if L > 1 else "softplus", L, 3 if L > 1 else 1, seed=L, **opts)
    V = check(net, loss)
    for name, start, shape, trainable in net.groups():
        if not trainable:
            assert not np.any(V[start:start + int(np.prod(shape))]), name


def test_frozen_only_last_layer_trains_sl():
    net = mf.sl_depth2(5, 40, seed=3)
    assert [g[3] for g in net.groups()] == [False, False, True]
    check(net)


def test_sl_depth1_baseline_with_output_bias():
    check(mf.sl_depth1(5, 30, activation="sigmoid", seed=4))


def test_float32_matches_float64():
    net = build("erf", 2, 3, seed=7)
    ds = data(net, "squared", n=300)
    L64, V64 = mf.Objective(net, ds).velocity()
    n32 = net.astype(np.float32)
    L32, V32 = mf.Objective(n32, ds).velocity()
    assert V32.dtype == np.float32
    assert L32 == pytest.approx(L64, rel=1e-5)
    assert np.max(np.abs(V32 - V64)) <= 1e-4 * np.max(np.abs(V64))


def test_tiles_and_chunks_not_multiples():
    """N and m that are not multiples of the tile (64) and chunk (16) sizes."""
    rng = np.random.default_rng(0)
    net = mf.stack(3, [37, 19], [2], ["relu", "tanh"], seed=2)
    X = rng.standard_normal((131, 3))
    ds = mf.Dataset(X, rng.standard_normal(131))
    L, V = mf.Objective(net, ds).velocity()
    Lref, g = loss_and_grad(net, ds.X, ds.y)
    assert L == pytest.approx(Lref, rel=1e-12)
    np.testing.assert_allclose(V, -rate_vector(net) * g, rtol=0, atol=1e-12 * np.abs(g).max() * 40)


def test_features_match_numpy_forward():
    net = mf.rzg_three_layer(6, 50, 40, k=3, activations=("softplus", "erf"), seed=5)
    X = np.random.default_rng(1).standard_normal((70, 6))
    f_ref, h_ref = net.forward_numpy(X, return_features=True)
    h = net.features(X)
    for a, b in zip(h, h_ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net(X), f_ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("d,k", [(13, 9), (8, 4), (16, 1)])
def test_wide_inputs_exercise_every_unrolled_path(d, k):
    """Input widths that hit the 8-, 4- and 1-coordinate passes of the kernels."""
    rng = np.random.default_rng(d)
    net = mf.stack(d, [21, 18], [k], ["softplus", "tanh"], seed=d)
    X = rng.standard_normal((150, d))
    against_autograd(net, X, rng.standard_normal(150))


@pytest.mark.parametrize("freeze", [(), ("2.u",), ("2.c", "2.v"), ("2.u", "2.c", "2.v"), ("1.v", "2.u")])
def test_fused_bottleneck_relu_path(freeze):
    """The fused k_in = k_out = 1 ReLU path (blocks 2 and 3 here), with frozen parameters
    and a sample count that is not a multiple of 4 or of the tile."""
    rng = np.random.default_rng(len(freeze))
    net = build("relu", 3, 1, freeze=freeze, seed=11)
    X = rng.standard_normal((203, net.d))
    V = against_autograd(net, X, np.sin(X[:, 0]))
    for name, start, shape, trainable in net.groups():
        if not trainable:
            assert not np.any(V[start:start + int(np.prod(shape))]), name


def test_narrow_blocks_back_propagate_through_their_jacobian():
    """Blocks with k_in·k_out ≤ 4 back-propagate through the Jacobian the forward pass
    accumulates, wider ones by a second pass over their particles: both in one network
    (block 2: 2 → 3, second pass; blocks 3 and 4: 3 → 1 and 1 → 1, Jacobian), every
    activation kind, against the autograd oracle."""
    rng = np.random.default_rng(5)
    net = mf.stack(5, [20, 17, 15, 13], [2, 3, 1], ["erf", "relu", "tanh", "relu"], seed=4)
    X = rng.standard_normal((141, 5))
    against_autograd(net, X, np.cos(X[:, 1]))
    net2 = mf.stack(4, [16, 12, 10], [2, 2], ["sigmoid", "softplus", "erf"], seed=6)   # 2 → 2: k_in·k_out = 4
    X = rng.standard_normal((77, 4))
    against_autograd(net2, X, np.sin(X[:, 0]))


@pytest.mark.parametrize("d", [1, 3, 4, 8, 13])
@pytest.mark.parametrize("freeze", [(), ("1.c",), ("1.u",), ("1.v",)])
def test_fused_relu_particle_pass(d, freeze):
    """The fused particle pass of a ReLU block into one feature (a two-layer network),
    for input widths that hit its 8-, 4- and 1-coordinate passes, frozen parameters and a
    sample count that is not a multiple of 4."""
    rng = np.random.default_rng(d)
    net = mf.Network([mf.Block(rng.standard_normal((37, d)), rng.standard_normal(37),
                               rng.standard_normal((37, 1)), "relu",
                               train=[p for p in "ucv" if f"1.{p}" not in freeze])])
    X = rng.standard_normal((131, d))
    against_autograd(net, X, np.sin(X[:, 0]))
