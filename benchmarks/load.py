"""``python -m benchmarks load``: the kernels on a busy machine.

A grid of problem sizes (the [RZG] network of :mod:`benchmarks.small`: tiny, widths
[64, 64] with N = 512, [256, 256] with N = 2048, d = 4 [512, 512] with N = 8192, and
the reference problem) is timed with 0, 1, 2 and 4 busy-loop neighbours (plain Python
processes, one per core-hog) and with one neighbour that is another meanfield process
evaluating the reference problem in a loop.

For each load, each configuration runs in a fresh process (the OpenMP wait policy is
read once per process) and times, per size and in interleaved rounds, the time per
evaluation (loss and every velocity, as in ``benchmarks small``) of

- ``default``: the kernels as a user gets them in that configuration,
- ``serial``: the serial kernels (``MEANFIELD_PARALLEL=never``),
- ``serial_again``: the serial kernels again, a second objective timed the same way: the
  ratio of the two is the noise of the measurement itself (they run the same code),
- ``jax``: a JAX ``jit(value_and_grad)`` of the same loss, when JAX is installed (checked
  against meanfield's velocities first), in a process of its own.

Configurations: ``meanfield`` (the shipped defaults: adaptive schedule, OpenMP threads
that spin briefly, ``GOMP_SPINCOUNT=10000``) and ``spin-always`` (the behaviour before adaptive schedules: parallel above the
work threshold, libgomp's default spinning, ``GOMP_SPINCOUNT=300000``).

Reported against the same size's quiet time: the slowdown; the fair-share slowdown
max(1, P / s), with s = cores / (neighbours + 1) the cores this process is entitled to
and P the threads its quiet run used (1 for the serial kernels); their ratio (goal
≤ 1.25), and the same ratio for the serial kernels (P = 1), which no thread count can
beat: where neighbours share a core's execution units or caches with us (hyperthreads
of a virtual machine's host), even one thread on a core of its own slows down; default against serial under the same load (goal: no worse than noise); JAX
against meanfield under the same load.  "No worse than noise" means: default / serial
no higher than the highest serial_again / serial of the whole grid.  Each number is the median over rounds of the
mean time per call over at least ``--min-time`` seconds.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

SIZES = {
    "tiny": dict(d=8, n=256, m=16),
    "w64": dict(d=8, n=512, m=64),
    "w256": dict(d=8, n=2048, m=256),
    "d4-512": dict(d=4, n=8192, m=512),
    "reference": dict(d=16, n=8192, m=4096),
}
LOADS = ("0", "1", "2", "4", "mf")
CONFIGS = {
    "meanfield": {},
    "spin-always": {"MEANFIELD_PARALLEL": "always", "GOMP_SPINCOUNT": "300000"},
}
BUSY = "import time\nt = time.time()\nwhile time.time() - t < 900: pass\n"
MF_NEIGHBOUR = (
    "import time, numpy as np\n"
    "from benchmarks.small import rzg_objective, REF\n"
    "o = rzg_objective(**REF)\n"
    "o.velocity()\n"
    "print('ready', flush=True)\n"
    "t = time.time()\n"
    "while time.time() - t < 900: o.velocity()\n"
)


def _mean_time(fn, min_time: float, min_calls: int = 3) -> float:
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if el >= min_time and n >= min_calls:
            return el / n


def child(sizes, rounds: int, min_time: float, what: str = "meanfield") -> dict:
    """In a fresh process: every size under the load the parent set up.  ``what``:
    "meanfield" (the default and serial kernels, interleaved) or "jax" (alone in its
    process: its worker threads spin after each call and would take the core from the
    meanfield timings)."""
    from .small import jax_step, rzg_objective

    out = {}
    for name in sizes:
        p = SIZES[name]
        obj = rzg_objective(**p)
        row, fns = {}, {}
        if what == "jax":
            run, err = jax_step(obj)
            if run is None:
                out[name] = {"jax_skipped": err}
                continue
            fns["jax"] = run
            row["jax_velocity_rel_err"] = err
        else:
            from meanfield.parallel import Schedule

            serial, again = rzg_objective(**p), rzg_objective(**p)
            for o in (serial, again):   # the serial kernels, as MEANFIELD_PARALLEL=never
                o.schedule = Schedule(o.work, "never")
            for k, o in (("default", obj), ("serial", serial), ("serial_again", again)):
                th = o.network.theta.copy()
                vel = np.empty_like(th)
                sc = o.default_scales()
                fns[k] = (lambda o=o, th=th, vel=vel, sc=sc: o(th, vel, sc, 0))
        for fn in fns.values():   # warm: compiled
            _mean_time(fn, min(0.3, 4 * min_time), min_calls=12)
        if what != "jax":         # and the adaptive schedule past its start
            sch = obj.schedule
            while sch.exploring:
                fns["default"]()
            before = (sch.switches, sch.probes)
        times = {k: [] for k in fns}
        for _ in range(rounds):
            for k, fn in fns.items():
                times[k].append(_mean_time(fn, min_time))
        for k, ts in times.items():
            row[f"{k}_s"] = float(np.median(ts))
            row[f"{k}_rounds_s"] = [float(t) for t in ts]
        if what != "jax":
            row["default_threads"] = sch.current
            row["candidates"] = list(sch.candidates)
            row["switches"] = sch.switches - before[0]   # while timed
            row["probes"] = sch.probes - before[1]
            # the timed rounds of "default" ran the serial kernels and nothing else: its
            # ratio to "serial" is a comparison of the same code, noise by construction
            row["serial_only"] = bool(sch.current == 0 and row["switches"] == 0 and
                                      row["probes"] == 0)
        out[name] = row
    return out


def start_load(load: str):
    """The neighbour processes of ``load`` (a count of busy loops, or "mf")."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if load == "mf":
        p = subprocess.Popen([sys.executable, "-c", MF_NEIGHBOUR], cwd=root,
                             stdout=subprocess.PIPE, text=True)
        p.stdout.readline()   # "ready": imported, built, compiled
        return [p]
    procs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(int(load))]
    time.sleep(0.3)
    return procs


