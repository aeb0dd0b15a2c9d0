"""What a solver needs to know about a particle system: its parameter groups and its
velocity field.  Nothing here knows about neural networks.

A particle system's state is one flat vector ``y`` (P,).  It is cut into named
*groups* (for a network: the u, c, v of each block), each a contiguous
``(n_particles, dim)`` slab.  Stages of a schedule freeze groups, change their time
scales and project them; noise is drawn per element.

A velocity field is any object with attributes ``groups`` (a sequence of
:class:`Group`) and ``size`` (P), and a method

    field(y, out, scales, step) -> float

that writes the velocity V(y) into ``out`` (P,) and returns the value of the
objective at ``y`` (a loss; it is what ``Stop.loss_tol`` and divergence checks read).
``scales`` (n_groups,) are per-group time scales: group g's velocity must be multiplied
by ``scales[g]``; a zero means the group does not move (its velocity must be exactly 0,
and the field may skip computing it).  ``step`` is the index of the current step,
the same for every stage of one Runge–Kutta step (a field that samples fresh data
each step keys its samples by it).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class Group:
    """A contiguous slab ``y[start : start + n·dim]`` viewed as (n, dim) particles.

    ``key`` (a tuple of non-negative integers) names the group's noise stream: Langevin
    noise is keyed by ``(seed, *key, particle, coordinate)``, so a group with the same key
    draws the same noise wherever it sits in a state vector (alone or in an ensemble).
    An empty key means "the group's position in its field" (``(0, index)``).
    """

    name: str
    start: int
    shape: tuple
    trainable: bool = True
    key: tuple = ()

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def stop(self) -> int:
        return self.start + self.size

    def view(self, y: np.ndarray) -> np.ndarray:
        """The group's (n, dim) view of the flat state ``y``."""
        return y[self.start:self.stop].reshape(self.shape)


class VelocityField(Protocol):
    groups: Sequence[Group]
    size: int

    def __call__(self, y: np.ndarray, out: np.ndarray, scales: np.ndarray, step: int) -> float:
        ...


def match_groups(groups: Sequence[Group], patterns, what: str = "pattern") -> list:
    """Indices of the groups whose names match any of the fnmatch ``patterns``.

    A pattern without a dot also matches every group under it: ``"2"`` means ``"2.*"``.
    In an ensemble (names ``"<member>/<group>"``) a pattern without ``/`` matches the
    part after the ``/``, in every member.  A pattern that matches nothing is an error
    (a typo must not freeze nothing silently).
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    hits = []
    names = [g.name for g in groups]
    for pat in patterns:
        pats = [pat] if "." in pat or "*" in pat else [pat, pat + ".*"]
        keys = names if "/" in pat else [n.rsplit("/", 1)[-1] for n in names]
        idx = [i for i, n in enumerate(keys) if any(fnmatch.fnmatchcase(n, p) for p in pats)]
        if not idx:
            raise ValueError(f"{what} {pat!r} matches no group; groups are {', '.join(names)}")
        hits.extend(idx)
    return sorted(set(hits))
