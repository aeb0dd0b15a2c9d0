"""``python -m benchmarks perf``: meanfield's Euler step over a grid of sizes, and against
the same step written in NumPy, JAX and PyTorch (see :mod:`benchmarks.peers`).

All from one run, on this machine:

- **grid**: L ∈ {1, 2, 3} blocks (``meanfield.stack``, ReLU, bottlenecks of width 1,
  biases), d ∈ {4, 16, 64}, N and m from 2⁸ to 2¹⁶ in factors of 4 with N·m ≤ 2²⁶,
  float64 and float32: seconds per step (best of rounds of repeated steps), sample·
  particle pairs per second (N Σ_l m_l), model GFLOP/s (FLOPs = N Σ_l m_l (4k_{l−1} +
  6k_l + 2k_{l−1}[l > 1])) and that rate as a percentage of the float64 matrix-multiply
  rate measured in the same run; the log–log slope of the step time against N·m (fixed
  dtype, L, d) at N·m ≥ 2²⁰, and a figure of the time against N·m·d;
- **threads**: the 1 → 2 thread speed-up at a few sizes;
- **compile**: the first call in a fresh process with an empty Numba cache, and with
  the cache filled;
- **memory**: peak memory of one step above the inputs, for N·m from 2²⁴ to 2³⁰ (a
  fresh process each, :mod:`benchmarks.memory`);
- **peers**: NumPy (always), JAX ``jit`` and PyTorch autograd (when installed; skipped
  with a note otherwise) on d = 16, L ∈ {1, 2, 3}, N = m ∈ {2⁸, 2¹⁰, 2¹²} and the
  reference problem (L = 2, d = 16, N = 8192, m = 4096), float64; each peer's velocity is
  checked against meanfield's to 1e-10 first; ratio = peer time / meanfield time;
- **peer memory**: peak memory of one step of each peer at N = m = 2¹², 2¹³, 2¹⁴ (fresh
  processes), up to the largest size whose predicted footprint fits the budget.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from .small import per_call
from .step import matmul_gflops

REFERENCE = dict(L=2, d=16, n=8192, m=4096)
DT = 1e-3


def problem(L, d, n, m, dtype="float64", seed=0):
    import meanfield as mf

    net = mf.stack(d, [m] * L, [1] * (L - 1), seed=seed, dtype=np.dtype(dtype))
    X = mf.data.Gaussian(d, 1.0 / np.sqrt(d)).sample(n, seed + 1).astype(dtype)
    return mf.Objective(net, mf.Dataset(X, mf.ReluNorm(1.0)(X).astype(dtype)))


def flops(L, d, n, m) -> float:
    dims = [d] + [1] * (L - 1) + [1]
    return float(n * sum(m * (4 * dims[l] + 6 * dims[l + 1] + (2 * dims[l] if l > 0 else 0))
                         for l in range(L)))


def meanfield_step(obj):
    """One Euler step of meanfield in place (what ``solvers.iterate`` does per step)."""
    theta = obj.network.theta.copy()
    out = np.empty_like(theta)
    sc = obj.default_scales()

    def step():
        obj(theta, out, sc, 0)
        theta[:] += DT * out
    return step


def _min_time(n, m):
    return 0.05 if n * m <= 2 ** 16 else 0.2


def grid_sizes(quick=False):
    exps = [8, 12] if quick else [8, 10, 12, 14, 16]
    cap = 2 ** 20 if quick else 2 ** 26
    return [(2 ** a, 2 ** b) for a in exps for b in exps if 2 ** (a + b) <= cap]


def grid_part(res, quick, bar):
    rows = []
    Ls, ds = ([1, 2], [4, 16]) if quick else ([1, 2, 3], [4, 16, 64])
    for dtype in ("float64", "float32"):
        for L in Ls:
            for d in ds:
                for n, m in grid_sizes(quick):
                    bar.set_description(f"grid {dtype} L={L} d={d} N={n} m={m}")
                    obj = problem(L, d, n, m, dtype)
                    t = per_call(meanfield_step(obj), _min_time(n, m), 3)
                    f = flops(L, d, n, m)
                    rows.append(dict(dtype=dtype, L=L, d=d, n=n, m=m, seconds=t,
                                     pairs_per_s=n * L * m / t, gflops=f / t / 1e9,
                                     pct_matmul=100 * f / t / 1e9 / res["matmul_gflops"]))
                    bar.update(1)
    res["grid"] = rows
    # the log-log slope of the step time against N·m at fixed (dtype, L, d), large sizes
    slopes = {}
    for dtype in ("float64", "float32"):
        for L in Ls:
            for d in ds:
                pts = [(r["n"] * r["m"], r["seconds"]) for r in rows if r["dtype"] == dtype
                       and r["L"] == L and r["d"] == d and r["n"] * r["m"] >= 2 ** 20]
                if len(pts) >= 3:
                    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
                    slopes[f"{dtype} L={L} d={d}"] = float(np.polyfit(x, y, 1)[0])
    res["large_size_slope"] = slopes


def threads_part(res, quick, bar):
    import numba

    rows = []
    sizes = [(2, 16, 256, 256), (2, 16, 4096, 1024)] + ([] if quick else [(2, 16, 8192, 4096),
                                                                         (1, 64, 16384, 4096)])
    nt = numba.get_num_threads()
    for L, d, n, m in sizes:
        bar.set_description(f"threads L={L} d={d} N={n} m={m}")
        obj = problem(L, d, n, m)
        st = meanfield_step(obj)
        times = {}
        for k in (1, nt):
            numba.set_num_threads(k)
            times[k] = per_call(st, _min_time(n, m), 3)
        numba.set_num_threads(nt)
        rows.append(dict(L=L, d=d, n=n, m=m, t1=times[1], tn=times[nt], threads=nt,
                         speedup=times[1] / times[nt]))
        bar.update(1)
    res["threads"] = rows


_COMPILE = """
import time, numpy as np
t0 = time.perf_counter()
from benchmarks.perf import problem, meanfield_step
obj = problem(2, 4, 64, 32)
t1 = time.perf_counter()
meanfield_step(obj)()
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def compile_part(res, bar):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=root)
        out = {}
        for tag in ("empty cache", "filled cache"):
            bar.set_description(f"compile ({tag})")
            p = subprocess.run([sys.executable, "-c", _COMPILE], env=env, capture_output=True,
                               text=True, cwd=root, timeout=1800)
            if p.returncode:
                raise RuntimeError(p.stderr.strip().splitlines()[-1])
            imp, first = map(float, p.stdout.split())
            out[tag] = dict(import_and_setup=imp, first_step=first)
            bar.update(1)
    res["compile"] = out


