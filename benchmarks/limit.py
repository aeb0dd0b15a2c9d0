"""The papers' separations at the exact limit (m → ∞ and N → ∞): ``python -m benchmarks limit``.

Every learner here is the limit flow of :mod:`meanfield.limit` (docs/math.md §8), trained on
the population: no width, no sample, no seed.  Each result comes with the same flow on
rules with half the nodes, and the difference of the two is printed as its error.

- [RZG]: the 2-layer network against the 3-layer network (bottleneck k = 1) on
  ReLU(1 − ‖x‖), ‖x‖ ~ U[0, 2], d = 4 … 64, Euler steps of 0.5 to t = 2500 (the finite
  benchmark's schedule), with the presets' initial laws; the 3-layer network also from an
  initial law whose first block has v of mean 0.5 (its symmetric law is a saddle of the
  limit, docs/math.md §8.1).  The Eldan–Shamir law is not run: ReLU features have no
  population loss under it.
- [SL]: the depth-2 learner (frozen erf layer, u ~ N(0, I/4), b ~ N(0, 1/4), clipped output,
  trained output weights) against the depth-1 learner (ReLU, every weight and an output
  bias trained) on 1{‖x‖ ≤ λ} under D′_d, d ∈ {5, 10, 20, 40}, λ ∈ {1, 1.25, 1.5, 1.75}.
  Depth 2 runs 5000 steps of 1/λ_max of its limit kernel (the finite grid's rule); depth 1
  5000 steps of the largest of 0.5, 0.1, 0.02 at which it stays finite.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np

FULL = dict(rzg_ds=[4, 8, 16, 32, 64], rzg_dt=0.5, rzg_t=2500.0, rzg_nodes=10, rzg_norm=32,
            sl_ds=[5, 10, 20, 40], sl_lams=[1.0, 1.25, 1.5, 1.75], sl_steps=5000,
            sl2_nodes=16, sl1_nodes=8, sl_norm=32, sl1_dts=(0.5, 0.1, 0.02))
QUICK = dict(rzg_ds=[4], rzg_dt=0.5, rzg_t=50.0, rzg_nodes=4, rzg_norm=12,
             sl_ds=[5], sl_lams=[1.5], sl_steps=200, sl2_nodes=6, sl1_nodes=4, sl_norm=12,
             sl1_dts=(0.5, 0.1, 0.02))


def _flow(lim, dt, steps, record_every=None):
    """(final state, [(t, MSE)], finite?) of ``steps`` Euler steps of ``lim``."""
    import solvers

    curve = []
    every = record_every or max(1, steps // 50)
    try:
        st = solvers.solve(lim, lim.y0, method="euler", dt=dt, stop=solvers.Stop(steps=steps),
                           hooks=[lambda s: curve.append((s.t, 2 * lim.loss(s.y)))
                                  if s.step % every == 0 else None])
    except solvers.DivergenceError:
        return None, curve, False
    return st.y, curve, True


def _pair(make, dt, steps):
    """MSE at the end of the flow on the fine rules and its error against half the nodes,
    the first time MSE ≤ 1e-3 and the curve (or None when the flow diverged)."""
    fine, coarse = make(1), make(2)
    y, curve, ok = _flow(fine, dt, steps)
    if not ok:
        return None
    yc, _, okc = _flow(coarse, dt, steps)
    mse = 2 * fine.loss(y)
    err = abs(mse - 2 * coarse.loss(yc)) if okc else math.nan
    reach = next((t for t, v in curve if v <= 1e-3), None)
    return {"mse": mse, "error": err, "t_1e-3": reach, "nodes": _nodes(fine),
            "curve": [[float(t), float(v)] for t, v in curve]}


def _nodes(lim):
    return int(lim.n) if hasattr(lim, "n") else int(lim.n1 + lim.n2)


# --------------------------------------------------------------------------------------
def rzg(p, bar):
    import meanfield as mf
    from meanfield import config as C

    rows = []
    steps = int(round(p["rzg_t"] / p["rzg_dt"]))
    learners = (("2-layer", "relu-norm-2layer", []),
                ("3-layer", "relu-norm-3layer", []),
                ("3-layer, v of mean 0.5", "relu-norm-3layer",
                 ['model.init."1.v"={law="gaussian", mean=0.5, std=1.0}']))
    for d in p["rzg_ds"]:
        for name, preset, extra in learners:
            cfg = C.load_config(mf.presets.text(preset), [f"model.d={d}", *extra])

            def make(div, cfg=cfg):
                return C.make_limit(cfg, nodes=max(2, p["rzg_nodes"] // div),
                                    norm_nodes=max(4, p["rzg_norm"] // div))
            t0 = time.perf_counter()
            r = _pair(make, p["rzg_dt"], steps)
            rows.append({"d": d, "model": name, "seconds": time.perf_counter() - t0,
                         **(r or {"mse": math.nan, "error": math.nan, "diverged": True})})
            bar.update(1)
    # the constant predictor: Var g(‖x‖) for g = ReLU(1 − ρ), ρ ~ U[0, 2] (E g = 1/4,
    # E g² = 1/6)
    return {"params": {k: v for k, v in p.items() if k.startswith("rzg")}, "rows": rows,
            "constant": 1 / 6 - 1 / 16}


# --------------------------------------------------------------------------------------
def _kernel_top(lim) -> float:
    """λ_max of the depth-2 limit's linear flow v̇ = −A0 diag(w_ρ) A0ᵀ diag(w) v (its
    frozen features' tables), by power iteration on the symmetrised operator."""
    A0 = lim._averages_at(*lim.split(lim.y0)[:2])[0]
    s = np.sqrt(lim.w)
    B = (s[:, None] * A0) * np.sqrt(lim.wrho)[None, :]
    x = np.ones(B.shape[0])
    lam = 0.0
    for _ in range(500):
        y = B @ (B.T @ x)
        lam_new = float(np.linalg.norm(y) / np.linalg.norm(x))
        x = y / np.linalg.norm(y)
        if abs(lam_new - lam) <= 1e-12 * lam_new:
            break
        lam = lam_new
    return lam_new


