"""``python -m benchmarks gap``: width sweeps of the ``teacher-2layer`` and
``relu-norm-3layer`` presets (widths 16 … 4096, 5 seeds, reference M = 16384).

Reported per preset, all from one run:

- the fitted rate β of the function gap at t = 0 and at the end, with its bootstrap
  interval (theory at t = 0: 1/2), and the rate of the seed-averaged function;
- the wall time of the sweep;
- its overhead against the kernels alone: the sweep's time divided by the summed step
  time of what it steps, each measured like ``python -m benchmarks step`` does (median
  of ``--reps`` steps of the real Euler loop, after a first call) and multiplied by the
  preset's number of steps: the reference, and every width's S members as the sweep
  steps them (one batched ensemble).  The same ratio against the members stepped one by
  one is printed beside it.

The gap files land in ``--out`` (default ``gap-benchmark/``), with their figures.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np

PRESETS = ("teacher-2layer", "relu-norm-3layer")


def step_time(field, y0, dt, reps) -> float:
    """Median seconds per Euler step of ``field`` from ``y0`` (after a first call)."""
    import solvers

    out = np.empty_like(y0)
    scales = np.ones(len(field.groups))
    field(y0, out, scales, 0)
    stamps = []
    for _ in solvers.iterate(field, y0, method="euler", dt=dt, stop=solvers.Stop(steps=reps)):
        stamps.append(time.perf_counter())
    return statistics.median(np.diff(stamps))


def kernels_alone(cfg, opts, reps) -> dict:
    """Seconds the kernels alone need for the sweep's steps (see the module docstring)."""
    import solvers

    from meanfield.discretization import member
    from meanfield.discretization.options import reference_experiment
    from meanfield.objective import Objective

    exp = reference_experiment(cfg, opts)
    steps = exp.stop.steps
    dt = exp.dt
    ref = Objective(exp.network, exp.train, loss=exp.loss)
    t_ref = step_time(ref, exp.network.theta, dt, reps)
    batched, alone = 0.0, 0.0
    for widths in opts.widths:
        nets = [member(exp.network, widths, seed=s).network for s in range(opts.seeds)]
        objs = [Objective(n, exp.train, loss=exp.loss, member=k) for k, n in enumerate(nets)]
        ens = solvers.Ensemble(objs)
        batched += step_time(ens, ens.pack([n.theta for n in nets]), dt, reps)
        alone += sum(step_time(o, n.theta, dt, reps) for o, n in zip(objs, nets))
    return {"steps": steps, "reference": t_ref * steps, "members_batched": batched * steps,
            "members_alone": alone * steps}


def run(args) -> dict:
    import numba

    import meanfield as mf
    from meanfield import presets
    from meanfield.discretization import parse_widths
    from meanfield.plots import plot_gap

    os.makedirs(args.out, exist_ok=True)
    widths = parse_widths(args.widths)
    out = {"threads": numba.get_num_threads(), "widths": widths, "seeds": args.seeds,
           "reference_width": args.reference_width, "presets": {}}
    for name in args.presets.split(","):
        path = os.path.join(args.out, f"gap-{name}.h5")
        cfg = mf.config.load_config(presets.text(name), getattr(args, "overrides", ()))
        steps = cfg["solver"]["steps"]
        every = args.every or max(1, steps // 10)
        t0 = time.perf_counter()
        res = mf.sweep(cfg, widths=widths, seeds=args.seeds, reference_width=args.reference_width,
                       every=every, path=path, overwrite=True, workers=args.workers,
                       progress=not args.quiet)
        wall = time.perf_counter() - t0
        figdir = os.path.join(args.out, f"gap-{name}-plots")
        os.makedirs(figdir, exist_ok=True)
        figs = plot_gap(res, figdir)
        k = kernels_alone(res.config, res.options, args.reps)
        kern = k["reference"] + k["members_batched"]
        f, b = res.rates["function"], res.rates["bias"]
        row = {"sweep_seconds": wall, "kernel_seconds": kern,
               "kernel_seconds_members_alone": k["reference"] + k["members_alone"],
               "overhead": wall / kern,
               "overhead_members_alone": wall / (k["reference"] + k["members_alone"]),
               "steps": k["steps"], "gap_times": len(res.t), "x": f["x"], "level": f["level"],
               "n_boot": f["n_boot"], "file": path, "figures": figs,
               "reference_status": res.reference.status, "status": res.file_status}
        for tag, j in (("t0", 0), ("end", len(res.t) - 1)):
            row[tag] = {"t": float(res.t[j]),
                        "beta": [float(f["beta"][j]), float(f["beta_lo"][j]), float(f["beta_hi"][j])],
                        "bias_beta": [float(b["beta"][j]), float(b["beta_lo"][j]), float(b["beta_hi"][j])]}
        ex = res.extrapolation["test_loss"]
        row["test_loss_end"] = {"reference": float(ex["reference"][-1]),
                                "extrapolated": float(ex["value"][-1]), "error": float(ex["error"][-1]),
                                "variable": ex["variable"][-1],
                                "widest_mean": float(np.mean(res.loss_test[-1, :, -1]) + ex["reference"][-1])}
        out["presets"][name] = row
    return out


def report(res) -> str:
    lines = [f"width sweeps: widths {res['widths'][0]} … {res['widths'][-1]} ({len(res['widths'])}), "
             f"{res['seeds']} seeds, reference M = {res['reference_width']}, "
             f"{res['threads']} Numba threads"]
    for name, r in res["presets"].items():
        lines.append(f"\n{name}: {r['steps']} steps, {r['gap_times']} gap times; sweep {r['status']}")
        for tag in ("t0", "end"):
            x = r[tag]
            lines.append(f"  t = {x['t']:<8.4g} beta (function gap) = {x['beta'][0]:.3f} "
                         f"[{x['beta'][1]:.3f}, {x['beta'][2]:.3f}]   beta (seed-averaged) = "
                         f"{x['bias_beta'][0]:.3f} [{x['bias_beta'][1]:.3f}, {x['bias_beta'][2]:.3f}]")
        lines.append(f"  (against the {r['x']}; {100 * r['level']:.0f} % bootstrap intervals, "
                     f"{r['n_boot']} resamples over seeds)")
        tl = r["test_loss_end"]
        lines.append(f"  test loss at the end: reference {tl['reference']:.4e}, widest members "
                     f"{tl['widest_mean']:.4e}, extrapolated (in {tl['variable']}) "
                     f"{tl['extrapolated']:.4e} +- {tl['error']:.1e}")
        lines.append(f"  sweep {r['sweep_seconds']:.1f} s; kernels alone {r['kernel_seconds']:.1f} s "
                     f"-> overhead {r['overhead']:.3f} (goal <= 1.25); against members stepped one "
                     f"by one ({r['kernel_seconds_members_alone']:.1f} s): "
                     f"{r['overhead_members_alone']:.3f}")
    return "\n".join(lines)