def _subprocess_json(args, root) -> dict:
    p = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=root,
                       env=dict(os.environ, PYTHONPATH=root), timeout=3600)
    if p.returncode:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def memory_part(res, quick, bar):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sizes = [(4096, 4096), (16384, 4096)] if quick else \
        [(4096, 4096), (16384, 4096), (16384, 16384), (65536, 16384)]
    rows = []
    for n, m in sizes:
        bar.set_description(f"memory N={n} m={m}")
        r = _subprocess_json(["-m", "benchmarks", "memory", "--n", str(n), "--m", str(m), "--d", "16"], root)
        r.update(n=n, m=m)
        rows.append(r)
        bar.update(1)
    res["memory"] = rows


def peers_part(res, quick, bar):
    from . import peers

    sizes = [(L, 16, n, n) for L in (1, 2, 3) for n in ([256, 1024] if quick else [256, 1024, 4096])]
    sizes.append((REFERENCE["L"], REFERENCE["d"], REFERENCE["n"], REFERENCE["m"]))
    rows, notes = [], {}
    for L, d, n, m in sizes:
        obj = problem(L, d, n, m)
        bar.set_description(f"peers L={L} N={n} m={m}: meanfield")
        row = dict(L=L, d=d, n=n, m=m, meanfield=per_call(meanfield_step(obj), _min_time(n, m), 3))
        for name, make in peers.PEERS.items():
            bar.set_description(f"peers L={L} N={n} m={m}: {name}")
            if name in notes:
                continue
            step, vel = make(obj, DT)
            if step is None:
                notes[name] = vel
                continue
            row[f"{name}_velocity_error"] = peers.check(name, vel, obj, 1e-10)
            row[name] = per_call(step, _min_time(n, m), 3)
            row[f"{name}_ratio"] = row[name] / row["meanfield"]
        rows.append(row)
        bar.update(1)
    res["peers"] = rows
    res["peer_notes"] = notes


