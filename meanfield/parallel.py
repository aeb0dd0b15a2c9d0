"""How many threads the kernels use: the serial/parallel policy, chosen by timing.

The kernels (:mod:`meanfield._kernels`) give bit-identical results whether a pass runs
serially or in parallel, with any number of threads, so the choice here is about speed
alone.  On a quiet machine the parallel kernels win from a moderate size on; on a busy
one (a laptop with a browser open, a shared server, the other workers of a sweep) a
parallel pass waits at its barrier for a thread whose core was given to another process,
and it can be several times slower than the serial kernels.  No fixed threshold is
right for both, so each kernel plan carries a :class:`Schedule` that times the
candidates on the evaluations themselves and keeps the fastest:

- below :data:`PARALLEL_MIN_WORK` the serial kernels run, untimed (a parallel launch
  costs more than such an evaluation);
- above it the candidates are the serial kernels and the parallel ones with 2, 4, …
  and all the threads this process may use (``os.sched_getaffinity``, capped by
  Numba's thread count); the first calls try each in turn, then the fastest runs and the
  others are re-timed from time to time (:attr:`Schedule.PROBE_SHARE` of the time) and
  when the time per call moves (at most :attr:`Schedule.DRIFT_SHARE`), so a change of
  load is followed within about a second for small problems (tested on a simulated
  machine) and within some tens of calls for the largest.

Environment (read when a plan is built):

- ``MEANFIELD_PARALLEL``: ``adaptive`` (default), ``always`` (parallel with every
  thread above the threshold, the behaviour before adaptive schedules) or ``never``;
- ``MEANFIELD_PARALLEL_MIN_WORK``: the threshold (default :data:`PARALLEL_MIN_WORK`).

Importing this module also bounds how long the OpenMP threads of Numba's ``omp``
threading layer (GNU OpenMP) spin before they sleep, ``GOMP_SPINCOUNT`` =
:data:`SPINCOUNT`, unless the environment sets ``OMP_WAIT_POLICY`` or
``GOMP_SPINCOUNT`` itself: threads that spin long at a barrier take the core from the
very thread they wait for when the machine is busy.  It must run before Numba starts its
thread pool (``import meanfield`` imports it first); a process that started Numba's
threads before importing meanfield keeps the policy it started with.
"""
from __future__ import annotations

import os
import time

# Below this much work per evaluation (N × m × (k_in + k_out + 2), summed over blocks and
# networks) the kernels run serially: a parallel launch costs more than it saves.
# Measured with ``python -m benchmarks small`` (2 cores, 2 threads): serial was faster up
# to 6.1e4 (19.0 against 21.1 us), parallel from 2.5e5 (42.1 against 49.3 us).
PARALLEL_MIN_WORK = 1 << 17

POLICIES = ("adaptive", "always", "never")

# libgomp's threads spin this many times (10⁴ pause instructions: an estimated 0.05–0.7 ms,
# by the processor's pause latency) at a barrier or between parallel regions before they
# sleep.  Its own default, 300000, spins 30 times longer, and on a busy machine that
# spinning takes the core from the very thread it waits for: measured with every thread
# forced (MEANFIELD_PARALLEL=always) beside four busy processes, widths [64, 64], 24.3 ms
# an evaluation with libgomp's default against 0.42 ms with this count.  Sleeping at
# once (OMP_WAIT_POLICY=PASSIVE) cost 15–30 % at moderate sizes on a quiet machine.
SPINCOUNT = 10000

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = str(SPINCOUNT)


def parallel_threshold() -> int:
    """Work per evaluation from which the kernels may run in parallel (env
    ``MEANFIELD_PARALLEL_MIN_WORK`` overrides the default :data:`PARALLEL_MIN_WORK`)."""
    v = os.environ.get("MEANFIELD_PARALLEL_MIN_WORK")
    if not v:
        return PARALLEL_MIN_WORK
    try:
        out = int(v)
    except ValueError:
        out = -1
    if out < 0:
        raise ValueError(f"MEANFIELD_PARALLEL_MIN_WORK={v!r}: expected a whole number >= 0")
    return out


def policy() -> str:
    """The schedule policy from ``MEANFIELD_PARALLEL`` (default ``adaptive``)."""
    v = os.environ.get("MEANFIELD_PARALLEL", "").strip().lower() or "adaptive"
    if v not in POLICIES:
        raise ValueError(f"MEANFIELD_PARALLEL={v!r}: expected one of {', '.join(POLICIES)}")
    return v


def check_environment() -> None:
    """ValueError naming the variable when ``MEANFIELD_PARALLEL`` or
    ``MEANFIELD_PARALLEL_MIN_WORK`` is set to something this module cannot use."""
    policy()
    parallel_threshold()


