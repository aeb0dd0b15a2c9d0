"""Benchmarks: ``python -m benchmarks {step,memory,recording,small,load,gap,perf,science,limit,coverage,report} [options]``."""
from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("step", help="time one Euler step on the reference problem")
    st.add_argument("--d", type=int, default=16)
    st.add_argument("--n", type=int, default=8192, help="samples")
    st.add_argument("--m", type=int, default=4096, help="particles per block")
    st.add_argument("--k", type=int, default=1, help="bottleneck width")
    st.add_argument("--reps", type=int, default=10, help="timed steps")
    st.add_argument("--mem-n", type=int, default=65536)
    st.add_argument("--mem-m", type=int, default=16384)
    st.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    st.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    me = sub.add_parser("memory", help="peak memory of one step (prints one JSON line)")
    me.add_argument("--d", type=int, default=16)
    me.add_argument("--n", type=int, default=65536)
    me.add_argument("--m", type=int, default=16384)
    me.add_argument("--k", type=int, default=1)
    rc = sub.add_parser("recording", help="overhead of HDF5 recording on the reference problem")
    rc.add_argument("--d", type=int, default=16)
    rc.add_argument("--n", type=int, default=8192)
    rc.add_argument("--m", type=int, default=4096)
    rc.add_argument("--k", type=int, default=1)
    rc.add_argument("--steps", type=int, default=200)
    rc.add_argument("--rounds", type=int, default=6)
    sm = sub.add_parser("small", help="many networks at once: tiny networks against JAX, the "
                        "serial/parallel crossover, ensembles, moderate sizes, erf, busy neighbours")
    sm.add_argument("--parts", default="tiny,crossover,ensemble,moderate,busy",
                    help="comma-separated subset of tiny,crossover,ensemble,moderate,busy")
    sm.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    sm.add_argument("--busy-child", action="store_true", help=argparse.SUPPRESS)
    ld = sub.add_parser("load", help="the kernels beside 0, 1, 2, 4 busy neighbours and another "
                        "meanfield process: slowdown against quiet, fair share, serial and JAX")
    ld.add_argument("--sizes", default="tiny,w64,w256,d4-512,reference",
                    help="comma-separated subset of tiny,w64,w256,d4-512,reference")
    ld.add_argument("--loads", default="0,1,2,4,mf",
                    help="comma-separated busy-loop neighbour counts, and mf (a meanfield "
                    "neighbour); 0 (quiet) is the baseline of the ratios")
    ld.add_argument("--configs", default="meanfield,spin-always",
                    help="comma-separated subset of meanfield (the defaults) and spin-always "
                    "(parallel above the threshold with spinning OpenMP threads, as before)")
    ld.add_argument("--rounds", type=int, default=3, help="interleaved rounds per strategy")
    ld.add_argument("--min-time", type=float, default=0.3, help="seconds per timing")
    ld.add_argument("--out", metavar="DIR", help="also write load.json and load.md there "
                    "(benchmarks/results publishes them in BENCHMARKS.md)")
    ld.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    ld.add_argument("--child", choices=("meanfield", "jax"), help=argparse.SUPPRESS)
    gp = sub.add_parser("gap", help="width sweeps of two presets: rates, sweep time, overhead")
    gp.add_argument("--presets", default="teacher-2layer,relu-norm-3layer")
    gp.add_argument("--widths", default="16,32,...,4096")
    gp.add_argument("--seeds", type=int, default=5)
    gp.add_argument("--reference-width", type=int, default=16384)
    gp.add_argument("--every", type=int, help="steps between gap times (default: steps / 10)")
    gp.add_argument("--workers", type=int, help="run the sweeps on a Dask LocalCluster")
    gp.add_argument("--reps", type=int, default=20, help="timed steps per kernel measurement")
    gp.add_argument("--out", default="gap-benchmark", help="folder for the gap files and figures")
    gp.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    gp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    pf = sub.add_parser("perf", help="meanfield over a grid of sizes and against NumPy, JAX and "
                        "PyTorch; writes perf.json, perf.md and perf-cost.png")
    pf.add_argument("--quick", action="store_true", help="a reduced grid (a smoke test)")
    pf.add_argument("--parts", default="grid,threads,compile,memory,peers",
                    help="comma-separated subset of grid,threads,compile,memory,peers")
    pf.add_argument("--out", default=None, help="folder for the results (default "
                    "benchmarks/results; with --quick benchmarks/results-quick, so that a "
                    "smoke test never replaces the published numbers)")
    pf.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sc = sub.add_parser("science", help="the [RZG] and [SL] depth separations and the "
                        "discretization law, reproduced; writes tables and figures")
    sc.add_argument("parts", nargs="?", default="rzg,sl,gap", help="comma-separated subset of rzg,sl,gap (default all three)")
    sc.add_argument("--quick", action="store_true", help="a reduced version (a smoke test of the "
                    "direction of each result)")
    sc.add_argument("--out", default=None, help="folder for the results (default "
                    "benchmarks/results; with --quick benchmarks/results-quick)")
    sc.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    li = sub.add_parser("limit", help="the [RZG] and [SL] separations at the exact limit "
                        "(m, N -> infinity): writes limit.json and limit.md")
    li.add_argument("parts", nargs="?", default="rzg,sl", help="comma-separated subset of rzg,sl")
    li.add_argument("--quick", action="store_true", help="a reduced version (seconds)")
    li.add_argument("--out", default=None, help="folder for the results (default "
                    "benchmarks/results; with --quick benchmarks/results-quick)")
    li.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    cv = sub.add_parser("coverage", help="coverage of the width rate's intervals at t = 0, "
                        "where the true rate is 1/2: writes coverage.json and coverage.md")
    cv.add_argument("--quick", action="store_true", help="a reduced version (seconds)")
    cv.add_argument("--out", default=None, help="folder for the results (default "
                    "benchmarks/results; with --quick benchmarks/results-quick)")
    cv.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sub.add_parser("report", help="regenerate BENCHMARKS.md from benchmarks/results/")
    args = ap.parse_args(argv)
    if args.cmd in ("perf", "science", "limit", "coverage") and args.out is None:
        args.out = os.path.join("benchmarks", "results-quick" if args.quick else "results")
    if args.cmd == "report":
        from . import report
        print(report.run(args))
        return 0
    if args.cmd == "coverage":
        from . import coverage
        print(coverage.report(coverage.run(args)))
        return 0
    if args.cmd == "limit":
        from . import limit
        res = limit.run(args)
        print(limit.report(res))
        return 0
    if args.cmd == "science":
        from . import science
        res = science.run(args)
        checks = science.directions(res)
        for text, ok in checks:
            print(("ok    " if ok else "FAIL  ") + text)
        print(f"{res['seconds']:.0f} s")
        return 0 if all(ok for _, ok in checks) else 1
    if args.cmd == "perf":
        from . import perf
        res = perf.run(args)
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "perf.json"), "w") as f:
            json.dump(res, f, indent=1)
        text = perf.report(res)
        with open(os.path.join(args.out, "perf.md"), "w") as f:
            f.write(text + "\n")
        if "grid" in res:
            perf.figure(res, os.path.join(args.out, "perf-cost.png"))
        print(text)
        return 0
    if args.cmd == "gap":
        from . import gap
        res = gap.run(args)
        return _publish(gap.report(res), res, args.json)
    if args.cmd == "load":
        from . import load
        if args.child:
            print(json.dumps(load.child(args.sizes.split(","), args.rounds, args.min_time, args.child)))
            return 0
        try:
            load.selection(args)
        except ValueError as e:   # an unknown size, load or configuration
            ap.error(str(e))
        res = load.run(args)
        text = load.report(res)
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, "load.md"), "w") as f:
                f.write("```\n" + text + "\n```\n")
        return _publish(text, res, os.path.join(args.out, "load.json") if args.out else None)
    if args.cmd == "small":
        from . import small
        res = small.run(args)
        return _publish(small.report(res), res, args.json) if res else 0
    for name in ("d", "n", "m", "k"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1")
    if args.cmd == "recording":
        from . import recording
        recording.run(args)
        return 0
    if args.cmd == "memory":
        from . import memory
        memory.run(args)
        return 0
    from . import step
    res = step.run(args)
    return _publish(step.report(res), res, args.json)


def _publish(text: str, res: dict, json_path) -> int:
    """Print a benchmark's report and, with --json, write its results."""
    print(text)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
