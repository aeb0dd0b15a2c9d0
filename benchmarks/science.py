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
# Sizes, steps and flow times per law, chosen so that training converges (the report
# gives the change of the test and train MSE over the last fifth of the flow):
# - uniform norms: m₁ = m₂ = 512, N = 2048, dt = 0.5 (the largest of 0.5, 0.2, 0.05 at which
#   every learner stayed finite at d = 16), t_end = 2500;
# - Eldan–Shamir: its heavy tail puts training points at norms of several hundred, which
#   makes the flow stiff (the 2-layer network diverged at dt = 0.5 and 0.2 with N = 2048)
#   and slow: with N = 2048, dt = 0.05, the 3-layer network was still on its plateau at
#   t = 500 for d ≥ 16.  Measured: with m₁ = m₂ = 256, N = 1024, dt = 0.1 its train MSE
#   is below 1e-3 by t = 1250 and its test MSE changes by 3 % (d = 16) and 0.03 % (d = 64)
#   over t ∈ [4000, 5000]; a run of that length at the larger size did not fit the hour.
#   The 2-layer network diverged at dt = 0.2 (d = 16) and, at d = 4, at dt = 0.1; the
#   3-layer one ran at dt = 0.2 (d = 16) to the same test MSE (5.6e-4 against 5.5e-4 at
#   0.1).  Each run takes the largest step of the list at which it stays finite (the
#   table says which); the flow time is the same for all.
# series_every: flow time between recorded losses
RZG_FULL = dict(ds=[4, 8, 16, 32, 64],
                m={"uniform-norm": 512, "eldan-shamir": 256},
                n_train={"uniform-norm": 2048, "eldan-shamir": 1024},
                n_test={"uniform-norm": 2048, "eldan-shamir": 1024},
                dt={"uniform-norm": (0.5,), "eldan-shamir": (0.2, 0.1, 0.05)},
                t_end={"uniform-norm": 2500.0, "eldan-shamir": 5000.0},
                stage1=0.5, radius=4.0, series_every={"uniform-norm": 10.0, "eldan-shamir": 20.0})
RZG_QUICK = dict(ds=[4, 16],
                 m={"uniform-norm": 128, "eldan-shamir": 128},
                 n_train={"uniform-norm": 512, "eldan-shamir": 512},
                 n_test={"uniform-norm": 512, "eldan-shamir": 512},
                 dt={"uniform-norm": (0.5,), "eldan-shamir": (0.05,)},
                 t_end={"uniform-norm": 500.0, "eldan-shamir": 100.0},
                 stage1=0.5, radius=4.0, series_every={"uniform-norm": 5.0, "eldan-shamir": 2.5})
MSE_GOAL = 1e-3


def rzg_laws(d):
    """The two input laws of the [RZG] comparison: ‖x‖ ~ U[0, 2] with a uniform direction,
    and the Eldan–Shamir φ² law rescaled so that the median norm is 1."""
    from scipy import stats

    import meanfield as mf

    es = mf.data.EldanShamir(d)
    med = float(es.norm_ppf(np.array([0.5]))[0])
    return {"uniform-norm": mf.data.Radial(d, stats.uniform(0.0, 2.0)),
            "eldan-shamir": mf.data.Radial(d, lambda n, rng: es.sample_norms(n, rng) / med)}


