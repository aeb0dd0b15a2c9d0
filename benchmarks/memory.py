"""``python -m benchmarks memory``: peak memory of one Euler step, in a fresh process.

The kernels are compiled (or loaded from cache) on a tiny problem first; then the
process's peak-RSS counter is reset (Linux ``/proc/self/clear_refs``), the inputs and
particles are allocated and one solver step runs.  Reported: the peak resident memory
above the level before allocation, the bytes of the inputs (X, y) and particles
(θ) themselves, and the difference ("extra": what the solver and kernels add).
Prints one JSON line.
"""
from __future__ import annotations

import gc
import json



def _status(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1]) / 1024.0  # kB -> MB
    raise RuntimeError(f"{field} not in /proc/self/status")


def run(args) -> dict:
    import solvers

    from .step import problem

    obj = problem(args.d, 300, 40, args.k, "float64")  # compile / load the kernels
    solvers.solve(obj, obj.network.theta, method="euler", dt=1e-3, stop=solvers.Stop(steps=2))
    del obj
    gc.collect()
    base = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    obj = problem(args.d, args.n, args.m, args.k, "float64")
    inputs = obj.data.X.nbytes + obj.data.y.nbytes + obj.network.theta.nbytes
    solvers.solve(obj, obj.network.theta, method="euler", dt=1e-3, stop=solvers.Stop(steps=1))
    peak = _status("VmHWM") - base
    res = dict(n=args.n, m=args.m, d=args.d, k=args.k, peak_mb=peak, inputs_mb=inputs / 2 ** 20,
               extra_mb=peak - inputs / 2 ** 20)
    print(json.dumps(res))
    return res
