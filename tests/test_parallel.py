"""The serial/parallel schedule (meanfield/parallel.py): which candidates it offers, how
it chooses among them on a simulated machine whose load changes, what it costs, and that
no choice changes a bit of the results."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import meanfield as mf
from meanfield import parallel as P

ROOT = Path(__file__).resolve().parents[1]
BIG = 1 << 40   # work far above any threshold


def test_candidates():
    assert P.candidates(1) == (0,)
    assert P.candidates(2) == (0, 2)
    assert P.candidates(6) == (0, 2, 4, 6)
    assert P.candidates(8) == (0, 2, 4, 8)


def test_policies_and_threshold(monkeypatch):
    assert P.Schedule(BIG, "never", threads=8).candidates == (0,)
    assert P.Schedule(BIG, "always", threads=2).candidates == (2,)
    assert P.Schedule(BIG, "adaptive", threads=2).candidates == (0, 2)
    assert P.Schedule(BIG, "adaptive", threads=1).candidates == (0,)
    assert P.Schedule(P.PARALLEL_MIN_WORK - 1, "adaptive", threads=2).candidates == (0,)
    monkeypatch.setenv("MEANFIELD_PARALLEL_MIN_WORK", "10")
    assert P.Schedule(10, "adaptive", threads=2).candidates == (0, 2)
    monkeypatch.setenv("MEANFIELD_PARALLEL", "never")
    assert P.Schedule(BIG, threads=2).candidates == (0,)
    monkeypatch.setenv("MEANFIELD_PARALLEL", "sometimes")
    with pytest.raises(ValueError, match="MEANFIELD_PARALLEL='sometimes'"):
        P.Schedule(BIG, threads=2)
    with pytest.raises(ValueError, match="unknown schedule policy 'x'"):
        P.Schedule(BIG, "x", threads=2)
    monkeypatch.setenv("MEANFIELD_PARALLEL", "adaptive")
    monkeypatch.setenv("MEANFIELD_PARALLEL_MIN_WORK", "lots")
    with pytest.raises(ValueError, match="MEANFIELD_PARALLEL_MIN_WORK='lots': expected a whole"):
        P.Schedule(BIG, threads=2)
    with pytest.raises(ValueError, match="MEANFIELD_PARALLEL_MIN_WORK='lots'"):
        P.check_environment()


@pytest.mark.parametrize("var,value", [("MEANFIELD_PARALLEL", "sometimes"),
                                       ("MEANFIELD_PARALLEL_MIN_WORK", "-3")])
def test_bad_environment_is_a_one_line_error(tmp_path, var, value):
    """From the command line: exit 2, one line naming the variable, nothing written."""
    out = tmp_path / "run.h5"
    p = subprocess.run([sys.executable, "-m", "meanfield", "run", "--preset", "relu-norm-2layer",
                        "-o", str(out)], env=dict(os.environ, **{var: value}), cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [p.stderr.strip()]
    assert p.stderr.startswith(f"meanfield: error: {var}={value!r}")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_spinning_is_bounded_unless_the_user_chose():
    """Set by ``import meanfield`` before any Numba thread starts; a user's own
    OMP_WAIT_POLICY or GOMP_SPINCOUNT is left as it is."""
    code = ("import os, meanfield; "
            "print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = lambda e: subprocess.run([sys.executable, "-c", code], env=e, cwd=ROOT,  # noqa: E731
                                   capture_output=True, text=True, check=True).stdout.strip()
    assert out(env) == f"{P.SPINCOUNT} None"
    assert out(dict(env, OMP_WAIT_POLICY="PASSIVE")) == "None PASSIVE"
    assert out(dict(env, GOMP_SPINCOUNT="1000")) == "1000 None"


class Machine:
    """A simulated machine: ``cost[threads]`` seconds per call, changed at will."""

    def __init__(self, cost):
        self.cost = dict(cost)
        self.elapsed = 0.0
        self.by_threads = {}

    def run(self, schedule, calls):
        for _ in range(calls):
            t = schedule.threads()
            sec = self.cost[t]
            schedule.record(t, sec)
            self.elapsed += sec
            self.by_threads[t] = self.by_threads.get(t, 0) + 1

    def run_for(self, schedule, seconds):
        t0 = self.elapsed
        while self.elapsed - t0 < seconds:
            self.run(schedule, 1)


def test_schedule_picks_the_fastest_and_follows_the_load():
    s = P.Schedule(BIG, "adaptive", threads=4)
    assert s.candidates == (0, 2, 4)
    quiet = {0: 100e-6, 2: 60e-6, 4: 40e-6}
    m = Machine(quiet)
    m.run_for(s, 20.0)
    assert s.current == 4 and s.switches == 0
    # the start (every candidate for MIN_SECONDS) and the periodic probes of the
    # neighbour (2 threads) cost at most PROBE_SHARE of the time besides
    extra = sum(n * (quiet[t] - quiet[4]) for t, n in m.by_threads.items())
    start = 3 * P.Schedule.MIN_SECONDS
    assert s.probes >= 5
    assert extra <= P.Schedule.PROBE_SHARE * m.elapsed + start
    # neighbours arrive: 4 threads now lose to 2, and 2 to the serial kernels; the
    # schedule walks down one step per probe and settles on the serial kernels
    busy = {0: 150e-6, 2: 400e-6, 4: 2000e-6}
    m.cost = busy
    t0 = m.elapsed
    while s.current != 0:
        m.run(s, 1)
        assert m.elapsed - t0 < 2.0, "did not follow the load within 2 s of simulated time"
    m.run_for(s, 20.0)
    assert s.current == 0
    # the load leaves again: back to 4 threads
    m.cost = quiet
    t0 = m.elapsed
    while s.current != 4:
        m.run(s, 1)
        assert m.elapsed - t0 < 2.0
    assert s.switches == 4   # 4 -> 2 -> 0 -> 2 -> 4


def test_schedule_keeps_its_choice_within_the_margin():
    """A candidate less than 10 % faster does not take over (no flapping on noise)."""
    s = P.Schedule(BIG, "adaptive", threads=2)
    m = Machine({0: 100e-6, 2: 95e-6})
    m.run_for(s, 10.0)
    switches, probes = s.switches, s.probes
    m.cost = {0: 95e-6, 2: 100e-6}
    m.run_for(s, 10.0)
    assert s.switches == switches and s.probes > probes


def test_schedule_first_call_of_each_candidate_is_not_timed():
    """The first call of a candidate (the thread pool starting) must not decide."""
    s = P.Schedule(BIG, "adaptive", threads=2)
    first = {0: True, 2: True}
    for _ in range(200):
        t = s.threads()
        sec = 1.0 if first[t] else (20e-6 if t == 2 else 50e-6)
        first[t] = False
        s.record(t, sec)
    assert s.current == 2


def _traj(policy, steps=6):
    """Euler steps of a small two-block network, every evaluation under ``policy``."""
    net = mf.rzg_three_layer(5, 40, 30, k=2, activations=("relu", "tanh"), seed=0)
    X = mf.data.Gaussian(5, 0.5).sample(200, 1)
    obj = mf.Objective(net, mf.Dataset(X, mf.ReluNorm(1.0)(X)))
    obj._plan.schedule = policy
    th = net.theta.copy()
    out = np.empty_like(th)
    sc = obj.default_scales()
    for _ in range(steps):
        obj(th, out, sc, 0)
        th += 0.05 * out
    return th, obj.outputs.copy()


class Alternating(P.Schedule):
    """A schedule that changes its thread count at every call."""

    def __init__(self, threads):
        super().__init__(BIG, "adaptive", threads=threads)
        self._i = 0

    def threads(self):
        self._i += 1
        return self.candidates[self._i % len(self.candidates)]

    def record(self, threads, seconds):
        pass


def test_every_schedule_gives_the_same_bits():
    import numba

    n = numba.get_num_threads()
    ref = _traj(P.Schedule(BIG, "never"))
    for sch in (P.Schedule(BIG, "always"), P.Schedule(BIG, "adaptive"), Alternating(n)):
        got = _traj(sch)
        assert got[0].tobytes() == ref[0].tobytes()
        assert got[1].tobytes() == ref[1].tobytes()


SCRIPT = r"""
import hashlib, numpy as np, numba
from meanfield import parallel as P
from tests.test_parallel import _traj, Alternating, BIG
assert numba.get_num_threads() == 4
out = []
for sch in (P.Schedule(BIG, "never"), P.Schedule(BIG, "always", threads=4), Alternating(4)):
    th, f = _traj(sch)
    assert numba.get_num_threads() == 4, "a schedule left Numba's thread count changed"
    out.append(hashlib.sha256(th.tobytes() + f.tobytes()).hexdigest())