def rzg_models(d, m, p, t_end):
    """(name, network, schedule) of the three learners with the same number of parameters:
    the 3-layer network (k = 1) by plain gradient flow and with a two-stage schedule,
    and the 2-layer network."""
    import solvers

    import meanfield as mf

    three = mf.rzg_three_layer(d, m, m, k=1, seed=1)
    m2 = int(round(m * (d + 5) / (d + 2)))   # m(d+2) + 3m parameters against m2(d+2)
    two = mf.two_layer(d, m2, seed=1)
    t1 = p["stage1"] * t_end
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
            Xtr, Xte = law.sample(p["n_train"][law_name], 11), law.sample(p["n_test"][law_name], 12)
            target = mf.ReluNorm(1.0)
            train, test = Dataset(Xtr, target(Xtr)), Dataset(Xte, target(Xte))
            const = float(np.var(test.y))
            dts, t_end, every = p["dt"][law_name], p["t_end"][law_name], p["series_every"][law_name]
            for name, net, sched in rzg_models(d, p["m"][law_name], p, t_end):
                bar.set_description(f"rzg {law_name} d={d}: {name}")
                path = os.path.join(out, "rzg", f"{law_name}-d{d}-{name.replace(', ', '-').replace(' ', '-')}.h5")
                t0 = time.perf_counter()
                for dt in dts:   # the largest step of the law's list at which the run stays finite
                    exp = mf.Experiment(net, train, test, target=target, schedule=sched,
                                        stop=solvers.Stop(t_end=t_end), dt=dt,
                                        record={"series_every": max(1, int(round(every / dt))),
                                                "snapshot_every": 10 ** 9, "checkpoint_every": 10 ** 9})
                    res = mf.run(exp, path, overwrite=True)
                    if res.status != "diverged":
                        break
                wall = time.perf_counter() - t0
                with mf.open_run(path) as r:
                    t = np.asarray(r.series["t"])
                    test_mse = 2.0 * np.asarray(r.series["test_loss"])   # loss = ½ MSE
                    train_mse = 2.0 * np.asarray(r.series["loss"])
                ok = np.isfinite(test_mse)
                reach = t[ok][test_mse[ok] <= MSE_GOAL]
                # convergence: how much higher the MSE was at 0.8 t_end than at the end
                i0 = int(np.searchsorted(t, 0.8 * t[-1]))
                drift = lambda v: float(v[i0] / v[-1] - 1.0) if np.isfinite(v[[i0, -1]]).all() else None  # noqa: E731
                final = res.network
                rows.append(dict(law=law_name, d=d, model=name, params=int(net.n_params),
                                 test_mse=float(2.0 * res.test_loss), train_mse=float(train_mse[-1]),
                                 constant_mse=const, status=res.status,
                                 t_reach=float(reach[0]) if reach.size else None, seconds=wall, dt=dt,
                                 test_drift=drift(test_mse), train_drift=drift(train_mse)))
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
    per = lambda k, law: p[k][law] if isinstance(p[k], dict) else p[k]  # noqa: E731  (older summaries)
    def steps(law):
        dts = p["dt"][law] if isinstance(p["dt"][law], (list, tuple)) else [p["dt"][law]]
        return (f"dt = {dts[0]:g}" if len(dts) == 1 else
                "dt = the largest of " + ", ".join(f"{x:g}" for x in dts) + " at which the run stays finite")
    sizes = "; ".join(f"{law}: m = {per('m', law)}, N = {per('n_train', law)} training and "
                      f"{per('n_test', law)} test points, {steps(law)}, t_end = {p['t_end'][law]:g}"
                      for law in p["dt"])
    lines = [f"[RZG] learners with equal parameter counts (3-layer with widths m₁ = m₂ = m, k = 1; "
             f"2-layer: width round(m(d+5)/(d+2))), Euler steps dt to flow time t_end ({sizes}); "
             f"two stages: free until {p['stage1']:g} t_end, then every particle of block 2 "
             f"projected on the ball of radius {p['radius']:g} (u, c and v each). MSE = mean (f − y)² "
             f"on the test points; t(MSE ≤ {MSE_GOAL:g}) the first recorded time it is reached. "
             f"Convergence: the relative change of the test (train) MSE over the last fifth of the "
             f"flow, MSE(0.8 t_end)/MSE(t_end) − 1."]
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
        if all("test_drift" in r for r in rs):
            pc = lambda v: "–" if v is None else f"{100 * v:+.1f} %"  # noqa: E731
            lines += ["", "Convergence: test (train) MSE change over the last fifth of the flow, and the "
                      "Euler step:", "",
                      "| d | 2-layer | 3-layer | 3-layer, two stages |", "|---|---|---|---|"]
            for d in sorted({r["d"] for r in rs}):
                by = {r["model"]: r for r in rs if r["d"] == d}
                lines.append(f"| {d} | " + " | ".join(
                    f"{pc(by[mn]['test_drift'])} ({pc(by[mn]['train_drift'])}), dt {by[mn]['dt']:g}"
                    for mn in ("2-layer", "3-layer", "3-layer, two stages")) + " |")
    return "\n".join(lines)


