"""The run loop: integrate dθ/dt = V(θ) through a schedule, yielding states as it goes.

:func:`iterate` is a generator that yields a :class:`State` every ``every`` steps (and
always the first and the final state); :func:`solve` runs it to the end, calling
recording hooks on every yielded state.  A state carries everything needed to continue
the run exactly (the noise is keyed by (seed, group, step, index), so no generator state exists):
pass it back as ``state=`` to resume.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Iterator, Sequence

import numpy as np

from .noise import NOISE_DOMAIN, add_noise, stream_key
from .rk import RungeKutta, get_method
from .schedule import Stage, resolve


class DivergenceError(RuntimeError):
    """The objective became non-finite.  ``state`` is the last state with a finite
    objective (None if the initial state already was non-finite)."""

    def __init__(self, message: str, state: "State | None"):
        super().__init__(message)
        self.state = state


@dataclass(frozen=True)
class Stop:
    """When to stop: flow time ``t_end``, ``steps`` taken, or objective ≤ ``loss_tol``.

    The run also stops when a schedule whose stages all have a length is over.
    """

    t_end: float | None = None
    steps: int | None = None
    loss_tol: float | None = None

    def __post_init__(self):
        if self.t_end is not None and not self.t_end >= 0:
            raise ValueError(f"Stop: t_end must be >= 0, got {self.t_end}")
        if self.steps is not None and (int(self.steps) != self.steps or self.steps < 0):
            raise ValueError(f"Stop: steps must be a non-negative integer, got {self.steps}")


@dataclass
class State:
    """A point of a run.

    y : (P,) the particles (a copy owned by this state)
    t : flow time;  step : steps taken;  loss : objective at ``y``
    stage : index of the current stage;  stage_t0, stage_step0 : where it began
    dt : step size for the next step (adaptive methods change it)
    seed : key of the noise streams
    done : None while running, else why the run stopped ("t_end", "steps",
        "loss_tol", "schedule")
    rejected : rejected adaptive steps so far
    velocity : on yielded states, the velocity at ``y`` (a copy; None otherwise)
    """

    y: np.ndarray
    t: float = 0.0
    step: int = 0
    loss: float = math.nan
    stage: int = 0
    stage_t0: float = 0.0
    stage_step0: int = 0
    dt: float = 0.0
    seed: int = 0
    done: str | None = None
    rejected: int = 0
    velocity: np.ndarray | None = None

    def copy(self) -> "State":
        return replace(self, y=self.y.copy(),
                       velocity=None if self.velocity is None else self.velocity.copy())


# step-size control of adaptive methods (the constants of scipy's solve_ivp steppers)
SAFETY = 0.9        # aim below the tolerance: factor = SAFETY * err^(-1/(q+1))
MIN_FACTOR = 0.2    # the step shrinks at most 5-fold after a rejected step ...
MAX_FACTOR = 5.0    # ... and grows at most 5-fold after an accepted one
TIME_EPS = 1e-12    # relative: a time within TIME_EPS * max(1, |t|) of an end has reached it
DT_MIN = 1e-14      # an adaptive step below this is a divergence


def _eps(t: float) -> float:
    return TIME_EPS * max(1.0, abs(t))


def _check(tab, stages, dt, every) -> None:
    for i, s in enumerate(stages[:-1]):
        if s.open_ended:
            raise ValueError(f"stage {i + 1} of {len(stages)} has neither duration nor steps; "
                             "only the last stage may be open-ended")
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    if int(every) != every or every < 1:
        raise ValueError(f"every must be a positive integer, got {every}")
    if tab.adaptive and any(s.langevin is not None and s.langevin.tau > 0 for s in stages):
        raise ValueError("adaptive steps (rk45) cannot be combined with Langevin noise; "
                         "use euler, heun or rk4")
    if tab.adaptive and any(s.steps is not None for s in stages):
        raise ValueError("adaptive steps (rk45) need stages given by duration, not steps")


def _first_state(field, y0, state, dt, seed) -> State:
    """The state to start from: a fresh one at ``y0``, or a copy of ``state``."""
    if state is None:
        if y0 is None:
            raise ValueError("give y0 or a state to resume from")
        y0 = np.asarray(y0)
        if y0.shape != (field.size,):
            raise ValueError(f"y0 must have shape ({field.size},), got {y0.shape}")
        return State(y=y0.copy(), dt=float(dt), seed=int(seed))
    st = state.copy()
    st.done = None
    if st.dt <= 0:
        st.dt = float(dt)
    return st


def _drift(field, groups, rs, step):
    """F(y, out) -> objective: the velocity field of the stage ``rs`` (its time scales
    and frozen groups) at ``step``, with the Langevin confinement −λ η θ added."""
    lam = rs.stage.langevin.lam if rs.stage.langevin is not None else 0.0

    def F(y, out):
        val = field(y, out, rs.scales, step)
        if lam > 0:
            for i in rs.moving:
                g = groups[i]
                out[g.start:g.stop] -= (lam * rs.scales[i]) * y[g.start:g.stop]
        return val
    return F


def _stage_end(st: State, stage: Stage) -> tuple:
    """(end time or inf, end step or None) of the stage ``st`` is in."""
    if stage.duration is not None:
        return st.stage_t0 + stage.duration, None
    if stage.steps is not None:
        return math.inf, st.stage_step0 + stage.steps
    return math.inf, None


def _enter_stage(st: State, stages) -> tuple:
    """Move ``st`` on to the first stage that is not over.  Returns (end time, end step)
    of that stage and whether the whole schedule is over."""
    while True:
        t_stage, n_stage = _stage_end(st, stages[st.stage])
        over = (st.t >= t_stage - _eps(t_stage)) or (n_stage is not None and st.step >= n_stage)
        if not over:
            return t_stage, n_stage, False
        if st.stage + 1 == len(stages):
            return t_stage, n_stage, True
        st.stage += 1
        st.stage_t0, st.stage_step0 = st.t, st.step


def _stop_reason(st: State, stop: Stop, loss: float, schedule_over: bool) -> str | None:
    if schedule_over:
        return "schedule"
    if stop.t_end is not None and st.t >= stop.t_end - _eps(stop.t_end):
        return "t_end"
    if stop.steps is not None and st.step >= stop.steps:
        return "steps"
    if stop.loss_tol is not None and loss <= stop.loss_tol:
        return "loss_tol"
    return None


def _error_norm(err, y, y_new, groups, moving, rtol, atol, scratch) -> float | None:
    """RMS of err / (atol + rtol max(|y|, |y_new|)) over the moving groups (None when
    nothing moves: no error to control)."""
    num = 0.0
    cnt = 0
    for i in moving:
        g = groups[i]
        sc = scratch[g.start:g.stop]
        np.maximum(np.abs(y[g.start:g.stop]), np.abs(y_new[g.start:g.stop]), out=sc)
        sc *= rtol
        sc += atol
        np.divide(err[g.start:g.stop], sc, out=sc)
        num += float(np.square(sc).sum())  # no BLAS in the loop (threads)
        cnt += g.size
    if cnt == 0:
        return None
    en = math.sqrt(num / cnt)
    return en if math.isfinite(en) else math.inf


def _step_factor(en: float, order_hat: int) -> float:
    """How much to scale the step after an error norm ``en`` (1 = at the tolerance)."""
    if en == 0:
        return MAX_FACTOR
    return min(MAX_FACTOR, max(MIN_FACTOR, SAFETY * en ** (-1.0 / (order_hat + 1))))


def _take_step(F, st, stepper, tab, t_lim, y_new, groups, rs, rtol, atol, dt_min, scratch,
               last_good) -> tuple:
    """One accepted step from ``st`` into ``y_new``, clipped to end at ``t_lim``; an
    adaptive method retries rejected steps and sets ``st.dt`` for the next one.
    Returns (the step taken h, whether it was clipped)."""
    while True:
        h = min(st.dt, t_lim - st.t)
        clipped = h < st.dt
        err = stepper.step(F, st.y, h, y_new)
        if err is None:   # a fixed-step method
            return h, clipped
        en = _error_norm(err, st.y, y_new, groups, rs.moving, rtol, atol, scratch)
        if en is None:    # nothing moves in this stage: keep the step
            return h, clipped
        factor = _step_factor(en, tab.order_hat)
        if en <= 1.0:
            st.dt = h * factor if not clipped else max(st.dt, h * factor)
            return h, clipped
        st.rejected += 1
        st.dt = h * factor
        if st.dt < dt_min:
            raise DivergenceError(
                f"adaptive step size fell below dt_min = {dt_min:g} at step {st.step}, "
                f"t = {st.t:.6g}; the last accepted state is in .state", last_good)


def _add_noise(y_new, groups, rs, noise_keys, h, step) -> None:
    """The Langevin noise √(2 η τ h) ξ of the stage's moving groups, keyed by step."""
    lv = rs.stage.langevin
    if lv is not None and lv.tau > 0:
        for i in rs.moving:
            g = groups[i]
            add_noise(y_new, g.start, g.stop, math.sqrt(2.0 * rs.scales[i] * lv.tau * h),
                      np.uint64(noise_keys[i]), step)


