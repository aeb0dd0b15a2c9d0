"""solvers: generic particle solvers for Wasserstein gradient flows dθ/dt = V(θ).

This package integrates particle systems given a velocity field (see
:mod:`solvers.field`); it knows nothing about neural networks.
"""
from .ensemble import Ensemble
from .field import Group, VelocityField, match_groups
from .noise import add_noise, counter_normal, keyed_normals, normals, stream_key
from .rk import EULER, HEUN, METHODS, RK4, RK45, RungeKutta, Tableau, get_method
from .run import DivergenceError, State, Stop, iterate, solve
from .schedule import BallProjection, BoxProjection, Langevin, Stage, resolve

__all__ = [
    "Ensemble", "Group", "VelocityField", "match_groups",
    "add_noise", "counter_normal", "keyed_normals", "normals", "stream_key",
    "EULER", "HEUN", "METHODS", "RK4", "RK45", "RungeKutta", "Tableau", "get_method",
    "DivergenceError", "State", "Stop", "iterate", "solve",
    "BallProjection", "BoxProjection", "Langevin", "Stage", "resolve",
]
