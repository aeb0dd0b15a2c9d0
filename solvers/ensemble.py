"""Several particle systems advanced together as one.

:class:`Ensemble` concatenates the states of several velocity fields (networks of
different widths, seeds, data...) into one flat vector, so that one solver loop moves
them through the same schedule and they are compared at common times.  Group names get
the member's name as prefix, ``"<member>/<group>"``; a schedule pattern without a
``/`` applies to every member (``"1.u"`` freezes ``1.u`` of all of them).  The objective
of the ensemble is the sum of the members' objectives; :attr:`Ensemble.last_values`
holds each member's value at the last evaluation.

Groups keep their members' noise keys (a member group without one gets
``(member index, group index)``), so a member draws the same Langevin noise as when it
runs alone with the same keys.  When the members' class offers
``batch(fields) -> field or None`` (a field over the concatenated state whose call
returns the members' values as an array), the ensemble evaluates all members in one
call of it; the results must be those of the members' own calls, bit for bit.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .field import Group


class Ensemble:
    """The product of ``fields``: state = concatenation of the members' states.

    Parameters
    ----------
    fields : velocity fields (see :mod:`solvers.field`)
    names : member names (default "0", "1", ...)

    Use :meth:`pack` to build the initial state and :meth:`unpack` to split a state.
    """

    def __init__(self, fields: Sequence, names: Sequence[str] | None = None):
        self.fields = list(fields)
        if not self.fields:
            raise ValueError("an ensemble needs at least one member")
        self.names = [str(i) for i in range(len(self.fields))] if names is None else [str(n) for n in names]
        if len(self.names) != len(self.fields) or len(set(self.names)) != len(self.names):
            raise ValueError("names must be unique, one per field")
        self.offsets = np.cumsum([0] + [f.size for f in self.fields])
        self.size = int(self.offsets[-1])
        groups, self._slices = [], []
        for b, (name, f, off) in enumerate(zip(self.names, self.fields, self.offsets)):
            g0 = len(groups)
            for i, g in enumerate(f.groups):
                groups.append(Group(f"{name}/{g.name}", int(off) + g.start, g.shape, g.trainable,
                                    key=g.key or (b, i)))
            self._slices.append(slice(g0, len(groups)))
        self.groups = tuple(groups)
        self.last_values = np.full(len(self.fields), np.nan)
        batch = getattr(type(self.fields[0]), "batch", None)
        self.batched = batch(self.fields) if callable(batch) else None

    def pack(self, states: Sequence[np.ndarray]) -> np.ndarray:
        """One flat state from the members' states (dtype of the first)."""
        if len(states) != len(self.fields):
            raise ValueError(f"expected {len(self.fields)} states, got {len(states)}")
        for f, s in zip(self.fields, states):
            if np.shape(s) != (f.size,):
                raise ValueError(f"a member state has shape {np.shape(s)}, expected ({f.size},)")
        return np.concatenate([np.asarray(s) for s in states])

    def unpack(self, y: np.ndarray) -> list:
        """Views of the members' states in ``y``."""
        return [y[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:])]

    def __call__(self, y, out, scales, step):
        if self.batched is not None:
            self.last_values[:] = self.batched(y, out, scales, step)
            total = 0.0
            for val in self.last_values:
                total += float(val)
            return total
        total = 0.0
        for i, (f, sl) in enumerate(zip(self.fields, self._slices)):
            a, b = self.offsets[i], self.offsets[i + 1]
            val = f(y[a:b], out[a:b], scales[sl], step)
            self.last_values[i] = val
            total += val
        return total
