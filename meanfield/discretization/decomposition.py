"""The [RZG] loss decomposition for networks with two blocks (docs/math.md §3).

For a member (μ̂₁, μ̂₂), the reference's first block μ₁ standing in for the limit, an
ideal first-block feature h*(x) = κ‖x‖ (κ ∈ R^k fitted to the reference's feature by
least squares unless given) and targets y = f*(x), write f_{μ̂₂}(h) for the member's
second block and output applied to a feature h.  Splitting f − f* into three
differences and using (a + b + c)² ≤ 3(a² + b² + c²),

    E(f(x) − y)² ≤ 3 [ Lip² E‖h_{μ̂₁} − h_{μ₁}‖² + Lip² E‖h_{μ₁} − h*‖² + E(f_{μ̂₂}(h*(x)) − y)² ],

with ``Lip = ℓ · s₂ Σ_j |v_j| ‖u_j‖`` ≥ the Lipschitz constant of f_{μ̂₂} (ℓ the
activation's Lipschitz constant, s₂ the block's scale, ψ 1-Lipschitz).  The loss here
is the mean squared error E(f − y)² (twice the training loss ½(f − y)²).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..network import Block, Network

LIPSCHITZ = {"relu": 1.0, "identity": 1.0, "tanh": 1.0, "softplus": 1.0, "sigmoid": 0.25,
             "erf": 2.0 / math.sqrt(math.pi)}


@dataclass(frozen=True)
class Decomposition:
    """The terms of the bound (see the module docstring), on one sample.

    lip : the Lipschitz bound of the member's second block;  kappa : (k,) of h* = κ‖x‖
    first_block : Lip² E‖h_{μ̂₁} − h_{μ₁}‖² (the first block's discretization)
    feature_error : Lip² E‖h_{μ₁} − h*‖² (the reference's feature against the ideal one)
    perfect_first : E(f_{μ̂₂}(h*) − y)² (the loss given a perfect first block)
    bound : 3 (first_block + feature_error + perfect_first);  mse : E(f − y)²
    holds : mse ≤ bound
    """

    lip: float
    kappa: np.ndarray
    first_block: float
    feature_error: float
    perfect_first: float
    bound: float
    mse: float
    holds: bool


def _two_blocks(network: Network) -> None:
    if network.L != 2:
        raise ValueError(f"the decomposition is for networks with two blocks, got {network.L}")


def second_block(network: Network) -> Network:
    """The second block and output of a two-block network, as a network of its own
    (input: the bottleneck feature h⁽¹⁾ ∈ R^k)."""
    _two_blocks(network)
    b = network.blocks[1]
    blk = Block(b.u.copy(), b.c.copy(), b.v.copy(), b.activation, b.bias, tuple(b.train))
    return Network([blk], output=network.output, scaling=network.scaling,
                   out_bias=network.out_bias, dtype=network.dtype)


def applies(network: Network) -> bool:
    """Whether the decomposition is defined for ``network``: two blocks, the second with
    a Lipschitz activation (a sweep records it only then)."""
    return network.L == 2 and network.blocks[1].activation in LIPSCHITZ


def lipschitz_bound(network: Network) -> float:
    """``ℓ · s₂ Σ_j |v_j| ‖u_j‖`` for the second block of ``network``."""
    _two_blocks(network)
    b = network.blocks[1]
    if b.activation not in LIPSCHITZ:
        raise ValueError(f"activation {b.activation!r} of block 2 is not Lipschitz")
    scale = float(network.scales[1])
    return LIPSCHITZ[b.activation] * scale * float(
        np.sum(np.abs(b.v[:, 0]) * np.linalg.norm(b.u, axis=1)))


def decomposition(member: Network, reference: Network, X, y, *, kappa=None,
                  h_reference=None) -> Decomposition:
    """The decomposition of ``member``'s error on the sample ``X (N, d)``, ``y (N,)``.

    ``h_reference (N, k)``: the reference's first-block feature on X when already
    computed (it is computed otherwise)."""
    _two_blocks(member)
    _two_blocks(reference)
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if member.dims != reference.dims:
        raise ValueError("member and reference must have the same dimensions")
    h_m = member.features(X)[0]
    h_ref = reference.features(X)[0] if h_reference is None else np.asarray(h_reference, dtype=float)
    if h_ref.shape != h_m.shape:
        raise ValueError(f"h_reference must be (N, k) = {h_m.shape}, got {h_ref.shape}")
    r = np.linalg.norm(X, axis=1)
    if kappa is None:   # least squares of each coordinate of h_{μ₁} on ‖x‖
        kappa = (h_ref * r[:, None]).sum(axis=0) / float(r @ r)
    kappa = np.atleast_1d(np.asarray(kappa, dtype=float))
    h_star = r[:, None] * kappa[None, :]
    lip = lipschitz_bound(member)
    first = lip ** 2 * float(np.mean(np.sum((h_m - h_ref) ** 2, axis=1)))
    feat = lip ** 2 * float(np.mean(np.sum((h_ref - h_star) ** 2, axis=1)))
    perfect = float(np.mean((second_block(member)(h_star) - y) ** 2))
    bound = 3.0 * (first + feat + perfect)
    mse = float(np.mean((member(X) - y) ** 2))
    return Decomposition(lip, kappa, first, feat, perfect, bound, mse, mse <= bound)
