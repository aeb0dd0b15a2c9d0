"""Width-m members of an M-particle reference network.

``coupling = "subsample"``: in every block, m_l of the reference's M_l particles drawn
without replacement: the first m_l of a random permutation of the reference's particles
(``numpy.random.default_rng([seed, block]).permutation(M_l)``), kept in the reference's
order.  So member particle i *is* reference particle σ(i) at t = 0 and the gap measures
discretization, not another initialisation; and for one seed the subsamples are nested
(the width-16 member's particles are among the width-32 member's), so the widths of a
sweep share their randomness.  ``coupling = "independent"``: fresh draws from the same initial laws,
made by ``fresh(widths, seed)`` (for a configuration: its network with another init
seed; the keyed streams make those independent of the reference's).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..network import Block, Network

COUPLINGS = ("subsample", "independent")


@dataclass
class Member:
    """A member network and, for subsample coupling, ``sigma[l]`` (m_l,): the reference
    particle each of its block-l particles started as (None for independent draws)."""

    network: Network
    sigma: list | None
    coupling: str
    seed: int


def _widths(reference: Network, widths) -> list:
    widths = [int(widths)] * reference.L if np.isscalar(widths) else [int(w) for w in widths]
    if len(widths) != reference.L:
        raise ValueError(f"widths: expected {reference.L} values (one per block), got {len(widths)}")
    for w, M in zip(widths, reference.widths):
        if not 1 <= w <= M:
            raise ValueError(f"widths: each must be in 1..{M} (the reference's width), got {w}")
    return widths


def member(reference: Network, widths, *, coupling: str = "subsample", seed: int = 0,
           fresh=None) -> Member:
    """A width-``widths`` member of ``reference`` (an int: the same width in every block).

    ``fresh(widths, seed) -> Network`` draws an independent network from the
    reference's initial laws (required for ``coupling = "independent"``).
    """
    if coupling not in COUPLINGS:
        raise ValueError(f"coupling: expected one of {', '.join(COUPLINGS)}, got {coupling!r}")
    widths = _widths(reference, widths)
    if coupling == "independent":
        if fresh is None:
            raise ValueError("independent coupling needs fresh(widths, seed): the initial laws")
        net = fresh(widths, seed)
        if net.widths != tuple(widths) or net.dims != reference.dims:
            raise ValueError("fresh() must return a network of the reference's architecture")
        return Member(net, None, coupling, seed)
    blocks, sigma = [], []
    for l, (b, m) in enumerate(zip(reference.blocks, widths)):
        idx = np.sort(np.random.default_rng([int(seed), l + 1]).permutation(b.m)[:m])
        blocks.append(Block(b.u[idx].copy(), b.c[idx].copy(), b.v[idx].copy(), b.activation,
                            b.bias, tuple(b.train)))
        sigma.append(idx)
    net = Network(blocks, output=reference.output, scaling=reference.scaling,
                  out_bias=reference.out_bias, train_out_bias=reference.train_out_bias,
                  dtype=reference.dtype)
    return Member(net, sigma, coupling, seed)