def stop_load(procs) -> None:
    for p in procs:
        p.kill()
        p.wait()


def selection(args):
    """(sizes, loads, configurations) from the command line; ValueError naming an
    unknown one."""
    sizes = [s for s in args.sizes.split(",") if s]
    loads = [x for x in args.loads.split(",") if x]
    configs = [c for c in args.configs.split(",") if c]
    for s in sizes:
        if s not in SIZES:
            raise ValueError(f"unknown size {s!r} (one of {', '.join(SIZES)})")
    for x in loads:
        if x not in LOADS:
            raise ValueError(f"unknown load {x!r} (one of {', '.join(LOADS)})")
    for c in configs:
        if c not in CONFIGS:
            raise ValueError(f"unknown configuration {c!r} "
                             f"(one of {', '.join(CONFIGS)})")
    return sizes, loads, configs


def run(args) -> dict:
    sizes, loads, configs = selection(args)
    from meanfield.parallel import available_cores

    from .report import _machine

    res = {"machine": _machine(), "cores": available_cores(),
           "sizes": {s: SIZES[s] for s in sizes}, "loads": loads,
           "configs": configs, "rounds": args.rounds, "min_time": args.min_time,
           "uptime_before": _uptime(), "results": {}}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    t0 = time.perf_counter()
    for load in loads:
        procs = start_load(load)
        try:
            for c in configs + ["jax"]:
                env = {k: v for k, v in os.environ.items()
                       if k not in ("MEANFIELD_PARALLEL", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
                env.update(CONFIGS.get(c, {}))
                cmd = [sys.executable, "-m", "benchmarks", "load", "--child",
                       "jax" if c == "jax" else "meanfield", "--sizes", ",".join(sizes),
                       "--rounds", str(args.rounds), "--min-time", str(args.min_time)]
                p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
                if p.returncode != 0:
                    raise RuntimeError(f"load {load}, {c}: {p.stderr.strip()[-2000:]}")
                rows = json.loads(p.stdout.strip().splitlines()[-1])
                if c == "jax":
                    for cc in configs:
                        for size, r in rows.items():
                            res["results"][cc][load][size].update(r)
                else:
                    res["results"].setdefault(c, {})[load] = rows
                if not args.quiet:
                    print(f"load {load}, {c}: done ({time.perf_counter() - t0:.0f} s)",
                          file=sys.stderr, flush=True)
        finally:
            stop_load(procs)
    res["uptime_after"] = _uptime()
    res["seconds"] = time.perf_counter() - t0
    summarise(res)
    return res


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def neighbours(load: str) -> int:
    return 1 if load == "mf" else int(load)


def summarise(res: dict) -> None:
    """Slowdowns, fair shares and the goals, per configuration, size and load."""
    C = res["cores"]
    for c, by_load in res["results"].items():
        quiet = by_load.get("0")
        if quiet is None:
            continue
        for load, rows in by_load.items():
            share = C / (neighbours(load) + 1)
            for size, r in rows.items():
                q = quiet[size]
                used = max(1, q["default_threads"])
                fair = max(1.0, used / share)
                r["slowdown"] = r["default_s"] / q["default_s"]
                r["fair_slowdown"] = fair
                r["over_fair"] = r["slowdown"] / fair
                r["serial_slowdown"] = r["serial_s"] / q["serial_s"]
                r["serial_over_fair"] = r["serial_slowdown"] / max(1.0, 1.0 / share)
                r["over_serial"] = r["default_s"] / r["serial_s"]
                r["noise"] = r["serial_again_s"] / r["serial_s"]
                if "jax_s" in r:
                    r["jax_over_default"] = r["jax_s"] / r["default_s"]


def report(res: dict) -> str:
    lines = [f"{res.get('machine', 'machine not recorded')}",
             f"{res['cores']} cores; median of {res['rounds']} interleaved rounds of >= "
             f"{res['min_time']} s per strategy; {res['seconds']:.0f} s",
             f"before: {res['uptime_before']}", f"after:  {res['uptime_after']}"]
    for c, by_load in res["results"].items():
        lines.append("")
        lines.append(f"configuration {c}:")
        lines.append("  size       load  default    serial     threads  slowdown  fair  "
                     "/fair  /serial  noise  JAX       JAX/mf")
        for size in res["sizes"]:
            for load in res["loads"]:
                r = by_load.get(load, {}).get(size)
                if r is None:
                    continue
                jx = (f"{_t(r['jax_s'])}  {r['jax_over_default']:5.2f}" if "jax_s" in r
                      else "-")
                thr = f"{r['default_threads']}{'*' if r.get('serial_only') else ''}"
                lines.append(f"  {size:10s} {load:4s}  {_t(r['default_s'])}  {_t(r['serial_s'])}  "
                             f"{thr:>7s}  {r.get('slowdown', float('nan')):8.2f}  "
                             f"{r.get('fair_slowdown', float('nan')):4.2f}  "
                             f"{r.get('over_fair', float('nan')):5.2f}  {r['over_serial']:7.2f}  "
                             f"{r['noise']:5.2f}  {jx}")
    lines.append("")
    lines.append("threads: the default's thread count at the end (0: the serial kernels; *: it "
                 "ran only those while timed)")
    lines.extend(goals(res))
    return "\n".join(lines)


def goals(res: dict, config: str = "meanfield") -> list:
    """The goals for ``config``: slowdown ≤ 1.25 × the fair-share slowdown; no worse than
    the serial kernels beyond the noise (the serial kernels timed twice); faster than JAX
    under load wherever faster on the quiet machine."""
    by_load = res["results"].get(config)
    if not by_load or "0" not in by_load:
        return []
    worst_fair = max((r["over_fair"], s, x) for x, rows in by_load.items() for s, r in rows.items())
    missed = [(s, x, r["over_fair"], r["serial_over_fair"]) for x, rows in by_load.items()
              for s, r in rows.items() if r["over_fair"] > 1.25]
    judged = [(r["over_serial"], s, x) for x, rows in by_load.items() for s, r in rows.items()
              if not r.get("serial_only")]
    same = [r["over_serial"] for rows in by_load.values() for r in rows.values()
            if r.get("serial_only")]
    worst_serial = max(judged) if judged else (float("nan"), "-", "-")
    aa = [r["noise"] for rows in by_load.values() for r in rows.values()]
    out = [f"goals ({config}):",
           f"  slowdown / fair-share slowdown <= 1.25: worst {worst_fair[0]:.2f} "
           f"({worst_fair[1]}, load {worst_fair[2]}) {'ok' if worst_fair[0] <= 1.25 else 'MISSED'}",
           *(f"    missed at {s}, load {x}: {o:.2f}; the serial kernels' own slowdown there is "
             f"{so:.2f}x their fair share" for s, x, o, so in missed),
           f"  the serial kernels timed twice (the noise): ratios {min(aa):.2f} to {max(aa):.2f}",
           f"  cells where the default ran only the serial kernels while timed: {len(same)} "
           f"(default / serial {min(same, default=float('nan')):.2f} to "
           f"{max(same, default=float('nan')):.2f}: the same code, so noise)",
           f"  default / serial in the other {len(judged)} cells, within the noise: worst "
           f"{worst_serial[0]:.2f} ({worst_serial[1]}, load {worst_serial[2]}) "
           f"{'ok' if not judged or worst_serial[0] <= max(aa) else 'MISSED'}"]
    quiet = by_load["0"]
    lost = [(s, x, r["jax_over_default"]) for x, rows in by_load.items() for s, r in rows.items()
            if "jax_s" in r and quiet[s].get("jax_over_default", 0) > 1 and r["jax_over_default"] < 1]
    if any("jax_s" in r for r in quiet.values()):
        out.append("  faster than JAX under load wherever faster quiet: " +
                   ("ok" if not lost else "MISSED at " + ", ".join(f"{s} load {x} ({v:.2f})"
                                                               for s, x, v in lost)))
    else:
        out.append("  JAX: not installed, not compared")
    return out


def _t(s: float) -> str:
    return f"{1e6 * s:7.0f}us" if s < 1e-2 else f"{1e3 * s:7.1f}ms"