def available_cores() -> int:
    """The cores this process may run on (``os.sched_getaffinity``; where that does not
    exist, macOS and Windows, ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def usable_threads() -> int:
    """Threads a parallel pass may use: Numba's thread count for the calling thread,
    capped by the cores this process may run on."""
    import numba

    return max(1, min(numba.get_num_threads(), available_cores()))


def candidates(threads: int) -> tuple:
    """Thread counts to choose from: 0 (the serial kernels), then 2, 4, … below
    ``threads``, and ``threads`` itself."""
    out = [0]
    t = 2
    while t < threads:
        out.append(t)
        t *= 2
    if threads > 1:
        out.append(threads)
    return tuple(out)


class Schedule:
    """Chooses the thread count of each kernel call (0: the serial kernels) by timing.

    ``work`` decides with :data:`PARALLEL_MIN_WORK` whether parallel kernels are
    considered; ``policy_name`` defaults to ``MEANFIELD_PARALLEL``; ``threads``, the most
    threads to consider, to :func:`usable_threads` (a count above Numba's runs on all of
    Numba's threads).

    Use ``t = schedule.begin()`` before a call and ``schedule.end(t)`` after it (or
    :meth:`threads` and :meth:`record` with a time measured elsewhere).  With one
    candidate (small work, one usable thread, or a fixed policy) nothing is timed.  An
    adaptive schedule starts afresh when the caller's Numba thread count changes
    (``numba.set_num_threads``), with the candidates that count allows.

    Otherwise the schedule starts by running the candidates in turn, call by call, the
    most threads first (the first call of each untimed: it starts the thread pool or
    warms the caches), each until it has ``MIN_CALLS`` timed calls and ``MIN_SECONDS``
    of them, and keeps the one with the lowest mean time.  It then runs that one,
    measuring it the same way over and over, and re-times a neighbouring candidate (one
    step fewer or more threads) the same way:

    - periodically, on either side in turn, once the time spent since the last decision
      is ``1 / PROBE_SHARE`` times what the probe will cost;
    - sooner when two measurements in a row differ from the one the current candidate
      was chosen on by more than ``DRIFT`` (the load changed): fewer threads when it got
      slower, more when it got faster, as soon as the probe costs at most
      ``DRIFT_SHARE`` of the time since the last decision (so noise cannot make probing
      expensive).

    The probed candidate takes over when its mean is below ``SWITCH_MARGIN`` times the
    current one's last, and then the next candidate in the same direction is probed at
    once, so a change of load is followed in a few measurements.  Means over several
    scheduler time slices (``MIN_SECONDS``) are what make the comparison meaningful on a
    busy machine, where single calls of the parallel kernels vary by several times.
    """

    MIN_CALLS = 3         # timed calls of a candidate, at least, per measurement
    MIN_SECONDS = 0.1     # and at least this much time (tens of scheduler time slices)
    PROBE_SHARE = 0.03    # at most this share of the time goes to periodic probes
    SWITCH_MARGIN = 0.9   # a probe must be this much faster to take over
    DRIFT = 1.5           # two measurements this far from the last decision's: re-check now,
    DRIFT_SHARE = 0.2     # if the probe costs at most this share of the time since then

    def __init__(self, work: float, policy_name: str | None = None, threads: int | None = None,
                 clock=time.perf_counter):
        import numba

        pol = policy() if policy_name is None else policy_name
        if pol not in POLICIES:
            raise ValueError(f"unknown schedule policy {pol!r}; expected one of {', '.join(POLICIES)}")
        self._get_threads = numba.get_num_threads
        self._set_threads = numba.set_num_threads
        self._numba_threads = numba.get_num_threads()
        n = usable_threads() if threads is None else int(threads)
        self.policy = pol
        self.clock = clock
        # adaptive above the threshold: follows the caller's Numba thread count too
        self._adaptive = pol == "adaptive" and work >= parallel_threshold()
        self._most = n
        if pol == "never" or work < parallel_threshold() or n < 2:
            cands = (0,)
        elif pol == "always":
            cands = (n,)
        else:
            cands = candidates(n)
        self.switches = 0
        self.probes = 0
        self._start(cands)

    def _start(self, cands) -> None:
        """Begin with these candidates: time each of them, then keep the fastest."""
        self.candidates = cands
        self.estimate = {c: None for c in cands}   # mean seconds per call, as last measured
        self.current = cands[-1]
        self._measuring = list(cands) if len(cands) > 1 else []   # timed for a decision
        self._pending = self._measuring[::-1]       # of those, the ones still short of data
        self._turn = 0
        self._untimed = set(self._measuring)
        self._sum = {c: 0.0 for c in cands}
        self._n = {c: 0 for c in cands}
        self._baseline = 0.0   # the current candidate's mean when it was last chosen
        self._drift = 0        # consecutive measurements of it beyond DRIFT of that
        self._spent = 0.0      # seconds on it since the last decision
        self._dir = 1          # where the last probe went (+1: more threads)
        self._side = 1         # which neighbour the next periodic probe tries
        self._t0 = 0.0
        self._restore = 0      # the thread count end() gives back (0: none was changed)

    @property
    def exploring(self) -> bool:
        """True while candidates other than the current one are being timed (the start,
        or a probe)."""
        return bool(self._pending)

    @property
    def fixed(self) -> bool:
        """True when there is only one candidate (nothing to time)."""
        return len(self.candidates) == 1

    def threads(self) -> int:
        """The thread count for the next call (0: the serial kernels)."""
        p = self._pending
        return p[self._turn % len(p)] if p else self.current

    def begin(self) -> int:
        """The thread count for the call about to start (0: serial kernels).  Sets
        Numba's thread count for it where it is below the calling thread's, and starts
        the call's clock.  Pair with :meth:`end` (in a ``finally``) once it returns."""
        if self._adaptive:
            nt = self._get_threads()
            if nt != self._numba_threads:   # the caller changed Numba's thread count
                self._numba_threads = nt
                m = min(self._most, nt)
                self._start(candidates(m) if m > 1 else (0,))
        t = self.threads()
        self._restore = 0
        if 0 < t < self._numba_threads:
            cur = self._get_threads()   # the caller's, restored by end()
            if t < cur:
                self._set_threads(t)
                self._restore = cur
        if not self.fixed:
            self._t0 = self.clock()
        return t

    def end(self, threads: int) -> None:
        """The call begun with :meth:`begin` returned: record its time, restore Numba's
        thread count."""
        if not self.fixed:
            self.record(threads, self.clock() - self._t0)
        if self._restore:
            self._set_threads(self._restore)
            self._restore = 0

    def record(self, threads: int, seconds: float) -> None:
        """Report that a call with ``threads`` took ``seconds``."""
        if self.fixed:
            return
        if self._pending:
            self._turn += 1
            if threads in self._untimed:
                self._untimed.discard(threads)
                return
            if self._add(threads, seconds):
                self._pending.remove(threads)
                if not self._pending:
                    self._decide()
            return
        self._spent += seconds
        if self._add(threads, seconds):   # a measurement of the current candidate
            mean = self._take(threads)
            if mean > self.DRIFT * self._baseline or self.DRIFT * mean < self._baseline:
                self._drift += 1
            else:
                self._drift = 0
            if self._drift >= 2:   # the load changed: fewer threads if slower, more if faster
                side = -1 if mean > self._baseline else 1
                c = self._neighbour(side)
                if c is None:
                    self._baseline = mean
                    self._drift = 0
                elif self._spent * self.DRIFT_SHARE >= self._cost(c, seconds):
                    self._probe(side, forced=True)
                    return
        c = self._neighbour(self._side)
        if c is None:
            c = self._neighbour(-self._side)
        if self._spent * self.PROBE_SHARE >= self._cost(c, seconds):
            self._probe(self._side, forced=False)

    def _cost(self, c, seconds) -> float:
        """What a probe of candidate c will cost (its last estimate, or this call's time)."""
        est = self.estimate[c]
        return max(self.MIN_SECONDS, self.MIN_CALLS * (est if est is not None else seconds))

    def _add(self, c, seconds) -> bool:
        """Add a call's time to candidate c's measurement; True once it is complete."""
        self._sum[c] += seconds
        self._n[c] += 1
        return self._n[c] >= self.MIN_CALLS and self._sum[c] >= self.MIN_SECONDS

    def _take(self, c) -> float:
        """Candidate c's completed measurement: its mean, now its estimate."""
        mean = self._sum[c] / self._n[c]
        self.estimate[c] = mean
        self._sum[c] = 0.0
        self._n[c] = 0
        return mean

    def _neighbour(self, direction) -> int | None:
        i = self.candidates.index(self.current) + direction
        return self.candidates[i] if 0 <= i < len(self.candidates) else None

    def _probe(self, direction, forced) -> bool:
        """Start timing the neighbour in ``direction`` (the other one if there is none and
        not ``forced``); False if there is none to time."""
        c = self._neighbour(direction)
        if c is None and not forced:
            direction = -direction
            c = self._neighbour(direction)
        if c is None:
            return False
        self._dir = direction
        self._measuring = [c]
        self._pending = [c]
        self._turn = 0
        self._sum[c] = 0.0
        self._n[c] = 0
        self.probes += 1
        return True

    def _decide(self) -> None:
        """After the start (every candidate timed): the fastest.  After a probe: the
        probed candidate if it beat the current one's last mean by the margin, and then
        at once the next candidate in the same direction."""
        timed = self._measuring
        means = {c: self._take(c) for c in timed}
        self._measuring = []
        self._spent = 0.0
        self._drift = 0
        if len(timed) > 1:
            self.current = min(timed, key=means.get)
            self._baseline = means[self.current]
            return
        (c,) = timed
        if means[c] < self.SWITCH_MARGIN * self.estimate[self.current]:
            self.current = c
            self.switches += 1
            self._baseline = means[c]
            self._sum[c] = 0.0
            self._n[c] = 0
            self._probe(self._dir, forced=True)
        else:
            self._baseline = self.estimate[self.current]
            self._side = -self._dir

    def __repr__(self) -> str:
        est = ", ".join(f"{c}: {1e6 * e:.1f} us" if e is not None else f"{c}: -"
                        for c, e in self.estimate.items())
        return (f"Schedule(policy={self.policy!r}, current={self.current}, "
                f"switches={self.switches}, probes={self.probes}, estimates {{{est}}})")