def _rzg_figures(out, p, rows, curves, profiles, features) -> list:
    from meanfield.plots import pyplot

    plt = pyplot()
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
    from meanfield.plots import save_figure as save

    return save(fig, out, name, dpi=90)


def _write(out, name, summary, text) -> None:
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(summary, f, indent=1, default=float)
    with open(os.path.join(out, f"{name}.md"), "w") as f:
        f.write(text + "\n")


# --------------------------------------------------------------------------------------
# [SL]: depth 2 against depth 1 on ball indicators
# --------------------------------------------------------------------------------------
SL_FULL = dict(ds=[5, 10, 20, 40], lams=[1.0, 1.25, 1.5, 1.75, 2.0], r=512, n_train=1024,
               n_test=1024, steps=5000, dt1=(0.5, 0.1, 0.02), prop21_r=200_000)
SL_QUICK = dict(ds=[5], lams=[1.5], r=512, n_train=1024, n_test=1024, steps=5000,
                dt1=(0.5, 0.1, 0.02), prop21_r=50_000)
SL_LAWS = ("D'", "D")


def sl_law(name, d):
    import meanfield as mf

    return mf.data.SafranLeeDPrime(d) if name == "D'" else mf.data.SafranLeeD(d, 1.0)


def depth2_dt(net, X) -> float:
    """1/λ_max of the depth-2 learner's kernel (1/N)(1/r) Φ Φᵀ on the training inputs:
    gradient descent on the output weights is stable below 2/λ_max."""
    from scipy.special import erf

    b = net.blocks[0]
    Phi = erf(X @ b.u.T + b.c)
    lam_max = float(np.linalg.eigvalsh(Phi @ Phi.T / (b.m * X.shape[0]))[-1])
    return 1.0 / lam_max