def iterate(field, y0: np.ndarray | None = None, *, method: str = "euler", dt: float = 1e-2,
            schedule: Sequence[Stage] = (), stop: Stop = Stop(), every: int = 1, seed: int = 0,
            rtol: float = 1e-6, atol: float = 1e-9, dt_min: float = DT_MIN,
            state: State | None = None) -> Iterator[State]:
    """Integrate the particle system ``field`` (see :mod:`solvers.field`).

    Parameters
    ----------
    field : velocity field with ``groups``, ``size`` and ``field(y, out, scales, step)``
    y0 : (P,) initial state (copied), unless ``state`` resumes a run
    method : "euler", "heun", "rk4" (fixed step ``dt``) or "rk45" (adaptive, initial
        step ``dt``, tolerances ``rtol``/``atol`` on the moving groups)
    schedule : stages (default: one open-ended stage where everything trainable moves)
    stop : when to stop;  every : yield every ``every`` steps
    seed : seed of the Langevin noise: group g's noise is keyed by
        ``(seed, *g.key, step, index within the group)``
    state : a yielded state to continue from (the same field, method and schedule)

    Yields the state (a copy) at step 0, every ``every`` steps, and at the end, with
    ``done`` set on the last one.  Raises :class:`DivergenceError` when the objective
    becomes non-finite.
    """
    tab = get_method(method)
    stages = list(schedule) or [Stage()]
    _check(tab, stages, dt, every)
    groups = list(field.groups)
    resolved = [resolve(s, groups) for s in stages]
    st = _first_state(field, y0, state, dt, seed)
    noise_keys = [stream_key(NOISE_DOMAIN, st.seed, *(g.key or (0, i)))
                  for i, g in enumerate(groups)]
    stepper = RungeKutta(tab, field.size, st.y.dtype)
    y_new = np.empty_like(st.y)
    scratch = np.empty_like(st.y)
    last_good: State | None = None

    while True:
        t_stage, _, schedule_over = _enter_stage(st, stages)
        rs = resolved[st.stage]
        F = _drift(field, groups, rs, st.step)
        K0 = stepper.K[0]
        loss = float(F(st.y, K0))
        if not math.isfinite(loss):
            raise DivergenceError(
                f"the objective became non-finite ({loss}) at step {st.step}, t = {st.t:.6g}; "
                + ("the last finite state is in .state (step "
                   f"{last_good.step})" if last_good is not None else "at the initial state"),
                last_good)
        st.loss = loss
        st.done = _stop_reason(st, stop, loss, schedule_over)
        if st.done is not None or st.step % every == 0:
            out = st.copy()
            out.velocity = K0.copy()
            yield out
        if st.done is not None:
            return
        last_good = st.copy()

        # the step, clipped to the end of the stage and to t_end
        t_lim = min(t_stage, stop.t_end if stop.t_end is not None else math.inf)
        h, clipped = _take_step(F, st, stepper, tab, t_lim, y_new, groups, rs, rtol, atol,
                                dt_min, scratch, last_good)
        _add_noise(y_new, groups, rs, noise_keys, h, st.step)
        for proj, idx in rs.projections:
            proj.apply(y_new, groups, idx)
        st.y, y_new = y_new, st.y
        st.t = t_lim if clipped else st.t + h  # land exactly on stage ends and t_end
        st.step += 1


def solve(field, y0: np.ndarray | None = None, *, hooks: Sequence[Callable[[State], None]] = (),
          **kwargs) -> State:
    """Run :func:`iterate` to the end, calling every hook on every yielded state.

    Returns the final state.  Keyword arguments are those of :func:`iterate`.
    """
    final = None
    for s in iterate(field, y0, **kwargs):
        for hook in hooks:
            hook(s)
        final = s
    return final
