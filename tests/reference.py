"""Independent plain-NumPy reference: loss and gradient of the finite-width network by
hand-written back-propagation over full N × m arrays (small sizes only).  It shares no
code with the Numba kernels; activations and derivatives are written out again here."""
import numpy as np
from scipy import special

ACT = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(float)),
    "erf": (special.erf, lambda z: 2 / np.sqrt(np.pi) * np.exp(-z * z)),
    "sigmoid": (special.expit, lambda z: special.expit(z) * (1 - special.expit(z))),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "softplus": (lambda z: np.logaddexp(0, z), special.expit),
    "quadratic": (lambda z: z * z, lambda z: 2 * z),
}


def loss_and_grad(net, X, y, loss="squared"):
    """(L, ∂L/∂θ (P,)) with L = (1/N) Σ ℓ(f(x), y)."""
    X = np.asarray(X, float)
    H, Z = [X], []
    for b, s in zip(net.blocks, net.scales):
        z = H[-1] @ np.asarray(b.u, float).T + np.asarray(b.c, float)
        Z.append(z)
        H.append(s * ACT[b.activation][0](z) @ np.asarray(b.v, float))
    b_out = float(net.theta[net.off_b]) if net.has_out_bias else 0.0
    pre = H[-1][:, 0] + b_out
    if net.output == "clip01":
        f = np.clip(pre, 0, 1)
        dpsi = ((pre > 0) & (pre < 1)).astype(float)
    else:
        f, dpsi = pre, np.ones_like(pre)
    if loss == "squared":
        ell, dl = 0.5 * (f - y) ** 2, f - y
    else:
        ell, dl = np.logaddexp(0, f) - y * f, special.expit(f) - y
    n = X.shape[0]
    grad = np.zeros(net.n_params)
    g = (dl * dpsi / n)[:, None]
    if net.has_out_bias:
        grad[net.off_b] = g.sum()
    for l in range(net.L - 1, -1, -1):
        b, s = net.blocks[l], net.scales[l]
        u, v = np.asarray(b.u, float), np.asarray(b.v, float)
        S, D = ACT[b.activation][0](Z[l]), ACT[b.activation][1](Z[l])
        q = (g @ v.T) * D
        parts = {"u": s * q.T @ H[l], "c": s * q.sum(0), "v": s * S.T @ g}
        for p, arr in parts.items():
            start = dict((name, st) for name, st, _, _ in net.groups())[f"{l + 1}.{p}"]
            grad[start:start + arr.size] = arr.ravel()
        g = s * q @ u
    return float(ell.mean()), grad


def rate_vector(net):
    """Per-entry rate (m_l for mean-field, 1 for NTK, 1 for the output bias):
    velocity = −η · rate · ∂L/∂θ."""
    r = np.zeros(net.n_params)
    for name, start, shape, _ in net.groups():
        rate = 1.0 if name == "out.b" else net.rates[int(name.split(".")[0]) - 1]
        r[start:start + int(np.prod(shape))] = rate
    return r


def trainable_mask(net):
    m = np.zeros(net.n_params)
    for name, start, shape, trainable in net.groups():
        m[start:start + int(np.prod(shape))] = 1.0 if trainable else 0.0
    return m