print(sch.candidates, *out)
"""


def test_intermediate_thread_counts_bit_identical_and_restored():
    """With 4 Numba threads the candidates are 0, 2 and 4: a call on 2 threads sets
    Numba's count for the call and restores it after; every count gives the same bits."""
    env = dict(os.environ, NUMBA_NUM_THREADS="4")
    p = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    cands, *hashes = p.stdout.strip().rsplit(" ", 3)
    assert cands == "(0, 2, 4)"
    assert len(set(hashes)) == 1


def test_features_follow_the_policy(monkeypatch):
    """Network.features (forward passes outside an objective) under every policy."""
    net = mf.rzg_three_layer(4, 64, 64, k=1, seed=1)
    X = mf.data.Gaussian(4, 0.5).sample(1024, 2)
    monkeypatch.setenv("MEANFIELD_PARALLEL_MIN_WORK", "1")
    outs = []
    for pol in ("never", "always", "adaptive"):
        monkeypatch.setenv("MEANFIELD_PARALLEL", pol)
        for _ in range(3):
            outs.append(hashlib.sha256(net(X).tobytes()).hexdigest())
    assert len(set(outs)) == 1


def test_noisy_load_keeps_probing_cheap():
    """A machine whose speed jumps by ±40 % every 50 ms (for every candidate alike):
    drift-triggered probes must not make the worse candidate cost more than the two
    probe shares together."""
    rng = np.random.default_rng(0)
    s = P.Schedule(BIG, "adaptive", threads=2)
    base = {0: 100e-6, 2: 300e-6}
    elapsed, factor, next_jump, worse = 0.0, 1.0, 0.05, 0.0
    while elapsed < 60.0:
        if elapsed >= next_jump:
            factor = float(np.exp(0.4 * rng.standard_normal()))
            next_jump += 0.05
        t = s.threads()
        sec = base[t] * factor
        s.record(t, sec)
        elapsed += sec
        if t == 2 and elapsed > 1.0:
            worse += sec
    assert s.current == 0
    assert worse / elapsed <= P.Schedule.PROBE_SHARE + P.Schedule.DRIFT_SHARE
    assert worse / elapsed <= 0.1


def test_adaptive_schedule_follows_numba_set_num_threads():
    """numba.set_num_threads(1) after the schedule was built: the next call runs the
    serial kernels (nothing else is possible); back to the full count: it explores again."""
    import numba

    n = numba.get_num_threads()
    if n < 2:
        pytest.skip("needs 2 Numba threads")
    s = P.Schedule(BIG, "adaptive", threads=2)
    assert s.candidates == (0, 2)
    try:
        numba.set_num_threads(1)
        t = s.begin()
        s.end(t)
        assert t == 0 and s.candidates == (0,)
    finally:
        numba.set_num_threads(n)
    t = s.begin()
    s.end(t)
    assert s.candidates == (0, 2) and s.exploring