_PEER_MEM = """
import gc, json, sys
from benchmarks.memory import _status
from benchmarks.perf import problem, meanfield_step, DT
from benchmarks import peers
name, n = sys.argv[1], int(sys.argv[2])
small = problem(2, 16, 64, 32)
if name == "meanfield":
    meanfield_step(small)()
else:
    st, _ = peers.PEERS[name](small, DT); st()
del small; gc.collect()
base = _status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")
obj = problem(2, 16, n, n)
inputs = (obj.data.X.nbytes + obj.data.y.nbytes + obj.network.theta.nbytes) / 2 ** 20
st = meanfield_step(obj) if name == "meanfield" else peers.PEERS[name](obj, DT)[0]
st()
print(json.dumps(dict(peak_mb=_status("VmHWM") - base, inputs_mb=inputs)))
"""


def peer_memory_part(res, quick, bar, budget_mb=8192):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sizes = [4096, 8192] if quick else [4096, 8192, 16384]
    rows = {}
    for name in ("meanfield", "numpy", "jax", "pytorch"):
        if name in res.get("peer_notes", {}):
            continue
        rows[name] = []
        for n in sizes:
            prev = rows[name][-1]["peak_mb"] if rows[name] else None
            if prev is not None and prev * 4 > budget_mb:   # N·m grows 4x per size
                rows[name].append(dict(n=n, m=n, skipped=f"predicted {4 * prev:.0f} MB > budget "
                                       f"{budget_mb} MB"))
                continue
            bar.set_description(f"peer memory {name} N=m={n}")
            r = _subprocess_json(["-c", _PEER_MEM, name, str(n)], root)
            r.update(n=n, m=n)
            rows[name].append(r)
        bar.update(1)
    res["peer_memory"] = rows
    res["peer_memory_budget_mb"] = budget_mb


def run(args) -> dict:
    import numba
    from tqdm.auto import tqdm

    from . import peers

    quick = args.quick
    res = {"threads_available": numba.get_num_threads(), "quick": quick,
           "threading_layer": None, "matmul_gflops": matmul_gflops()}
    n_grid = 2 * (2 if quick else 3) ** 2 * len(grid_sizes(quick)) if quick else \
        2 * 3 * 3 * len(grid_sizes(quick))
    total = n_grid + (2 if quick else 4) + 2 + (2 if quick else 4) + (7 if quick else 13) + 4
    t0 = time.perf_counter()
    with tqdm(total=total, file=sys.stderr, dynamic_ncols=True, disable=args.quiet) as bar:
        parts = args.parts.split(",")
        if "grid" in parts:
            grid_part(res, quick, bar)
        if "threads" in parts:
            threads_part(res, quick, bar)
        if "compile" in parts:
            compile_part(res, bar)
        if "memory" in parts:
            memory_part(res, quick, bar)
        if "peers" in parts:
            peers_part(res, quick, bar)
            peer_memory_part(res, quick, bar)
    res["matmul_gflops_after"] = matmul_gflops()
    res["seconds"] = time.perf_counter() - t0
    try:
        res["threading_layer"] = numba.threading_layer()
    except ValueError:
        pass
    res["versions"] = _versions(peers)
    return res


def _versions(peers) -> dict:
    import numba

    v = {"numpy": np.__version__, "numba": numba.__version__}
    for mod in ("jax", "torch"):
        try:
            v[mod] = __import__(mod).__version__
        except ImportError:
            pass
    return v


