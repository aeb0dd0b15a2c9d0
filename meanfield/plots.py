"""PNG figures of a run file (matplotlib, Agg backend)."""
from __future__ import annotations

import os

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_run(run, outdir: str, snapshots=None) -> list:
    """Write the figures of ``run`` (a :class:`~meanfield.store.Run`) into ``outdir``.

    loss.png: train and test loss against flow time (log scale);
    function.png: the learned function against the target along ‖x‖ (radial targets);
    particles-block<l>.png: each block's particles at the chosen snapshots, (‖u‖, c) (or
    (u, c) when u is one-dimensional) coloured by v₁ on one colour scale centred at 0,
    with shared axes, and the law of v₁ at each time;
    movement.png: each block's RMS particle displacement from initialisation, at the
    snapshots (markers only).
    Returns the written paths.
    """
    plt = _plt()
    files = []
    n = run.n_series
    if n:
        t = np.asarray(run.series["t"])
        fig, ax = plt.subplots(figsize=(6, 4))
        loss = np.asarray(run.series["loss"])
        mark = "o" if n < 30 else None   # a few rows (a run that stopped early): show them
        ax.plot(t, np.where(loss > 0, loss, np.nan), marker=mark, label="train")
        test = np.asarray(run.series["test_loss"])
        ok = np.isfinite(test) & (test > 0)
        if ok.any():
            ax.plot(t[ok], test[ok], marker=mark, label="test")
        ax.set_yscale("log")
        ax.set_xlabel("flow time t")
        ax.set_ylabel("loss")
        loss_name = run.config["solver"]["loss"] if run.config is not None else "squared"
        ax.set_title(f"loss ({loss_name}), status: {run.status}")
        ax.legend()
        files.append(_save(fig, outdir, "loss.png"))

    S = run.n_snapshots
    if S == 0:
        return files
    snaps = sorted({i % S for i in (snapshots if snapshots is not None else [0, S - 1])})
    tgt = run.config["target"]["kind"] if run.config is not None else None
    if tgt in ("relu-norm", "ball", "radial"):
        from .config import make_target

        target = make_target(run.config)
        X = np.asarray(run.data["x_test"]) if run.data["x_test"].shape[0] else np.asarray(run.data["x"])
        X = X[:4000]
        rho = np.linalg.norm(X, axis=1)
        fig, ax = plt.subplots(figsize=(6, 4))
        for i in snaps:
            f = run.network(i)(X)
            ax.scatter(rho, f, s=3, alpha=0.5, label=f"f at t = {float(run.snapshots['t'][i]):.3g}")
        grid = np.linspace(0, rho.max(), 400)
        ax.plot(grid, target.profile(grid), "k-", lw=1.5, label="target")
        ax.set_xlabel("‖x‖")
        ax.set_ylabel("f(x)")
        ax.set_title("learned function against the target along ‖x‖")
        ax.legend(markerscale=4)
        files.append(_save(fig, outdir, "function.png"))

    net = run.template()
    for l, b in enumerate(net.blocks):
        files.append(_particles(plt, run, l, b, snaps, outdir))

    if S > 1:
        t = np.asarray(run.snapshots["t"])
        fig, ax = plt.subplots(figsize=(6, 4))
        for l, b in enumerate(net.blocks):
            disp = np.zeros(S)
            for p in "ucv":
                rows = run.snapshots[f"{l + 1}.{p}"]
                first = np.asarray(rows[0]).reshape(b.m, -1)
                for i in range(S):
                    disp[i] += np.sum((np.asarray(rows[i]).reshape(b.m, -1) - first) ** 2)
            # markers only: the displacement is known at the snapshots, not between them
            ax.plot(t, np.sqrt(disp / b.m), marker="o", linestyle="none", label=f"block {l + 1}")
        ax.set_xlabel("flow time t")
        ax.set_ylabel("RMS displacement (1/m Σ‖θᵢ(t) − θᵢ(0)‖²)^½")
        ax.set_title(f"particle movement per block ({S} snapshots)")
        ax.legend()
        files.append(_save(fig, outdir, "movement.png"))
    return files


def _particles(plt, run, l, b, snaps, outdir) -> str:
    """Block l's particles at the chosen snapshots: (u or ‖u‖, c) coloured by v₁ on one
    colour scale centred at 0 for every panel, shared axes, and the law of v₁."""
    from matplotlib.colors import Normalize

    data = []
    for i in snaps:
        u = np.asarray(run.snapshots[f"{l + 1}.u"][i]).reshape(b.m, -1)
        c = np.asarray(run.snapshots[f"{l + 1}.c"][i]).reshape(b.m)
        v = np.asarray(run.snapshots[f"{l + 1}.v"][i]).reshape(b.m, -1)
        x = u[:, 0] if u.shape[1] == 1 else np.linalg.norm(u, axis=1)  # signed u when 1-D
        data.append((float(run.snapshots["t"][i]), x, c, v[:, 0]))
    xlabel = "u" if b.k_in == 1 else "‖u‖"
    vmax = max(float(np.max(np.abs(v))) for *_, v in data) or 1.0
    norm = Normalize(-vmax, vmax)
    lims = []
    for k in (1, 2):
        lo = min(float(np.min(d[k])) for d in data)
        hi = max(float(np.max(d[k])) for d in data)
        pad = 0.05 * (hi - lo) if hi > lo else 0.5 * max(1.0, abs(hi))
        lims.append((lo - pad, hi + pad))
    bins = np.linspace(-vmax, vmax, 61)
    n = len(data)
    fig, axes = plt.subplots(2, n, figsize=(4 * n + 1, 7), squeeze=False)
    for col, (t, x, c, v) in enumerate(data):
        ax = axes[0, col]
        sc = ax.scatter(x, c, c=v, s=4, cmap="coolwarm", norm=norm)
        ax.set_xlim(*lims[0])
        ax.set_ylim(*lims[1])
        ax.set_xlabel(xlabel)
        ax.set_ylabel("c")
        ax.set_title(f"block {l + 1}, t = {t:.3g}")
        axes[1, col].hist(v, bins=bins)
        axes[1, col].set_xlabel("v₁")
        axes[1, col].set_ylabel("particles")
        axes[1, col].set_title(f"v₁ at t = {t:.3g}")
    fig.tight_layout()
    fig.colorbar(sc, ax=list(axes[0]), label="v₁ (one scale for every panel)")
    return _save(fig, outdir, f"particles-block{l + 1}.png", tight=False)


def _save(fig, outdir, name, tight=True) -> str:
    path = os.path.join(outdir, name)
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
