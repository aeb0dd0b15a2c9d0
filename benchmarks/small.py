"""``python -m benchmarks small``: many networks at once, small and moderate sizes.

Everything is measured in one run and reported as ratios to quantities measured in the
same run (the machine's speed drifts):

- per-evaluation time (loss and every velocity) of tiny [RZG] networks (d = 8, widths
  [16, 16], N = 256; widths [64, 64], N = 512) with 1 and 2 threads, against a JAX
  ``jit(grad)`` step of the same network when JAX is installed (checked against
  meanfield's velocities to 1e-10 first);
- the serial/parallel crossover: the evaluation time of both kernel schedules over a
  range of problem sizes, with 2 threads;
- ensemble throughput: 256 networks of widths [64, 64] (d = 8, N = 512) advanced as one
  ``solvers.Ensemble``, its sample·particle pair rate against the reference problem's
  (d = 16, N = 8192, m₁ = m₂ = 4096, the ``step`` benchmark) in the same run;
- moderate sizes (d = 4, widths [512, 512], N = 8192; d = 8, widths [256, 256],
  N = 2048): model GFLOP/s against the reference problem's;
- erf against ReLU per pair at those sizes and at the reference size;
- the slowdown of the reference step and of the tiny network with one busy-loop process
  beside them, for each Numba threading layer available (separate processes).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from .step import model_flops

REF = dict(d=16, n=8192, m=4096)
TINY = dict(d=8, n=256, m=16)
W64 = dict(d=8, n=512, m=64)
MODERATE = (dict(d=4, n=8192, m=512), dict(d=8, n=2048, m=256))


def rzg_objective(d, n, m, activation="relu", seed=0, member=0, data_seed=1):
    import meanfield as mf

    net = mf.rzg_three_layer(d, m, m, k=1, activations=(activation, activation), seed=seed)
    X = mf.data.Gaussian(d, 1.0 / np.sqrt(d)).sample(n, data_seed)
    return mf.Objective(net, mf.Dataset(X, mf.ReluNorm(1.0)(X)), member=member)


def per_call(fn, min_time=0.2, rounds=5) -> float:
    """Best over ``rounds`` of the mean time of ``fn()`` over ≥ ``min_time`` seconds."""
    fn()
    t = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t, 1e-7)
    reps = max(1, int(min_time / one))
    best = np.inf
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t) / reps)
    return best


def eval_time(obj, rounds=5, min_time=0.2) -> float:
    out = np.empty_like(obj.network.theta)
    sc = obj.default_scales()
    th = obj.network.theta
    return per_call(lambda: obj(th, out, sc, 0), min_time, rounds)


def pairs(p) -> int:
    return p["n"] * 2 * p["m"]


def flops(p) -> float:
    return model_flops(p["n"], (p["m"], p["m"]), (p["d"], 1, 1))


# -- JAX --------------------------------------------------------------------------------------
def jax_step(obj):
    """A JAX jit(grad) of the same loss; returns (callable, max relative velocity error)."""
    try:
        import jax
    except ImportError:
        return None, "JAX is not installed (pip install -e '.[peers]')"
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    net = obj.network
    X = jnp.asarray(obj.data.X)
    y = jnp.asarray(obj.data.y)
    b1, b2 = net.blocks
    params = tuple(jnp.asarray(a) for a in (b1.u, b1.c, b1.v, b2.u, b2.c, b2.v))

    def loss(p):
        u1, c1, v1, u2, c2, v2 = p
        h = jnp.maximum(X @ u1.T + c1, 0.0) @ v1 / u1.shape[0]
        f = (jnp.maximum(h @ u2.T + c2, 0.0) @ v2 / u2.shape[0])[:, 0]
        return 0.5 * jnp.mean((f - y) ** 2)

    step = jax.jit(jax.value_and_grad(loss))
    val, grads = step(params)
    _, V = obj.velocity()
    ref = np.concatenate([-m * np.asarray(g).ravel() for g, m in
                          zip(grads, (b1.m,) * 3 + (b2.m,) * 3)])
    err = float(np.max(np.abs(ref - V)) / np.max(np.abs(V)))
    if abs(float(val) - obj.loss()) > 1e-12 * abs(obj.loss()) or err > 1e-10:
        raise RuntimeError(f"JAX and meanfield disagree (velocity error {err:.2e})")

    def run():
        v, g = step(params)
        jax.block_until_ready(g)
    return run, err


# -- parts ------------------------------------------------------------------------------------
def tiny_part(res):
    import numba

    threads = numba.get_num_threads()
    rows = []
    for name, p in (("tiny", TINY), ("w64", W64)):
        obj = rzg_objective(**p)
        row = {"name": name, **p}
        for t in (1, 2):
            numba.set_num_threads(min(t, threads))
            row[f"us_{t}t"] = 1e6 * eval_time(obj)
        numba.set_num_threads(threads)
        run, err = jax_step(obj)
        if run is None:
            row["jax"] = err
        else:
            row["jax_us"] = 1e6 * per_call(run)
            row["jax_velocity_rel_err"] = err
            row["ratio_jax_over_meanfield"] = row["jax_us"] / min(row["us_1t"], row["us_2t"])
        rows.append(row)
    res["tiny"] = rows


def crossover_part(res):
    """Serial against parallel kernels over sizes (widths [m, m], d = 8, N = 4m)."""
    import numba

    from meanfield import parallel as P

    rows = []
    for m in (8, 16, 32, 64, 128, 256, 512):
        p = dict(d=8, n=4 * m, m=m)
        obj = rzg_objective(**p)
        t = {}
        for sched, policy in (("serial", "never"), ("parallel", "always")):
            obj.schedule = P.Schedule(float("inf"), policy)
            t[sched] = eval_time(obj, rounds=3, min_time=0.1)
        rows.append({"m": m, "n": p["n"], "work": obj.work, "serial_us": 1e6 * t["serial"],
                     "parallel_us": 1e6 * t["parallel"]})
    res["crossover"] = {"threads": numba.get_num_threads(), "threshold": P.PARALLEL_MIN_WORK,
                        "rows": rows}


def reference_rate(reps=5):
    """(seconds per evaluation, pairs/s, GFLOP/s) of the reference problem."""
    obj = rzg_objective(**REF)
    sec = eval_time(obj, rounds=reps, min_time=0.3)
    return sec, pairs(REF) / sec, flops(REF) / sec / 1e9


def ensemble_part(res, members=256):
    import solvers

    objs = [rzg_objective(**W64, seed=i, member=i) for i in range(members)]
    data = objs[0].data
    import meanfield as mf

    objs = [mf.Objective(o.network, data, member=i) for i, o in enumerate(objs)]  # one data set
    ens = solvers.Ensemble(objs)
    assert ens.batched is not None
    y = ens.pack([o.network.theta for o in objs])
    out = np.empty_like(y)
    sc = np.concatenate([o.default_scales() for o in objs])
    sec = per_call(lambda: ens(y, out, sc, 0), 0.3, 5)
    ref_sec, ref_pairs, _ = reference_rate()
    rate = members * pairs(W64) / sec
    res["ensemble"] = {"members": members, **W64, "seconds_per_eval": sec, "pairs_per_s": rate,
                       "reference_pairs_per_s": ref_pairs,
                       "percent_of_reference": 100 * rate / ref_pairs}


def moderate_part(res, rounds=5):
    """Moderate sizes against the reference problem, interleaved: every round times the
    reference and each size (ReLU and erf) once, and the ratios are taken within the
    round (this machine's speed drifts by 20 % between minutes); the median round is
    reported with the range."""
    objs = {(i, act): rzg_objective(**p, activation=act)
            for i, p in enumerate(MODERATE + (REF,)) for act in ("relu", "erf")}
    for o in objs.values():
        eval_time(o, rounds=1, min_time=0.02)   # compiled and warm
    per_round = []
    for _ in range(rounds):
        sec = {k: eval_time(o, rounds=1, min_time=0.3) for k, o in objs.items()}
        per_round.append(sec)
    ref_i = len(MODERATE)
    ref_gf = [flops(REF) / r[(ref_i, "relu")] / 1e9 for r in per_round]
    rows = []
    for i, p in enumerate(MODERATE + (REF,)):
        pct = [100 * (flops(p) / r[(i, "relu")] / 1e9) / g for r, g in zip(per_round, ref_gf)]
        ratio = [r[(i, "erf")] / r[(i, "relu")] for r in per_round]
        k = int(np.argsort(pct)[len(pct) // 2])   # the median round of this size
        row = dict(p)
        row.update(relu_s=per_round[k][(i, "relu")], erf_s=per_round[k][(i, "erf")],
                   gflops=flops(p) / per_round[k][(i, "relu")] / 1e9,
                   percent_of_reference=float(np.median(pct)),
                   percent_range=[float(min(pct)), float(max(pct))],
                   erf_over_relu=float(np.median(ratio)),
                   erf_over_relu_range=[float(min(ratio)), float(max(ratio))])
        row["relu_ns_per_pair"] = 1e9 * row["relu_s"] / pairs(p)
        row["erf_ns_per_pair"] = 1e9 * row["erf_s"] / pairs(p)
        rows.append(row)
    res["moderate"] = {"reference_gflops": float(np.median(ref_gf)), "rounds": rounds,
                       "rows": rows}


BUSY = "import time\nt = time.time()\nwhile time.time() - t < 600: pass\n"


def busy_child(args):
    """In a fresh process: times with and without a busy-loop process beside."""
    import numba

    out = {"layer_requested": os.environ.get("NUMBA_THREADING_LAYER", "default")}
    objs = {"reference": rzg_objective(**REF), "tiny": rzg_objective(**TINY)}
    for o in objs.values():
        eval_time(o, rounds=1, min_time=0.05)
    out["layer"] = numba.threading_layer()
    for name, o in objs.items():
        quiet = eval_time(o, rounds=3, min_time=0.3)
        busy = subprocess.Popen([sys.executable, "-c", BUSY])
        try:
            time.sleep(0.3)
            loaded = eval_time(o, rounds=3, min_time=0.3)
        finally:
            busy.kill()
            busy.wait()
        out[name] = {"quiet_s": quiet, "busy_s": loaded, "slowdown": loaded / quiet}
    print(json.dumps(out))


# "omp" alone runs with the spin count meanfield sets (GOMP_SPINCOUNT=10000);
# GOMP_SPINCOUNT=300000 is libgomp's own default, what the omp layer did before
LAYERS = [("workqueue", {}), ("omp", {}), ("omp", {"GOMP_SPINCOUNT": "300000"}),
          ("omp", {"OMP_WAIT_POLICY": "PASSIVE"}), ("tbb", {})]


def busy_part(res):
    rows = []
    for layer, extra in LAYERS:
        # this process imported meanfield, which set GOMP_SPINCOUNT: each row sets its own
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        env.update(NUMBA_THREADING_LAYER=layer, **extra)
        # pip's tbb package puts libtbb in <prefix>/lib, outside the loader's path
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (os.path.join(sys.prefix, "lib"), os.environ.get("LD_LIBRARY_PATH")) if p)
        p = subprocess.run([sys.executable, "-m", "benchmarks", "small", "--busy-child"],
                           capture_output=True, text=True, env=env)
        if p.returncode != 0:
            rows.append({"layer": layer, "settings": extra,
                         "skipped": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "failed"})
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        r["settings"] = extra
        rows.append(r)
    res["busy"] = rows


def run(args) -> dict:
    import numba

    if args.busy_child:
        busy_child(args)
        return {}
    res = {"threads": numba.get_num_threads(), "threading_layer_default": None}
    parts = args.parts.split(",")
    if "tiny" in parts:
        tiny_part(res)
    res["threading_layer_default"] = numba.threading_layer() if "tiny" in parts else None
    if "crossover" in parts:
        crossover_part(res)
    if "ensemble" in parts:
        ensemble_part(res)
    if "moderate" in parts:
        moderate_part(res)
    if "busy" in parts:
        busy_part(res)
    return res


def report(res: dict) -> str:
    lines = []
    if "tiny" in res:
        lines.append(f"per-evaluation time (loss + every velocity), [RZG] k = 1 ReLU, threading "
                     f"layer {res['threading_layer_default']}:")
        for r in res["tiny"]:
            jx = (f"JAX jit(grad) {r['jax_us']:.1f} us (velocity error {r['jax_velocity_rel_err']:.1e}), "
                  f"JAX / meanfield = {r['ratio_jax_over_meanfield']:.2f}" if "jax_us" in r
                  else f"JAX: skipped ({r['jax']})")
            lines.append(f"  d={r['d']}, widths [{r['m']}, {r['m']}], N={r['n']}: "
                         f"{r['us_1t']:.1f} us (1 thread), {r['us_2t']:.1f} us (2 threads); {jx}")
    if "crossover" in res:
        c = res["crossover"]
        lines.append(f"serial against parallel kernels, {c['threads']} threads "
                     f"(threshold in use: work >= {c['threshold']}):")
        for r in c["rows"]:
            lines.append(f"  m={r['m']:4d} N={r['n']:5d} work={r['work']:.3g}: serial {r['serial_us']:.1f} us, "
                         f"parallel {r['parallel_us']:.1f} us")
    if "ensemble" in res:
        e = res["ensemble"]
        lines.append(f"ensemble: {e['members']} networks, widths [{e['m']}, {e['m']}], d={e['d']}, "
                     f"N={e['n']}: {1e3 * e['seconds_per_eval']:.2f} ms per evaluation, "
                     f"{e['pairs_per_s'] / 1e9:.2f} G pairs/s = {e['percent_of_reference']:.1f} % of the "
                     f"reference problem's {e['reference_pairs_per_s'] / 1e9:.2f} G pairs/s")
    if "moderate" in res:
        m = res["moderate"]
        lines.append(f"moderate sizes (reference problem {m['reference_gflops']:.1f} GFLOP/s, median of "
                     f"{m.get('rounds', 1)} interleaved rounds; ratios within each round, median [range]):")
        for r in m["rows"]:
            pr = r.get("percent_range", [r["percent_of_reference"]] * 2)
            er = r.get("erf_over_relu_range", [r["erf_over_relu"]] * 2)
            lines.append(f"  d={r['d']}, widths [{r['m']}, {r['m']}], N={r['n']}: {r['gflops']:.1f} GFLOP/s "
                         f"= {r['percent_of_reference']:.1f} % [{pr[0]:.1f}, {pr[1]:.1f}] of the reference; "
                         f"ReLU {r['relu_ns_per_pair']:.2f} ns/pair, erf {r['erf_ns_per_pair']:.2f} ns/pair, "
                         f"erf/ReLU = {r['erf_over_relu']:.2f} [{er[0]:.2f}, {er[1]:.2f}]")
    if "busy" in res:
        lines.append("slowdown with one busy-loop process beside (2 cores):")
        for r in res["busy"]:
            tag = r.get("layer", r.get("layer_requested")) + (f" {r['settings']}" if r["settings"] else "")
            if "skipped" in r:
                lines.append(f"  {tag}: skipped ({r['skipped']})")
                continue
            lines.append(f"  {tag}: reference step {r['reference']['slowdown']:.2f}x "
                         f"({1e3 * r['reference']['quiet_s']:.1f} -> {1e3 * r['reference']['busy_s']:.1f} ms), "
                         f"tiny {r['tiny']['slowdown']:.2f}x ({1e6 * r['tiny']['quiet_s']:.1f} -> "
                         f"{1e6 * r['tiny']['busy_s']:.1f} us)")
    return "\n".join(lines)