# ----------------------------------------------------------------------------------------
def report(res) -> str:
    """Markdown tables of a perf run."""
    out = [f"Float64 matmul rate of this machine in the same run: {res['matmul_gflops']:.1f} GFLOP/s "
           f"before, {res['matmul_gflops_after']:.1f} after; {res['threads_available']} Numba threads "
           f"({res.get('threading_layer')}); versions: "
           + ", ".join(f"{k} {v}" for k, v in res["versions"].items()) + f"; {res['seconds']:.0f} s."]
    if "peers" in res:
        out += ["", "### Against the peers (float64, d = 16, one Euler step, best of 3 rounds)", "",
                "| L | N | m | meanfield | NumPy | JAX | PyTorch |", "|---|---|---|---|---|---|---|"]
        for r in res["peers"]:
            cells = []
            for name in ("numpy", "jax", "pytorch"):
                cells.append(f"{_t(r[name])} ({r[name + '_ratio']:.2f}×)" if name in r else "—")
            out.append(f"| {r['L']} | {r['n']} | {r['m']} | {_t(r['meanfield'])} | " + " | ".join(cells) + " |")
        out.append("")
        out.append("Each cell: time per step (peer time / meanfield time). Every peer's velocity "
                   "agreed with meanfield's to ≤ 1e-10 before it was timed "
                   f"(largest error seen: {max(r.get(k, 0.0) for r in res['peers'] for k in r if k.endswith('_velocity_error')):.1e}).")
        for name, note in res.get("peer_notes", {}).items():
            out.append(f"- {name}: skipped ({note})")
    if "peer_memory" in res:
        out += ["", f"### Peak memory of one step above the process before allocation (L = 2, d = 16, "
                f"N = m; budget {res['peer_memory_budget_mb']} MB)", "",
                "| N = m | " + " | ".join(res["peer_memory"]) + " |",
                "|---|" + "---|" * len(res["peer_memory"])]
        sizes = sorted({r["n"] for rows in res["peer_memory"].values() for r in rows})
        for n in sizes:
            cells = []
            for rows in res["peer_memory"].values():
                r = next((x for x in rows if x["n"] == n), None)
                cells.append("—" if r is None else r.get("skipped", r.get("error")) if "peak_mb" not in r
                             else f"{r['peak_mb']:.0f} MB")
            out.append(f"| {n} | " + " | ".join(cells) + " |")
    if "grid" in res:
        out += ["", "### meanfield over the grid (model GFLOP/s and % of the float64 matmul rate)", "",
                "| dtype | L | d | N | m | time/step | pairs/s | GFLOP/s | % matmul |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in res["grid"]:
            out.append(f"| {r['dtype']} | {r['L']} | {r['d']} | {r['n']} | {r['m']} | {_t(r['seconds'])} | "
                       f"{r['pairs_per_s']:.3g} | {r['gflops']:.1f} | {r['pct_matmul']:.1f} % |")
        out += ["", "Log–log slope of the step time against N·m at fixed dtype, L and d, over N·m ≥ 2²⁰ "
                "(1 = linear): "
                + ", ".join(f"{k}: {v:.2f}" for k, v in res["large_size_slope"].items())]
    if "threads" in res:
        out += ["", "### 1 → 2 threads", "", "| L | d | N | m | 1 thread | 2 threads | speed-up |",
                "|---|---|---|---|---|---|---|"]
        for r in res["threads"]:
            out.append(f"| {r['L']} | {r['d']} | {r['n']} | {r['m']} | {_t(r['t1'])} | {_t(r['tn'])} | "
                       f"{r['speedup']:.2f}× |")
    if "compile" in res:
        c = res["compile"]
        out += ["", f"First step in a fresh process: {c['empty cache']['first_step']:.1f} s with an empty "
                f"Numba cache (compilation), {c['filled cache']['first_step']:.2f} s with the cache filled."]
    if "memory" in res:
        out += ["", "### meanfield peak memory of one step (L = 2, d = 16)", "",
                "| N | m | N·m | peak | inputs | extra |", "|---|---|---|---|---|---|"]
        for r in res["memory"]:
            if "peak_mb" in r:
                out.append(f"| {r['n']} | {r['m']} | {r['n'] * r['m']:.2e} | {r['peak_mb']:.1f} MB | "
                           f"{r['inputs_mb']:.1f} MB | {r['extra_mb']:.1f} MB |")
            else:
                out.append(f"| {r['n']} | {r['m']} | | {r['error']} | | |")
    return "\n".join(out)


def _t(s) -> str:
    return f"{s * 1e6:.0f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def figure(res, path) -> str:
    from meanfield.plots import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for dtype, ax in zip(("float64", "float32"), axes):
        for L, c in zip((1, 2, 3), ("tab:blue", "tab:orange", "tab:green")):
            rows = [r for r in res["grid"] if r["dtype"] == dtype and r["L"] == L]
            if not rows:
                continue
            x = np.array([r["n"] * r["m"] * r["d"] for r in rows], dtype=float)
            y = np.array([r["seconds"] for r in rows])
            ax.loglog(x, y, "o", color=c, ms=4, alpha=0.8, label=f"L = {L}")
        xs = np.geomspace(2 ** 20, 2 ** 33, 10)
        ref = [r for r in res["grid"] if r["dtype"] == dtype and r["n"] * r["m"] >= 2 ** 20]
        if ref:
            k = np.median([r["seconds"] / (r["n"] * r["m"] * r["d"]) for r in ref])
            ax.loglog(xs, k * xs, "k--", lw=1, label="linear in N·m·d")
        ax.set_xlabel("N · m · d")
        ax.set_ylabel("seconds per Euler step")
        ax.set_title(f"meanfield step time, {dtype}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
