"""``python -m benchmarks science [rzg,sl,gap] [--quick]``: the depth separations of the
two papers the toolkit is built on, and the discretization law, reproduced.

Each part writes its HDF5 run files (not committed), PNG figures, a Markdown table and a
JSON summary under ``--out`` (default ``benchmarks/results/``).  ``--quick`` runs a
reduced version of every part (a smoke test of the direction of each result, part of
the test suite).
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

# --------------------------------------------------------------------------------------
# [RZG]: 3 layers against 2 on ReLU(1 - |x|)
# --------------------------------------------------------------------------------------
RZG_FULL = dict(ds=[4, 8, 16, 32, 64], m=512, n_train=2048, n_test=2048, dt=0.5, t_end=2000.0,
                stage1=0.5, radius=4.0, series_every=20)
RZG_QUICK = dict(ds=[4, 16], m=128, n_train=512, n_test=512, dt=0.5, t_end=300.0,
                 stage1=0.5, radius=4.0, series_every=10)
MSE_GOAL = 1e-3


def rzg_laws(d):
    """The two input laws of the [RZG] comparison: ‖x‖ ~ U[0, 2] with a uniform direction,
    and the Eldan–Shamir φ² law rescaled so that the median norm is 1."""
    from scipy import stats

    import meanfield as mf

    es = mf.data.EldanShamir(d)
    med = float(es._tab.ppf(np.array([0.5]))[0] / es._c)
    return {"uniform-norm": mf.data.Radial(d, stats.uniform(0.0, 2.0)),
            "eldan-shamir": mf.data.Radial(d, lambda n, rng: es.sample_norms(n, rng) / med)}


def rzg_models(d, m, p):
    """(name, network, schedule) of the three learners with the same number of parameters:
    the 3-layer network (k = 1) by plain gradient flow and with a two-stage schedule,
    and the 2-layer network."""
    import solvers

    import meanfield as mf

    three = mf.rzg_three_layer(d, m, m, k=1, seed=1)
    m2 = int(round(m * (d + 5) / (d + 2)))   # m(d+2) + 3m parameters against m2(d+2)
    two = mf.two_layer(d, m2, seed=1)
    t1 = p["stage1"] * p["t_end"]
    proj = solvers.BallProjection(("2.u", "2.c", "2.v"), p["radius"])
    staged = [solvers.Stage(duration=t1, name="free"),
              solvers.Stage(projections=(proj,), name=f"block 2 on the ball of radius {p['radius']}")]
    return [("3-layer", three, []), ("3-layer, two stages", three, staged), ("2-layer", two, [])]


def _profile(net, law, rhos, n_dir=64, seed=7):
    """f(ρ e) averaged over ``n_dir`` random directions e, for every ρ."""
    import meanfield as mf

    e = mf.data.uniform_directions(n_dir, net.d, np.random.default_rng(seed))
    X = (rhos[:, None, None] * e[None, :, :]).reshape(-1, net.d)
    return net(X).reshape(len(rhos), n_dir).mean(axis=1)


def rzg_run(out, quick, bar):
    import solvers

    import meanfield as mf
    from meanfield.objective import Dataset

    p = RZG_QUICK if quick else RZG_FULL
    rows, curves, profiles, features = [], {}, {}, {}
    os.makedirs(os.path.join(out, "rzg"), exist_ok=True)
    for law_name in ("uniform-norm", "eldan-shamir"):
        for d in p["ds"]:
            law = rzg_laws(d)[law_name]
            Xtr, Xte = law.sample(p["n_train"], 11), law.sample(p["n_test"], 12)
            target = mf.ReluNorm(1.0)
            train, test = Dataset(Xtr, target(Xtr)), Dataset(Xte, target(Xte))
            const = float(np.var(test.y))
            for name, net, sched in rzg_models(d, p["m"], p):
                bar.set_description(f"rzg {law_name} d={d}: {name}")
                exp = mf.Experiment(net, train, test, target=target, schedule=sched,
                                    stop=solvers.Stop(t_end=p["t_end"]), dt=p["dt"],
                                    record={"series_every": p["series_every"],
                                            "snapshot_every": 10 ** 9, "checkpoint_every": 10 ** 9})
                path = os.path.join(out, "rzg", f"{law_name}-d{d}-{name.replace(', ', '-').replace(' ', '-')}.h5")
                t0 = time.perf_counter()
                res = mf.run(exp, path, overwrite=True)
                wall = time.perf_counter() - t0
                with mf.open_run(path) as r:
                    t = np.asarray(r.series["t"])
                    test_mse = 2.0 * np.asarray(r.series["test_loss"])   # loss = ½ MSE
                    train_mse = 2.0 * np.asarray(r.series["loss"])
                ok = np.isfinite(test_mse)
                reach = t[ok][test_mse[ok] <= MSE_GOAL]
                final = res.network
                rows.append(dict(law=law_name, d=d, model=name, params=int(net.n_params),
                                 test_mse=float(2.0 * res.test_loss), train_mse=float(train_mse[-1]),
                                 constant_mse=const, status=res.status,
                                 t_reach=float(reach[0]) if reach.size else None, seconds=wall))
                curves[(law_name, d, name)] = (t[ok], test_mse[ok], train_mse[ok])
                rmax = 2.0 if law_name == "uniform-norm" else 3.0
                rhos = np.linspace(0.0, rmax, 61)
                profiles[(law_name, d, name)] = (rhos, _profile(final, law, rhos))
                if final.L == 2:
                    h = final.features(Xte)[0][:, 0]
                    rr = np.linalg.norm(Xte, axis=1)
                    kappa = float(h @ rr / (rr @ rr))
                    features[(law_name, d, name)] = (rr, h, kappa)
                bar.update(1)
    summary = {"params": {k: v for k, v in p.items()}, "rows": rows}
    figs = _rzg_figures(out, p, rows, curves, profiles, features)
    text = rzg_report(summary)
    _write(out, "rzg", summary, text)
    return summary, figs


def rzg_tasks(quick) -> int:
    p = RZG_QUICK if quick else RZG_FULL
    return 2 * len(p["ds"]) * 3


def rzg_report(summary) -> str:
    p = summary["params"]
    lines = [f"[RZG] learners with equal parameter counts (3-layer: m₁ = m₂ = {p['m']}, k = 1; "
             f"2-layer: m = round({p['m']}(d+5)/(d+2))), N = {p['n_train']} training and "
             f"{p['n_test']} test points, Euler dt = {p['dt']} to flow time {p['t_end']:g}; two "
             f"stages: free until t = {p['stage1'] * p['t_end']:g}, then every particle of block 2 "
             f"projected on the ball of radius {p['radius']:g} (u, c and v each). MSE = mean (f − y)² "
             f"on the test points; t(MSE ≤ {MSE_GOAL:g}) the first recorded time it is reached."]
    for law in ("uniform-norm", "eldan-shamir"):
        rs = [r for r in summary["rows"] if r["law"] == law]
        if not rs:
            continue
        lines += ["", f"#### {law}", "",
                  "| d | constant | 2-layer | 3-layer | 3-layer, two stages | 2-layer / 3-layer | "
                  "t(≤1e-3) 2-layer | 3-layer | two stages |", "|---|---|---|---|---|---|---|---|---|"]
        for d in sorted({r["d"] for r in rs}):
            by = {r["model"]: r for r in rs if r["d"] == d}
            two, three, st = by["2-layer"], by["3-layer"], by["3-layer, two stages"]
            best3 = min(three["test_mse"], st["test_mse"])
            tr = lambda r: "not reached" if r["t_reach"] is None else f"{r['t_reach']:g}"  # noqa: E731
            lines.append(f"| {d} | {two['constant_mse']:.3e} | {two['test_mse']:.3e} | {three['test_mse']:.3e} | "
                         f"{st['test_mse']:.3e} | {two['test_mse'] / best3:.1f} | {tr(two)} | {tr(three)} | {tr(st)} |")
    return "\n".join(lines)


def _rzg_figures(out, p, rows, curves, profiles, features) -> list:
    from meanfield.plots import _plt

    plt = _plt()
    files = []
    models = ("2-layer", "3-layer", "3-layer, two stages")
    colors = dict(zip(models, ("tab:red", "tab:blue", "tab:green")))
    laws = ("uniform-norm", "eldan-shamir")
    ds = p["ds"]
    # loss curves
    fig, axes = plt.subplots(len(laws), len(ds), figsize=(3.2 * len(ds), 5.5), squeeze=False, sharey=True)
    for i, law in enumerate(laws):
        for j, d in enumerate(ds):
            ax = axes[i, j]
            for mname in models:
                t, te, tr = curves[(law, d, mname)]
                ax.loglog(np.maximum(t, t[1] if len(t) > 1 else 1.0), te, color=colors[mname], label=f"{mname} test")
                ax.loglog(np.maximum(t, t[1] if len(t) > 1 else 1.0), tr, color=colors[mname], ls=":", lw=1)
            ax.axhline(MSE_GOAL, color="gray", lw=0.8, ls="--")
            ax.set_title(f"{law}, d = {d}", fontsize=9)
            ax.set_xlabel("flow time t")
        axes[i, 0].set_ylabel("MSE (test solid, train dotted)")
    axes[0, 0].legend(fontsize=7)
    files.append(_save(fig, out, "rzg-loss-curves.png"))
    # radial profiles
    fig, axes = plt.subplots(len(laws), len(ds), figsize=(3.2 * len(ds), 5.5), squeeze=False, sharey=True)
    for i, law in enumerate(laws):
        for j, d in enumerate(ds):
            ax = axes[i, j]
            rhos = profiles[(law, d, models[0])][0]
            ax.plot(rhos, np.maximum(1 - rhos, 0), "k-", lw=2, alpha=0.4, label="ReLU(1 − ρ)")
            for mname in models:
                ax.plot(*profiles[(law, d, mname)], color=colors[mname], label=mname)
            ax.set_title(f"{law}, d = {d}", fontsize=9)
            ax.set_xlabel("ρ = ‖x‖")
        axes[i, 0].set_ylabel("f(ρ e), mean over directions")
    axes[0, 0].legend(fontsize=7)
    files.append(_save(fig, out, "rzg-profiles.png"))
    # first-block feature against |x|
    fig, axes = plt.subplots(len(laws), len(ds), figsize=(3.2 * len(ds), 5.5), squeeze=False)
    for i, law in enumerate(laws):
        for j, d in enumerate(ds):
            ax = axes[i, j]
            rr, h, kappa = features[(law, d, "3-layer")]
            ax.plot(rr, h, ".", ms=2, alpha=0.4, color="tab:blue")
            xs = np.linspace(0, rr.max(), 10)
            ax.plot(xs, kappa * xs, "k--", lw=1, label=f"κ‖x‖, κ = {kappa:.3g}")
            ax.set_title(f"{law}, d = {d}", fontsize=9)
            ax.set_xlabel("‖x‖")
            ax.legend(fontsize=7)
        axes[i, 0].set_ylabel("h⁽¹⁾(x), 3-layer")
    files.append(_save(fig, out, "rzg-features.png"))
    # MSE against d
    fig, axes = plt.subplots(1, len(laws), figsize=(10, 4), squeeze=False)
    for ax, law in zip(axes[0], laws):
        for mname in models:
            rs = sorted((r for r in rows if r["law"] == law and r["model"] == mname), key=lambda r: r["d"])
            ax.loglog([r["d"] for r in rs], [r["test_mse"] for r in rs], "o-", color=colors[mname], label=mname)
        rs = sorted((r for r in rows if r["law"] == law and r["model"] == "2-layer"), key=lambda r: r["d"])
        ax.loglog([r["d"] for r in rs], [r["constant_mse"] for r in rs], "k:", label="best constant")
        ax.set_xlabel("d")
        ax.set_ylabel("test MSE at the end")
        ax.set_title(law)
        ax.legend(fontsize=7)
    files.append(_save(fig, out, "rzg-mse-vs-d.png"))
    return files


def _save(fig, out, name) -> str:
    import matplotlib.pyplot as plt

    path = os.path.join(out, name)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _write(out, name, summary, text) -> None:
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(summary, f, indent=1, default=float)
    with open(os.path.join(out, f"{name}.md"), "w") as f:
        f.write(text + "\n")


# --------------------------------------------------------------------------------------
def run(args) -> dict:
    from tqdm.auto import tqdm

    parts = args.parts.split(",")
    os.makedirs(args.out, exist_ok=True)
    total = (rzg_tasks(args.quick) if "rzg" in parts else 0)
    res = {"quick": args.quick}
    t0 = time.perf_counter()
    with tqdm(total=total, file=sys.stderr, dynamic_ncols=True, disable=args.quiet) as bar:
        if "rzg" in parts:
            res["rzg"], _ = rzg_run(args.out, args.quick, bar)
    res["seconds"] = time.perf_counter() - t0
    return res


def directions(res) -> list:
    """The checks of ``--quick``: (description, holds) of the direction of each result."""
    out = []
    if "rzg" in res:
        rows = res["rzg"]["rows"]
        dmax = max(r["d"] for r in rows)
        for law in ("uniform-norm", "eldan-shamir"):
            by = {r["model"]: r["test_mse"] for r in rows if r["law"] == law and r["d"] == dmax}
            out.append((f"[RZG] {law}, d = {dmax}: 3-layer test MSE {by['3-layer']:.2e} < 2-layer "
                        f"{by['2-layer']:.2e}", by["3-layer"] < by["2-layer"]))
    return out

