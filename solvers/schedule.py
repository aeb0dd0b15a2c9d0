"""Schedules: stages with durations, what moves, time scales, projections and noise.

A schedule is a list of :class:`Stage`.  Each stage lasts a flow-time ``duration`` or a
number of ``steps`` (the last stage may be open-ended), sets per-group time scales
(``time_scales`` maps group patterns to η; unmatched groups keep η = 1), freezes groups
(``freeze``), projects groups after every step (``projections``) and may add mean-field
Langevin noise (``langevin``):

    dθ = (V(θ) − η_g λ θ) dt + √(2 η_g τ) dW      for every moving group g.

Group patterns are fnmatch patterns on group names; a bare ``"2"`` means ``"2.*"``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .field import Group, match_groups


@dataclass(frozen=True)
class BallProjection:
    """Project onto {‖row‖₂ ≤ radius}: each particle's row of the matched groups.

    With ``per="group"`` the whole group (all its particles together) is projected
    onto the Euclidean ball instead.
    """

    groups: tuple
    radius: float
    per: str = "particle"

    def __post_init__(self):
        if not self.radius > 0:
            raise ValueError(f"BallProjection: radius must be > 0, got {self.radius}")
        if self.per not in ("particle", "group"):
            raise ValueError(f"BallProjection: per must be 'particle' or 'group', got {self.per!r}")

    def apply(self, y: np.ndarray, groups: Sequence[Group], idx: Sequence[int]) -> None:
        for i in idx:
            w = groups[i].view(y)
            if self.per == "group":
                n = np.sqrt(np.sum(w.astype(float) ** 2))
                if n > self.radius:
                    w *= self.radius / n
            else:
                n = np.sqrt(np.sum(w.astype(float) ** 2, axis=1))
                over = n > self.radius
                if over.any():
                    w[over] *= (self.radius / n[over])[:, None].astype(w.dtype)


@dataclass(frozen=True)
class BoxProjection:
    """Clip every entry of the matched groups to [lo, hi]."""

    groups: tuple
    lo: float
    hi: float

    def __post_init__(self):
        if not self.lo <= self.hi:
            raise ValueError(f"BoxProjection: need lo <= hi, got lo={self.lo}, hi={self.hi}")

    def apply(self, y: np.ndarray, groups: Sequence[Group], idx: Sequence[int]) -> None:
        for i in idx:
            w = groups[i].view(y)
            np.clip(w, self.lo, self.hi, out=w)


@dataclass(frozen=True)
class Langevin:
    """Mean-field Langevin dynamics: temperature ``tau`` ≥ 0, L2 strength ``lam`` ≥ 0."""

    tau: float = 0.0
    lam: float = 0.0

    def __post_init__(self):
        if not (self.tau >= 0 and self.lam >= 0):
            raise ValueError(f"Langevin: tau and lam must be >= 0, got tau={self.tau}, lam={self.lam}")


@dataclass(frozen=True)
class Stage:
    """One stage of a schedule (see the module docstring).

    duration : flow time of the stage, or None
    steps : number of steps of the stage, or None (at most one of the two)
    time_scales : {group pattern: η}; unmatched groups have η = 1
    freeze : group patterns that do not move in this stage
    projections : BallProjection / BoxProjection applied after every step
    langevin : Langevin noise and L2 drift, or None
    """

    duration: float | None = None
    steps: int | None = None
    time_scales: dict = field(default_factory=dict)
    freeze: tuple = ()
    projections: tuple = ()
    langevin: Langevin | None = None
    name: str = ""

    def __post_init__(self):
        if self.duration is not None and self.steps is not None:
            raise ValueError("Stage: give a duration or a number of steps, not both")
        if self.duration is not None and not self.duration > 0:
            raise ValueError(f"Stage: duration must be > 0, got {self.duration}")
        if self.steps is not None and (int(self.steps) != self.steps or self.steps < 1):
            raise ValueError(f"Stage: steps must be a positive integer, got {self.steps}")
        for pat, eta in dict(self.time_scales).items():
            if not eta >= 0:
                raise ValueError(f"Stage: time scale of {pat!r} must be >= 0, got {eta}")

    @property
    def open_ended(self) -> bool:
        return self.duration is None and self.steps is None


@dataclass
class ResolvedStage:
    """A stage bound to a field's groups: what the run loop uses at every step."""

    stage: Stage
    scales: np.ndarray          # (n_groups,) η_g, zero for groups that do not move
    moving: list                # indices of moving groups
    projections: list           # (projection, group indices)


def resolve(stage: Stage, groups: Sequence[Group]) -> ResolvedStage:
    scales = np.ones(len(groups))
    for pat, eta in dict(stage.time_scales).items():
        scales[match_groups(groups, pat, "time_scales key")] = float(eta)
    if stage.freeze:
        scales[match_groups(groups, stage.freeze, "freeze pattern")] = 0.0
    for i, g in enumerate(groups):
        if not g.trainable:
            scales[i] = 0.0
    projections = [(p, match_groups(groups, p.groups, "projection group")) for p in stage.projections]
    moving = [i for i in range(len(groups)) if scales[i] != 0.0]
    return ResolvedStage(stage, scales, moving, projections)
