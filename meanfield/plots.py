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
    particles-block<l>.png: each block's particles at the chosen snapshots, (‖u‖, c)
    coloured by v and the distribution of v;
    movement.png: each block's RMS particle displacement from initialisation.
    Returns the written paths.
    """
    plt = _plt()
    files = []
    n = run.n_series
    if n:
        t = np.asarray(run.series["t"])
        fig, ax = plt.subplots(figsize=(6, 4))
        loss = np.asarray(run.series["loss"])
        ax.plot(t, np.where(loss > 0, loss, np.nan), label="train")
        test = np.asarray(run.series["test_loss"])
        ok = np.isfinite(test) & (test > 0)
        if ok.any():
            ax.plot(t[ok], test[ok], label="test")
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
        fig, axes = plt.subplots(2, len(snaps), figsize=(4 * len(snaps), 7), squeeze=False)
        for col, i in enumerate(snaps):
            u = np.asarray(run.snapshots[f"{l + 1}.u"][i])
            c = np.asarray(run.snapshots[f"{l + 1}.c"][i])
            v = np.asarray(run.snapshots[f"{l + 1}.v"][i])
            ax = axes[0, col]
            sc = ax.scatter(np.linalg.norm(u, axis=1), c, c=v[:, 0], s=4, cmap="coolwarm")
            fig.colorbar(sc, ax=ax, label="v₁")
            ax.set_xlabel("‖u‖")
            ax.set_ylabel("c")
            ax.set_title(f"block {l + 1}, t = {float(run.snapshots['t'][i]):.3g}")
            axes[1, col].hist(v[:, 0], bins=60)
            axes[1, col].set_xlabel("v₁")
            axes[1, col].set_ylabel("particles")
        files.append(_save(fig, outdir, f"particles-block{l + 1}.png"))

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
            ax.plot(t, np.sqrt(disp / b.m), marker="o", label=f"block {l + 1}")
        ax.set_xlabel("flow time t")
        ax.set_ylabel("RMS particle displacement ‖θ(t) − θ(0)‖")
        ax.set_title("parameter movement per block")
        ax.legend()
        files.append(_save(fig, outdir, "movement.png"))
    return files


def _save(fig, outdir, name) -> str:
    path = os.path.join(outdir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
