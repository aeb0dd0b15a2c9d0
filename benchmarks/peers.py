"""The same Euler step written as a user would write it: NumPy with matrix products, JAX
``jit(value_and_grad)`` and PyTorch autograd (on the CPU).

The network is an L-block mean-field ReLU network with biases (``meanfield.stack``),
identity output, loss ½ mean (f − y)², mean-field scaling: block l's particles move
with velocity −m_l ∂L/∂θ, so one Euler step is θ ← θ − dt m_l ∂L/∂θ.  Each peer returns
a ``step()`` callable that advances its own copy of the parameters (``step.theta()``
reads them in meanfield's layout), and its velocity at the initial parameters, which :func:`check` compares with meanfield's
before anything is timed.
"""
from __future__ import annotations

import numpy as np


def params_of(net) -> list:
    """[(u (m, k_in), c (m,), v (m, k_out)), …] copies of the blocks' parameters."""
    return [(b.u.copy(), b.c.copy(), b.v.copy()) for b in net.blocks]


def _flat(params) -> np.ndarray:
    """Parameters in meanfield's layout (per block u, c, v), as one float64 vector."""
    return np.concatenate([np.asarray(a, dtype=float).ravel() for blk in params for a in blk])


def _flat_velocity(grads, widths) -> np.ndarray:
    """meanfield's velocity layout (per block u, c, v) from gradients: −m_l ∂L/∂θ."""
    return np.concatenate([-m * np.asarray(g, dtype=float).ravel()
                           for (gu, gc, gv), m in zip(grads, widths) for g in (gu, gc, gv)])


def check(name, velocity, obj, tol) -> float:
    """Max relative difference of a peer's velocity to meanfield's; RuntimeError above tol."""
    _, V = obj.velocity()
    err = float(np.max(np.abs(velocity - V)) / np.max(np.abs(V)))
    if not err <= tol:
        raise RuntimeError(f"{name} and meanfield disagree: velocity error {err:.2e} > {tol:.0e}")
    return err


# -- NumPy --------------------------------------------------------------------------------
def numpy_grads(params, X, y):
    """(loss, [(gu, gc, gv), …]) by a hand-written backward pass with matrix products
    (it keeps the (N, m) pre-activations of every block, as a user would)."""
    N = X.shape[0]
    h, cache = X, []
    for u, c, v in params:
        z = h @ u.T + c
        a = np.maximum(z, 0.0)
        cache.append((h, z, a))
        h = a @ v / u.shape[0]
    r = h[:, 0] - y
    loss = 0.5 * float(np.mean(r * r))
    g = (r / N)[:, None]
    grads = []
    for (u, c, v), (hin, z, a) in zip(reversed(params), reversed(cache)):
        m = u.shape[0]
        gv = a.T @ g / m
        gz = (g @ v.T / m) * (z > 0)
        grads.append((gz.T @ hin, gz.sum(axis=0), gv))
        g = gz @ u
    return loss, grads[::-1]


def numpy_peer(obj, dt):
    X, y = obj.data.X, obj.data.y
    params = params_of(obj.network)
    widths = [p[0].shape[0] for p in params]
    _, grads = numpy_grads(params, X, y)
    vel = _flat_velocity(grads, widths)

    def step():
        _, gs = numpy_grads(params, X, y)
        for (u, c, v), (gu, gc, gv), m in zip(params, gs, widths):
            u -= dt * m * gu
            c -= dt * m * gc
            v -= dt * m * gv
    step.theta = lambda: _flat(params)
    return step, vel


# -- JAX ----------------------------------------------------------------------------------
def jax_peer(obj, dt):
    try:
        import jax
    except ImportError:
        return None, "JAX is not installed (pip install -e '.[peers]')"
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    dtype = obj.network.dtype
    X, y = jnp.asarray(obj.data.X, dtype=dtype), jnp.asarray(obj.data.y, dtype=dtype)
    params = [tuple(jnp.asarray(a) for a in p) for p in params_of(obj.network)]
    widths = [p[0].shape[0] for p in params]

    def loss(ps):
        h = X
        for u, c, v in ps:
            h = jnp.maximum(h @ u.T + c, 0.0) @ v / u.shape[0]
        return 0.5 * jnp.mean((h[:, 0] - y) ** 2)

    grad = jax.jit(jax.grad(loss))

    @jax.jit
    def update(ps):
        gs = jax.grad(loss)(ps)
        return [tuple(p - dt * m * g for p, g in zip(blk, gb)) for blk, gb, m in zip(ps, gs, widths)]

    vel = _flat_velocity(grad(params), widths)
    state = [params]

    def step():
        state[0] = update(state[0])
        jax.block_until_ready(state[0])
    step.theta = lambda: _flat(state[0])
    return step, vel


# -- PyTorch ------------------------------------------------------------------------------
def torch_peer(obj, dt):
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed (pip install -e '.[peers]')"
    tdtype = torch.float64 if obj.network.dtype == np.float64 else torch.float32
    X = torch.tensor(obj.data.X, dtype=tdtype)
    y = torch.tensor(obj.data.y, dtype=tdtype)
    params = [tuple(torch.tensor(a, dtype=tdtype, requires_grad=True) for a in p)
              for p in params_of(obj.network)]
    widths = [p[0].shape[0] for p in params]

    def loss():
        h = X
        for u, c, v in params:
            h = torch.relu(h @ u.T + c) @ v / u.shape[0]
        return 0.5 * torch.mean((h[:, 0] - y) ** 2)

    loss().backward()
    vel = _flat_velocity([tuple(p.grad.numpy() for p in blk) for blk in params], widths)
    for blk in params:
        for p in blk:
            p.grad = None

    def step():
        loss().backward()
        with torch.no_grad():
            for blk, m in zip(params, widths):
                for p in blk:
                    p -= dt * m * p.grad
                    p.grad = None
    step.theta = lambda: _flat([[p.detach().numpy() for p in blk] for blk in params])
    return step, vel


PEERS = {"numpy": numpy_peer, "jax": jax_peer, "pytorch": torch_peer}