def sl_pair(law_name, d, lam, p, seed=0):
    """Train both depths on one (law, d, λ): returns their rows and final networks."""
    import solvers

    import meanfield as mf
    from meanfield.objective import Dataset

    law = sl_law(law_name, d)
    Xtr, Xte = law.sample(p["n_train"], 21 + seed), law.sample(p["n_test"], 22 + seed)
    target = mf.BallIndicator(lam)
    train, test = Dataset(Xtr, target(Xtr)), Dataset(Xte, target(Xte))
    const = float(np.var(test.y))
    r2 = p["r"]
    r1 = max(1, int(round((r2 - 1) / (d + 2))))   # r1 (d + 2) + 1 trained parameters against r2
    rows, nets = [], {}
    two = mf.sl_depth2(d, r2, seed=seed)
    dt2 = depth2_dt(two, Xtr)
    runs = [("depth 2", two, [dt2])] + [("depth 1", mf.sl_depth1(d, r1, seed=seed), list(p["dt1"]))]
    for name, net, dts in runs:
        for dt in dts:   # depth 1: the largest step at which the run stays finite
            exp = mf.Experiment(net, train, test, target=target, stop=solvers.Stop(steps=p["steps"]),
                                dt=dt, record={"series_every": max(1, p["steps"] // 50)})
            res = mf.run(exp)
            if res.status == "complete":
                break
        trained = sum(int(np.prod(shape)) for _, _, shape, tr in net.groups() if tr)
        rows.append(dict(law=law_name, d=d, lam=lam, model=name, width=net.widths[0], trained=trained,
                         dt=dt, steps=p["steps"], status=res.status, test_mse=float(2 * res.test_loss),
                         train_mse=float(2 * res.state.loss), constant_mse=const,
                         p_inside=float(np.mean(test.y))))
        nets[name] = res.network
    return rows, nets, law


def prop21_check(p, d=10):
    """[SL] Prop. 21: the frozen layer's mean feature conditioned on ‖x‖ = ρ, over the
    particles with b ≥ 0 and with b ≥ 1/√2, against the closed forms; z-scores."""
    import meanfield as mf
    from meanfield import closed_forms as CF
    from scipy.special import erf

    b = mf.sl_depth2(d, p["prop21_r"], seed=5).blocks[0]
    e = mf.data.uniform_directions(1, d, np.random.default_rng(3))[0]
    rows = []
    for rho in np.linspace(0.0, 2.0, 9):
        z = erf(rho * (b.u @ e) + b.c)
        for name, mask, cf in (("b >= 0", b.c >= 0, CF.sl_erf_mean_b_pos),
                               ("b >= 1/sqrt 2", b.c >= 1 / np.sqrt(2), CF.sl_erf_mean_b_high)):
            vals = z[mask]
            mean, se = float(vals.mean()), float(vals.std(ddof=1) / np.sqrt(vals.size))
            rows.append(dict(rho=float(rho), condition=name, empirical=mean, se=se,
                             closed_form=float(cf(rho)), z=(mean - float(cf(rho))) / se, n=int(vals.size)))
    return rows


def sl_diagnosis(d=8, lam=1.4, r=1024, n=1024, seed=0) -> dict:
    """Why the shipped ``ball-depth2`` preset (d = 8, λ = 1.4, D′_d, r = 1024, dt = 0.5,
    3000 steps) ends far above ``ball-depth1``: the spectrum of the depth-2 learner's
    kernel, gradient descent at the preset's step and at 1/λ_max for 3000 and 30000
    steps, and the ridge solutions of the same convex problem in the output weights."""
    import solvers
    from scipy.special import erf

    import meanfield as mf
    from meanfield.objective import Dataset

    law = mf.data.SafranLeeDPrime(d)
    Xtr, Xte = law.sample(n, 1), law.sample(n, 2)
    target = mf.BallIndicator(lam)
    train, test = Dataset(Xtr, target(Xtr)), Dataset(Xte, target(Xte))
    net = mf.sl_depth2(d, r, seed=seed)
    b = net.blocks[0]
    Phi, Phit = erf(Xtr @ b.u.T + b.c), erf(Xte @ b.u.T + b.c)
    ev = np.linalg.eigvalsh(Phi @ Phi.T / (r * n))[::-1]
    rho = np.linalg.norm(Xtr, axis=1)
    out = {"d": d, "lam": lam, "r": r, "n": n, "eigenvalues": [float(ev[i]) for i in (0, 1, 9, 49, 99)],
           "norm_quantiles": [float(q) for q in np.quantile(rho, [0.05, 0.5, 0.95])],
           "constant_mse": float(np.var(test.y)), "gd": [], "ridge": []}
    for dt, steps in ((0.5, 3000), (1.0 / ev[0], 3000), (1.0 / ev[0], 30000)):
        res = mf.run(mf.Experiment(mf.sl_depth2(d, r, seed=seed), train, test,
                                   stop=solvers.Stop(steps=steps), dt=float(dt),
                                   record={"series_every": 1000}))
        out["gd"].append(dict(dt=float(dt), steps=steps, flow_time=float(dt * steps),
                              train_mse=float(2 * res.state.loss), test_mse=float(2 * res.test_loss)))
    for reg in (1e-4, 1e-3, 1e-2):
        A = Phi.T @ Phi / (r * r * n) + reg * np.eye(r) / (r * r)
        v = np.linalg.solve(A, Phi.T @ train.y / (r * n))
        mse = lambda P, y: float(np.mean((np.clip(P @ v / r, 0, 1) - y) ** 2))  # noqa: E731
        out["ridge"].append(dict(reg=reg, train_mse=mse(Phi, train.y), test_mse=mse(Phit, test.y)))
    r1 = int(round((r - 1) / (d + 2)))
    res = mf.run(mf.Experiment(mf.sl_depth1(d, r1, seed=seed), train, test, stop=solvers.Stop(steps=3000),
                               dt=0.5, record={"series_every": 1000}))
    out["depth1"] = dict(width=r1, dt=0.5, steps=3000, test_mse=float(2 * res.test_loss))
    return out


def diagnosis_text(g) -> str:
    e = g["eigenvalues"]
    gd = g["gd"]
    return (f"**Why the shipped `ball-depth2` preset lost to `ball-depth1`** (d = {g['d']}, λ = {g['lam']}, "
            f"D′_d, r = {g['r']}, N = {g['n']}). ‖x‖ sits in [{g['norm_quantiles'][0]:.2f}, "
            f"{g['norm_quantiles'][2]:.2f}] (5–95 %), median {g['norm_quantiles'][1]:.2f}: λ = {g['lam']} is "
            f"where the data are densest (constant predictor: MSE {g['constant_mse']:.3f}). The learner's "
            f"problem is convex in its output weights, but its kernel (1/N)(1/r)ΦΦᵀ has eigenvalues "
            f"{e[0]:.3g}, {e[1]:.3g} (2nd), {e[2]:.2g} (10th), {e[3]:.2g} (50th), {e[4]:.2g} (100th): gradient "
            f"descent fits the component of eigenvalue λ_k only after a flow time ≈ 1/λ_k. The preset's "
            f"dt = 0.5 × 3000 steps (flow time 1500) ends at test MSE {gd[0]['test_mse']:.3f} (train "
            f"{gd[0]['train_mse']:.3f}); the stable step 1/λ_max = {gd[1]['dt']:.2f} reaches "
            f"{gd[1]['test_mse']:.3f} in 3000 steps and {gd[2]['test_mse']:.3f} in 30000 (train "
            f"{gd[2]['train_mse']:.3f}), against {g['depth1']['test_mse']:.3f} for depth 1 "
            f"(width {g['depth1']['width']}, same trained parameters, 3000 steps). The ridge solutions give "
            + ", ".join(f"{x['test_mse']:.3f} (ρ = {x['reg']:g})" for x in g["ridge"])
            + ". So the preset's depth-2 learner was not converged: its step was 15 times below the "
            "stable one. The grid therefore uses dt = 1/λ_max for depth 2.")


def sl_run(out, quick, bar):
    p = SL_QUICK if quick else SL_FULL
    rows, profiles = [], {}
    for law_name in SL_LAWS:
        for d in p["ds"]:
            for lam in p["lams"]:
                bar.set_description(f"sl {law_name} d={d} lambda={lam}")
                rs, nets, law = sl_pair(law_name, d, lam, p)
                rows += rs
                if lam == p["lams"][len(p["lams"]) // 2]:
                    rhos = np.linspace(0.0, 2.5, 61)
                    profiles[(law_name, d)] = (lam, rhos, _profile(nets["depth 2"], law, rhos),
                                               _profile(nets["depth 1"], law, rhos))
                bar.update(1)
    bar.set_description("sl: Prop. 21")
    summary = {"params": dict(p), "rows": rows, "prop21": prop21_check(p)}
    if not quick:
        bar.set_description("sl: diagnosis of the shipped presets")
        summary["diagnosis"] = sl_diagnosis()
    bar.update(1)
    figs = _sl_figures(out, p, rows, profiles)
    _write(out, "sl", summary, sl_report(summary))
    return summary, figs


def sl_tasks(quick) -> int:
    p = SL_QUICK if quick else SL_FULL
    return len(SL_LAWS) * len(p["ds"]) * len(p["lams"]) + 1


def sl_report(summary) -> str:
    p = summary["params"]
    lines = [f"[SL] depth-2 learner (r = {p['r']} frozen erf units, clipped output, gradient descent on "
             f"the output weights only, step 1/λ_max of its kernel) against depth 1 (ReLU, every weight "
             f"trained, width r₁ = round((r − 1)/(d + 2)) so that both train the same number of "
             f"parameters, the largest step of {', '.join(map(str, p['dt1']))} that stays finite), "
             f"{p['steps']} steps each, N = {p['n_train']} training and {p['n_test']} test points. "
             "Test MSE; the constant predictor's is the variance of the test labels."]
    for law in SL_LAWS:
        rs = [r for r in summary["rows"] if r["law"] == law]
        if not rs:
            continue
        lines += ["", f"#### {law}_d", "", "| d | λ | P(‖x‖ ≤ λ) | constant | depth 2 | depth 1 | winner |",
                  "|---|---|---|---|---|---|---|"]
        for d in sorted({r["d"] for r in rs}):
            for lam in sorted({r["lam"] for r in rs}):
                by = {r["model"]: r for r in rs if r["d"] == d and r["lam"] == lam}
                a, b = by["depth 2"], by["depth 1"]
                win = "tie (within 0.005)" if abs(a["test_mse"] - b["test_mse"]) < 0.005 else \
                    "depth 2" if a["test_mse"] < b["test_mse"] else "depth 1"
                lines.append(f"| {d} | {lam:g} | {a['p_inside']:.2f} | {a['constant_mse']:.3f} | "
                             f"{a['test_mse']:.3f} | {b['test_mse']:.3f}" + ("" if b["status"] == "complete"
                                                                            else f" ({b['status']})") + f" | {win} |")
    if "diagnosis" in summary:
        lines = lines[:1] + ["", diagnosis_text(summary["diagnosis"])] + lines[1:]
    z = max(abs(r["z"]) for r in summary["prop21"])
    lines += ["", f"Prop. 21 check ({p['prop21_r']} frozen units, ‖x‖ = ρ on a grid of 9 points in [0, 2]): "
              f"the largest |empirical − closed form| / standard error over both conditions is {z:.2f}."]
    return "\n".join(lines)


def _sl_figures(out, p, rows, profiles) -> list:
    from meanfield.plots import pyplot

    plt = pyplot()
    files = []
    lams = p["lams"]
    fig, axes = plt.subplots(1, len(lams), figsize=(3.2 * len(lams), 3.6), squeeze=False, sharey=True)
    for ax, lam in zip(axes[0], lams):
        for law, ls in zip(SL_LAWS, ("-", "--")):
            for model, c in (("depth 2", "tab:blue"), ("depth 1", "tab:red")):
                rs = sorted((r for r in rows if r["law"] == law and r["lam"] == lam and r["model"] == model),
                            key=lambda r: r["d"])
                ax.plot([r["d"] for r in rs], [r["test_mse"] for r in rs], "o" + ls, color=c, ms=4,
                        label=f"{model}, {law}_d")
            rs = sorted((r for r in rows if r["law"] == law and r["lam"] == lam and r["model"] == "depth 2"),
                        key=lambda r: r["d"])
            ax.plot([r["d"] for r in rs], [r["constant_mse"] for r in rs], ls, color="gray", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(f"λ = {lam:g}", fontsize=9)
        ax.set_xlabel("d")
    axes[0, 0].set_ylabel("test MSE (gray: best constant)")
    axes[0, 0].legend(fontsize=6)
    files.append(_save(fig, out, "sl-mse-vs-d.png"))
    keys = sorted(profiles)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.4), squeeze=False, sharey=True)
    for ax, key in zip(axes[0], keys):
        lam, rhos, f2, f1 = profiles[key]
        ax.plot(rhos, (rhos <= lam).astype(float), "k-", lw=2, alpha=0.35, label=f"1{{ρ ≤ {lam:g}}}")
        ax.plot(rhos, f2, color="tab:blue", label="depth 2")
        ax.plot(rhos, f1, color="tab:red", label="depth 1")
        ax.set_title(f"{key[0]}_d, d = {key[1]}", fontsize=9)
        ax.set_xlabel("ρ = ‖x‖")
    axes[0, 0].set_ylabel("f(ρ e), mean over directions")
    axes[0, 0].legend(fontsize=7)
    files.append(_save(fig, out, "sl-profiles.png"))
    return files


# --------------------------------------------------------------------------------------
# the discretization law: width sweeps of two presets (benchmarks/gap.py)
# --------------------------------------------------------------------------------------
GAP_QUICK = dict(widths="16,32,...,256", seeds=4, reference_width=2048, steps=200)


def gap_run(out, quick, bar):
    """The gap benchmark's sweeps (full: widths 16 … 4096, 5 seeds, M = 16384 on the
    presets as shipped; quick: widths 16 … 256, 4 seeds, M = 2048, 200 steps), their
    table in gap.json and the log–log figures."""
    import shutil
    import types

    from . import gap

    work = os.path.join(out, "gap")
    args = types.SimpleNamespace(presets=",".join(gap.PRESETS), widths="16,32,...,4096", seeds=5,
                                 reference_width=16384, every=None, workers=None, reps=20, out=work,
                                 quiet=True, overrides=())
    if quick:
        args.widths, args.seeds, args.reps = GAP_QUICK["widths"], GAP_QUICK["seeds"], 5
        args.reference_width = GAP_QUICK["reference_width"]
        args.overrides = (f"solver.steps={GAP_QUICK['steps']}", "data.n_train=256", "data.n_test=256")
    bar.set_description("gap: width sweeps of " + args.presets)
    res = gap.run(args)
    for name in gap.PRESETS:
        shutil.copy(os.path.join(work, f"gap-{name}-plots", "gap-vs-width.png"),
                    os.path.join(out, f"gap-{name}.png"))
    with open(os.path.join(out, "gap.json"), "w") as f:
        json.dump(res, f, indent=1)
    bar.update(1)
    return res


# --------------------------------------------------------------------------------------
def run(args) -> dict:
    from tqdm.auto import tqdm

    parts = args.parts.split(",")
    os.makedirs(args.out, exist_ok=True)
    total = (rzg_tasks(args.quick) if "rzg" in parts else 0) + (sl_tasks(args.quick) if "sl" in parts else 0) + ("gap" in parts)
    res = {"quick": args.quick}
    t0 = time.perf_counter()
    with tqdm(total=total, file=sys.stderr, dynamic_ncols=True, disable=args.quiet) as bar:
        if "rzg" in parts:
            res["rzg"], _ = rzg_run(args.out, args.quick, bar)
        if "sl" in parts:
            res["sl"], _ = sl_run(args.out, args.quick, bar)
        if "gap" in parts:
            res["gap"] = gap_run(args.out, args.quick, bar)
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
    if "gap" in res:
        for name, r in res["gap"]["presets"].items():
            b = r["t0"]["beta"][0]
            out.append((f"[gap] {name}: rate of the function gap at t = 0 {b:.3f} within 0.5 +- 0.15",
                        abs(b - 0.5) <= 0.15))
    if "sl" in res:
        rows = res["sl"]["rows"]
        for law in SL_LAWS:
            rs = [r for r in rows if r["law"] == law]
            lams = sorted({r["lam"] for r in rs})
            d, lam = min(r["d"] for r in rs), lams[len(lams) // 2]
            by = {r["model"]: r["test_mse"] for r in rs if r["d"] == d and r["lam"] == lam}
            out.append((f"[SL] {law}_d, d = {d}, λ = {lam:g}: depth-2 test MSE {by['depth 2']:.3f} < depth-1 "
                        f"{by['depth 1']:.3f}", by["depth 2"] < by["depth 1"]))
        z = max(abs(r["z"]) for r in res["sl"]["prop21"])
        out.append((f"[SL] Prop. 21: the frozen layer's conditional mean feature within 4 standard errors "
                    f"of the closed form (largest |z| {z:.2f})", z < 4))
    return out