def sl(p, bar):
    import meanfield as mf
    from meanfield import init as I
    from meanfield.limit import TwoLayerLimit

    rows = []
    for d in p["sl_ds"]:
        law = mf.data.SafranLeeDPrime(d)
        for lam in p["sl_lams"]:
            target = mf.BallIndicator(lam)
            P = float(law.norm_cdf(lam))

            def depth2(div):
                # only v moves and its velocity does not depend on v: its law is replaced by
                # its mean (0) exactly, and the rule is one of (‖u‖, b)
                n = max(2, p["sl2_nodes"] // div)
                return TwoLayerLimit(d, law, target, nodes=n, norm_nodes=max(4, p["sl_norm"] // div),
                                     activation="erf", output="clip01", train=("v",),
                                     u_init=I.Gaussian(0.5), c_init=I.Gaussian(0.5),
                                     v_init=I.Constant(0.0))

            def depth1(div):
                return TwoLayerLimit(d, law, target, nodes=max(2, p["sl1_nodes"] // div),
                                     norm_nodes=max(4, p["sl_norm"] // div), out_bias=True,
                                     u_init=I.Gaussian(0.5), c_init=I.Gaussian(0.5),
                                     v_init=I.Gaussian(1.0))
            t0 = time.perf_counter()
            dt2 = 1.0 / _kernel_top(depth2(1))
            r2 = _pair(depth2, dt2, p["sl_steps"])
            r2.update(dt=dt2)
            r1, dt1 = None, None
            for dt in p["sl1_dts"]:
                r1 = _pair(depth1, dt, p["sl_steps"])
                if r1 is not None and np.isfinite(r1["mse"]):
                    dt1 = dt
                    break
            rows.append({"d": d, "lam": lam, "P": P, "constant": P * (1 - P),
                         "depth2": r2, "depth1": r1 if dt1 is not None else None,
                         "dt1": dt1, "seconds": time.perf_counter() - t0})
            bar.update(1)
    return {"params": {k: v for k, v in p.items() if k.startswith("sl")}, "rows": rows}


# --------------------------------------------------------------------------------------
def _fmt(x, err=None):
    if x is None or not np.isfinite(x):
        return "diverged"
    return f"{x:.3e}" + (f" ± {err:.0e}" if err is not None and np.isfinite(err) else "")


def report(res) -> str:
    out = []
    if "rzg" in res:
        r = res["rzg"]
        pr = r["params"]
        out += [f"**[RZG] at the limit** (‖x‖ ~ U[0, 2], Euler dt = {pr['rzg_dt']} to t = "
                f"{pr['rzg_t']:g}; rules of {pr['rzg_nodes']} nodes per coordinate and "
                f"{pr['rzg_norm']} per norm piece; ± the difference to half the nodes). Test MSE = "
                f"E(f − g)² over the data law; the constant predictor's is {r['constant']:.3e}.", "",
                "| d | 2-layer | 3-layer (preset laws) | 3-layer, v of mean 0.5 | t(≤1e-3) 2-layer | 3-layer, v of mean 0.5 |",
                "|---|---|---|---|---|---|"]
        for d in pr["rzg_ds"]:
            by = {x["model"]: x for x in r["rows"] if x["d"] == d}
            a, b, c = by["2-layer"], by["3-layer"], by["3-layer, v of mean 0.5"]
            out.append(f"| {d} | {_fmt(a['mse'], a['error'])} | {_fmt(b['mse'], b['error'])} | "
                       f"{_fmt(c['mse'], c['error'])} | {a.get('t_1e-3') or 'not reached'} | "
                       f"{c.get('t_1e-3') or 'not reached'} |")
        out.append("")
    if "sl" in res:
        s = res["sl"]
        pr = s["params"]
        out += [f"**[SL] at the limit** (D′_d; depth 2: frozen erf layer, {pr['sl2_nodes']} × "
                f"{2 * pr['sl2_nodes']} nodes in (‖u‖, b), {pr['sl_steps']} steps of 1/λ_max of its "
                f"limit kernel; depth 1: ReLU, every weight and an output bias, "
                f"{pr['sl1_nodes']} × {2 * pr['sl1_nodes']} × {pr['sl1_nodes']} nodes, "
                f"{pr['sl_steps']} steps of the largest stable dt of {', '.join(map(str, pr['sl1_dts']))}). "
                "Test MSE over the data law, ± the difference to half the nodes.", "",
                "| d | λ | P(‖x‖ ≤ λ) | constant | depth 2 | depth 1 | winner |",
                "|---|---|---|---|---|---|---|"]
        for x in s["rows"]:
            m2 = x["depth2"]["mse"]
            m1 = x["depth1"]["mse"] if x["depth1"] else math.nan
            e = max(x["depth2"]["error"], x["depth1"]["error"] if x["depth1"] else 0.0)
            if not np.isfinite(m1) or m2 < m1 - max(e, 1e-9):
                win = "depth 2"
            elif m1 < m2 - max(e, 1e-9):
                win = "depth 1"
            else:
                win = "tie (within the error)"
            dt1 = "" if x["dt1"] is None else f" (dt {x['dt1']:g})"
            e1 = x["depth1"]["error"] if x["depth1"] else None
            out.append(f"| {x['d']} | {x['lam']:g} | {x['P']:.2f} | {x['constant']:.3f} | "
                       f"{_fmt(m2, x['depth2']['error'])} | {_fmt(m1, e1)}{dt1} | {win} |")
        out.append("")
    out.append(f"One run: {res['seconds']:.0f} s on this machine.")
    return "\n".join(out)


def run(args) -> dict:
    from tqdm.auto import tqdm

    p = QUICK if args.quick else FULL
    parts = args.parts.split(",")
    os.makedirs(args.out, exist_ok=True)
    total = (3 * len(p["rzg_ds"]) if "rzg" in parts else 0) + \
        (len(p["sl_ds"]) * len(p["sl_lams"]) if "sl" in parts else 0)
    res = {"quick": args.quick}
    t0 = time.perf_counter()
    with tqdm(total=total, file=sys.stderr, dynamic_ncols=True, disable=args.quiet) as bar:
        if "rzg" in parts:
            res["rzg"] = rzg(p, bar)
        if "sl" in parts:
            res["sl"] = sl(p, bar)
    res["seconds"] = time.perf_counter() - t0
    with open(os.path.join(args.out, "limit.json"), "w") as f:   # compact: it holds the curves
        json.dump(res, f, separators=(",", ":"), default=float)
        f.write("\n")
    with open(os.path.join(args.out, "limit.md"), "w") as f:
        f.write(report(res) + "\n")
    return res
