"""Explicit Runge–Kutta methods as coefficient tables, and the stepper that runs them.

A method is a :class:`Tableau` (Butcher table A, b, c; an embedded b̂ for adaptive
pairs) in the plain dict :data:`METHODS`.  :class:`RungeKutta` advances y' = F(y) by
one step on flat float arrays, with stage buffers allocated once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tableau:
    """Butcher table of an explicit method of the given ``order``.

    ``b_hat`` (optional) gives an embedded solution of order ``order_hat`` for error
    control; ``adaptive`` methods use it to choose their step size.
    """

    name: str
    A: tuple
    b: tuple
    c: tuple
    order: int
    b_hat: tuple | None = None
    order_hat: int | None = None

    @property
    def stages(self) -> int:
        return len(self.b)

    @property
    def adaptive(self) -> bool:
        return self.b_hat is not None


EULER = Tableau("euler", A=((0.0,),), b=(1.0,), c=(0.0,), order=1)

HEUN = Tableau("heun", A=((0.0, 0.0), (1.0, 0.0)), b=(0.5, 0.5), c=(0.0, 1.0), order=2)

RK4 = Tableau(
    "rk4",
    A=((0.0, 0.0, 0.0, 0.0), (0.5, 0.0, 0.0, 0.0), (0.0, 0.5, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0)),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
    c=(0.0, 0.5, 0.5, 1.0),
    order=4,
)

# Dormand–Prince 5(4): propagate the 5th-order solution, estimate the error with the 4th.
RK45 = Tableau(
    "rk45",
    A=(
        (0, 0, 0, 0, 0, 0, 0),
        (1 / 5, 0, 0, 0, 0, 0, 0),
        (3 / 40, 9 / 40, 0, 0, 0, 0, 0),
        (44 / 45, -56 / 15, 32 / 9, 0, 0, 0, 0),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0, 0, 0),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656, 0, 0),
        (35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0),
    ),
    b=(35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0),
    c=(0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1),
    order=5,
    b_hat=(5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40),
    order_hat=4,
)

METHODS = {t.name: t for t in (EULER, HEUN, RK4, RK45)}


def get_method(name: str) -> Tableau:
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}") from None


class RungeKutta:
    """Runs one explicit Runge–Kutta step of a tableau on flat arrays.

    ``F(y, out) -> float`` writes the velocity into ``out``.  The first stage's
    velocity ``K[0]`` is supplied by the caller (it is evaluated at the start of every
    step anyway, together with the loss), so Euler costs one evaluation per step.
    """

    def __init__(self, tableau: Tableau, size: int, dtype):
        self.tableau = tableau
        self.K = np.zeros((tableau.stages, size), dtype=dtype)
        self._ytmp = np.empty(size, dtype=dtype)
        self._A = [np.asarray(r, dtype=float) for r in tableau.A]
        self._b = np.asarray(tableau.b, dtype=float)
        self._e = (None if tableau.b_hat is None
                   else self._b - np.asarray(tableau.b_hat, dtype=float))

    def _combine(self, y, h, w, out):
        """out = y + h Σ_j w_j K_j (skipping zero weights)."""
        out[:] = y
        for j, wj in enumerate(w):
            if wj != 0.0:
                out += (h * wj) * self.K[j]
        return out

    def step(self, F, y, h, out):
        """Write y + h Σ b_i K_i into ``out``; K[0] must hold F(y) already.

        Returns the error estimate h Σ (b_i − b̂_i) K_i (a view of a work buffer) for
        adaptive tableaux, else None.
        """
        for i in range(1, self.tableau.stages):
            F(self._combine(y, h, self._A[i][:i], self._ytmp), self.K[i])
        self._combine(y, h, self._b, out)
        if self._e is None:
            return None
        err = self._ytmp
        err[:] = 0.0
        for j, ej in enumerate(self._e):
            if ej != 0.0:
                err += (h * ej) * self.K[j]
        return err
