"""Gaps between a member network and the reference, on a sample X (docs/math.md §3).

All are root mean squares, so they scale like distances: ``function_gap`` is
‖f_m − f_M‖ in L²(sample), ``feature_gaps`` gives (E_x‖h_m⁽ˡ⁾(x) − h_M⁽ˡ⁾(x)‖²)^½ per
block, ``coupling_gap`` is (1/m Σ_i ‖θ_i^m − θ_{σ(i)}^M‖²)^½ per block, an upper bound
on W₂ between the member's particles and the reference particles they started as.
"""
from __future__ import annotations

import numpy as np


def output_gap(fa, fb) -> float:
    """(mean of (fa − fb)²)^½ for outputs fa, fb (N,) on one sample."""
    return float(np.sqrt(np.mean((fa - fb) ** 2)))


def feature_gap(ha, hb) -> float:
    """(mean over rows of ‖ha − hb‖²)^½ for features ha, hb (N, k) on one sample."""
    return float(np.sqrt(np.mean(np.sum((ha - hb) ** 2, axis=1))))


def function_gap(member, reference, X) -> float:
    """‖f_m − f_M‖ in L² of the sample X (N, d)."""
    return output_gap(member(X), reference(X))


def feature_gaps(member, reference, X) -> np.ndarray:
    """(L,) per block, (mean over X of ‖h_m⁽ˡ⁾(x) − h_M⁽ˡ⁾(x)‖²)^½."""
    hm, hM = member.features(X), reference.features(X)
    return np.array([feature_gap(a, b) for a, b in zip(hm, hM)])


def block_clouds(network, l: int) -> np.ndarray:
    """Block l's particles as one cloud (m, k_in + 1 + k_out): rows θ_i = (u_i, c_i, v_i)."""
    b = network.blocks[l]
    return np.concatenate([b.u, b.c[:, None], b.v], axis=1).astype(float)


def coupling_gap(member, reference, sigma) -> np.ndarray:
    """(L,) per block, (1/m Σ_i ‖θ_i^m − θ_{σ(i)}^M‖²)^½ for a subsample member."""
    return np.array([feature_gap(block_clouds(member, l), block_clouds(reference, l)[idx])
                     for l, idx in enumerate(sigma)])
