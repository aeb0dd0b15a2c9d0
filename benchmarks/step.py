"""``python -m benchmarks step``: the cost of one Euler step on the reference problem.

Reference problem (issue "Engine"): d = 16, N = 8192 samples, the [RZG] 3-layer
network with m₁ = m₂ = 4096, k = 1, ReLU, float64.  Reported, all from one run:

- seconds per step (minimum and median over ``--reps`` steps of the real solver loop),
- sample·particle pairs per second (N · Σ_l m_l per step),
- model GFLOP/s with FLOPs = N · Σ_l m_l (4k_{l−1} + 6k_l + 2k_{l−1}·[l > 1]),
- that rate as a percentage of this machine's float64 matrix-multiply rate, measured in
  the same run (numpy 2048 × 2048 matmul, best of 5, before and after the steps),
- the first call's time (JIT compile, or loading Numba's on-disk cache) apart,
- float32 alongside float64, and the speed-up from 1 to 2 threads,
- peak memory at N = 65536, m = 16384 per block, against the bytes of the inputs and
  particles themselves (a fresh subprocess; see :mod:`benchmarks.memory`).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((n, n))
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(reps))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def model_flops(n: int, widths, dims) -> float:
    return float(n * sum(m * (4 * dims[l] + 6 * dims[l + 1] + (2 * dims[l] if l > 0 else 0))
                         for l, m in enumerate(widths)))


def problem(d, n, m, k, dtype, seed=0):
    import meanfield as mf

    net = mf.rzg_three_layer(d, m, m, k=k, seed=seed, dtype=dtype)
    X = mf.data.Gaussian(d, 1.0 / np.sqrt(d)).sample(n, seed + 1)
    return mf.Objective(net, mf.Dataset(X, mf.ReluNorm(1.0)(X)))


def time_steps(obj, reps: int, dt: float = 1e-3):
    """(first-call seconds, [seconds of each of ``reps`` steps]) of the Euler solver."""
    import solvers

    out = np.empty_like(obj.network.theta)
    first = _timed(lambda: obj(obj.network.theta, out, obj.default_scales(), 0))
    stamps = []
    for _ in solvers.iterate(obj, obj.network.theta, method="euler", dt=dt,
                             stop=solvers.Stop(steps=reps)):
        stamps.append(time.perf_counter())
    return first, list(np.diff(stamps))


def run(args) -> dict:
    import numba

    d, n, m, k = args.d, args.n, args.m, args.k
    widths, dims = (m, m), (d, k, 1)
    flops = model_flops(n, widths, dims)
    pairs = n * sum(widths)
    mm_before = matmul_gflops()
    res = {"problem": dict(d=d, n=n, m1=m, m2=m, k=k, activation="relu"),
           "threads": numba.get_num_threads(), "model_flops_per_step": flops}
    rows = {}
    for dtype in ("float64", "float32"):
        obj = problem(d, n, m, k, dtype)
        first, steps = time_steps(obj, args.reps)
        rows[dtype] = dict(first_call_s=first, step_min_s=min(steps),
                           step_median_s=statistics.median(steps))
    numba.set_num_threads(1)
    obj = problem(d, n, m, k, "float64")
    _, steps1 = time_steps(obj, max(3, args.reps // 2))
    numba.set_num_threads(res["threads"])
    mm_after = matmul_gflops()
    mm = max(mm_before, mm_after)
    res["matmul_gflops"] = dict(before=mm_before, after=mm_after, used=mm)
    for dtype, r in rows.items():
        r["pairs_per_s"] = pairs / r["step_min_s"]
        r["gflops"] = flops / r["step_min_s"] / 1e9
        r["percent_of_matmul"] = 100 * r["gflops"] / mm
    res["float64"], res["float32"] = rows["float64"], rows["float32"]
    res["one_thread_step_min_s"] = min(steps1)
    res["speedup_1_to_%d_threads" % res["threads"]] = min(steps1) / rows["float64"]["step_min_s"]
    if not args.no_memory:
        cmd = [sys.executable, "-m", "benchmarks", "memory", "--n", str(args.mem_n),
               "--m", str(args.mem_m), "--d", str(d), "--k", str(k)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
        if out.returncode != 0:
            raise RuntimeError("memory benchmark failed:\n" + out.stderr)
        res["memory"] = json.loads(out.stdout.strip().splitlines()[-1])
    return res


def report(res: dict) -> str:
    p = res["problem"]
    lines = [f"Euler step, [RZG] 3-layer ReLU network: d={p['d']}, N={p['n']}, "
             f"m1=m2={p['m1']}, k={p['k']}, {res['threads']} threads",
             f"matrix-multiply rate (numpy 2048^2 float64): {res['matmul_gflops']['used']:.1f} GFLOP/s "
             f"(before {res['matmul_gflops']['before']:.1f}, after {res['matmul_gflops']['after']:.1f})",
             f"model FLOPs per step: {res['model_flops_per_step'] / 1e9:.3f} GFLOP"]
    for dtype in ("float64", "float32"):
        r = res[dtype]
        lines.append(
            f"{dtype}: {r['step_min_s'] * 1e3:.1f} ms/step (median {r['step_median_s'] * 1e3:.1f}), "
            f"{r['pairs_per_s'] / 1e9:.2f} G pairs/s, {r['gflops']:.1f} GFLOP/s = "
            f"{r['percent_of_matmul']:.1f} % of matmul; first call {r['first_call_s']:.2f} s")
    key = [k for k in res if k.startswith("speedup")][0]
    lines.append(f"1 thread: {res['one_thread_step_min_s'] * 1e3:.1f} ms/step; {key}: {res[key]:.2f}x")
    if "memory" in res:
        mm = res["memory"]
        lines.append(
            f"memory at N={mm['n']}, m={mm['m']}: peak {mm['peak_mb']:.1f} MB above the process "
            f"before allocation; inputs+particles {mm['inputs_mb']:.1f} MB; extra {mm['extra_mb']:.1f} MB")
    return "\n".join(lines)
