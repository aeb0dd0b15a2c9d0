"""PNG figures of run and gap files (matplotlib figures made without pyplot: drawing
them never changes the process's backend)."""
from __future__ import annotations

import os

import numpy as np

from .config import make_target
from .discretization.rates import bias_gaps, effective_widths
from .layout import PARAMS, group_name


def pyplot():
    """matplotlib.pyplot with the Agg backend, for scripts that draw their own figures
    into files (the benchmarks).  The figures of this module do not use it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class _Figures:
    """What this module needs of pyplot, without pyplot: figures made directly
    (``matplotlib.figure.Figure``), so drawing never changes the process's backend (a
    notebook's inline backend keeps working) and needs no display."""

    @staticmethod
    def subplots(nrows=1, ncols=1, *, figsize=None, **kwargs):
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        return fig, fig.subplots(nrows, ncols, **kwargs)

    @staticmethod
    def get_cmap(name):
        import matplotlib

        return matplotlib.colormaps[name]


def plot_run(run, outdir: str, snapshots=None) -> list:
    """Write the figures of ``run`` (a :class:`~meanfield.store.Run`) into ``outdir``.

    loss.png: train and test loss against flow time (log scale);
    function.png: the learned function against the target along ‖x‖ (radial targets);
    particles-block<l>.png: each block's particles at the chosen snapshots, (‖u‖, c) (or
    (u, c) when u is one-dimensional) coloured by v₁ on one colour scale centred at 0,
    with shared axes, and the law of v₁ at each time;
    movement.png: each block's RMS particle displacement from initialisation, at the
    snapshots (markers only).
    Returns the written paths.  ``outdir`` is created if needed.
    """
    plt = _Figures()
    os.makedirs(outdir, exist_ok=True)
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
        files.append(save_figure(fig, outdir, "loss.png"))

    S = run.n_snapshots
    if S == 0:
        return files
    snaps = sorted({i % S for i in (snapshots if snapshots is not None else [0, S - 1])})
    tgt = run.config["target"]["kind"] if run.config is not None else None
    if tgt in ("relu-norm", "ball", "radial"):
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
        files.append(save_figure(fig, outdir, "function.png"))

    net = run.template()
    for l, b in enumerate(net.blocks):
        files.append(_particles(plt, run, l, b, snaps, outdir))

    if S > 1:
        t = np.asarray(run.snapshots["t"])
        fig, ax = plt.subplots(figsize=(6, 4))
        for l, b in enumerate(net.blocks):
            disp = np.zeros(S)
            for p in PARAMS:
                rows = run.snapshots[group_name(l + 1, p)]
                first = np.asarray(rows[0]).reshape(b.m, -1)
                for i in range(S):
                    disp[i] += np.sum((np.asarray(rows[i]).reshape(b.m, -1) - first) ** 2)
            # markers only: the displacement is known at the snapshots, not between them
            ax.plot(t, np.sqrt(disp / b.m), marker="o", linestyle="none", label=f"block {l + 1}")
        ax.set_xlabel("flow time t")
        ax.set_ylabel("RMS displacement (1/m Σ‖θᵢ(t) − θᵢ(0)‖²)^½")
        ax.set_title(f"particle movement per block ({S} snapshots)")
        ax.legend()
        files.append(save_figure(fig, outdir, "movement.png"))
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
    return save_figure(fig, outdir, f"particles-block{l + 1}.png", tight=False)


def save_figure(fig, outdir, name, tight=True, dpi=110) -> str:
    """Save ``fig`` as ``outdir/name`` (PNG), close it, and return the path."""
    path = os.path.join(outdir, name)
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    if getattr(fig.canvas, "manager", None) is not None:   # a pyplot figure: release it
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path


# ----------------------------------------------------------------------------------
# gap files
# ----------------------------------------------------------------------------------
def _rms(g, axis=1):
    return np.sqrt(np.nanmean(g * g, axis=axis))


def _rate_panel(ax, x, per_seed, reduced, rate, j, label, color, xlabel):
    """Per-seed gaps (small dots), their reduction (large markers), the fitted line and
    the band of slopes of the bootstrap interval, pivoted at the fit's centre."""
    for s in range(per_seed.shape[1]):
        ax.plot(x, per_seed[:, s], ".", color=color, alpha=0.35, ms=4)
    ax.plot(x, reduced, "o", color=color, ms=6, label=label)
    if rate is not None and np.isfinite(rate["beta"][j]):
        b, C = rate["beta"][j], rate["C"][j]
        xs = np.geomspace(x.min(), x.max(), 50)
        ax.plot(xs, C * xs ** -b, "-", color=color, lw=1.5,
                label=f"fit: β = {b:.2f} [{rate['beta_lo'][j]:.2f}, {rate['beta_hi'][j]:.2f}]")
        x0 = np.exp(np.mean(np.log(x)))
        y0 = C * x0 ** -b
        lo = y0 * (xs / x0) ** -rate["beta_lo"][j]
        hi = y0 * (xs / x0) ** -rate["beta_hi"][j]
        ax.fill_between(xs, np.minimum(lo, hi), np.maximum(lo, hi), color=color, alpha=0.15, lw=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    ax.xaxis.set_major_locator(FixedLocator(x))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticklabels([f"{v:.4g}" for v in x], fontsize=7)
    ax.set_xlabel(xlabel)


def plot_gap(res, outdir: str) -> list:
    """Write the figures of a width sweep (a :class:`~meanfield.discretization.GapResult`).

    gap-vs-width.png: each gap against the width on log–log axes at the first and the
    last gap time, every seed (dots), their RMS (markers), the fitted line with its
    slope β and the band of the bootstrap interval (one panel per measure);
    gap-vs-time.png: the RMS function gap and the mean test-loss gap against flow time,
    one line per width;  beta.png: β(t) of the function gap and of the seed-averaged
    function, with their bands;  decomposition.png (two-block networks): the terms of
    the [RZG] bound over time for the reference and the narrowest and widest members.
    Returns the written paths.  ``outdir`` is created if needed.
    """
    plt = _Figures()
    os.makedirs(outdir, exist_ok=True)
    files = []
    o = res.options
    done = np.flatnonzero(res.done)
    t = res.t
    T, L = len(t), len(res.reference.features)
    first_time = 0
    last = T - 1
    xname = "width m" if not res.rates else res.rates["function"]["x"]
    x = res.widths.astype(float)
    if res.rates:
        x = effective_widths(res.widths, o.M, o.coupling)
    x = x[done]
    panels = [("function gap ‖f_m − f_M‖", res.function[done], "function", "rms")]
    if res.complete:
        panels.append(("seed-averaged gap ‖f̄_m − f_M‖", None, "bias", "bias"))
    for l in range(L):
        panels.append((f"feature gap, block {l + 1}", res.feature[done][..., l], f"feature/{l + 1}", "rms"))
        if o.coupling == "subsample":
            panels.append((f"coupling gap, block {l + 1}", res.coupling[done][..., l],
                           f"coupling/{l + 1}", "rms"))
        panels.append((f"sliced W₂, block {l + 1}", res.sliced_w2[done][..., l], None, "floor"))
    ncol = 3
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 4 * nrow), squeeze=False)
    for ax, (title, g, rname, kind) in zip(axes.flat, panels):
        for j, color in ((first_time, "tab:blue"), (last, "tab:red")):
            lab = f"t = {t[j]:.4g}"
            if kind == "bias":
                red = bias_gaps(res.outputs[done][:, :, j], res.reference.outputs[j])
                per = red[:, None]
            else:
                per = g[:, :, j]
                red = _rms(per)
            if not np.any(np.isfinite(red) & (red > 0)):
                continue
            rate = res.rates.get(rname) if rname else None
            _rate_panel(ax, x, per, red, rate, j, lab, color, xname)
            if kind == "floor":
                l = int(title.rsplit(" ", 1)[1]) - 1
                ax.plot(x, res.sliced_w2_floor[done][:, j, l], "--", color=color, lw=1,
                        label=f"noise floor, t = {t[j]:.4g}")
        ax.set_title(title)
        ax.set_ylabel("gap (RMS over seeds)" if kind != "bias" else "gap of the seed mean")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle((f"gap to the width-{o.reference_width[0]} reference" if not o.limit else
                  "gap to the exact limit (f_M: the limit's f)")
                 + f" against the width ({o.seeds} seeds, {o.coupling} coupling"
                 + (", fresh samples" if o.samples == "fresh" else "") + ")")
    files.append(save_figure(fig, outdir, "gap-vs-width.png"))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    cmap = plt.get_cmap("viridis")
    for i, w in enumerate(done):
        c = cmap(i / max(1, len(done) - 1))
        axes[0].plot(t, _rms(res.function[w], axis=0), "-o", ms=3, color=c, label=f"m = {res.widths[w]}")
        axes[1].plot(t, np.abs(np.mean(res.loss_test[w], axis=0)), "-o", ms=3, color=c)
    axes[0].set_ylabel("RMS function gap ‖f_m − f_M‖")
    axes[1].set_ylabel("|mean test-loss gap L_m − L_M|")
    for ax in axes:
        ax.set_xlabel("flow time t")
        ax.set_yscale("log")
    axes[0].legend(fontsize=7, ncol=2)
    files.append(save_figure(fig, outdir, "gap-vs-time.png"))

    if res.rates:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, color, lab in (("function", "tab:blue", "function gap (single networks)"),
                                 ("bias", "tab:orange", "seed-averaged function")):
            r = res.rates[name]
            ax.plot(t, r["beta"], "-o", ms=3, color=color, label=lab)
            ax.fill_between(t, r["beta_lo"], r["beta_hi"], color=color, alpha=0.2, lw=0)
        ax.axhline(0.5, color="gray", ls="--", lw=1, label="β = 1/2 (fluctuations)")
        ax.axhline(1.0, color="gray", ls=":", lw=1, label="β = 1 (bias)")
        ax.set_xlabel("flow time t")
        ax.set_ylabel(f"rate β (gap ∝ x^−β, x = {res.rates['function']['x']})")
        ax.set_title(f"fitted rate, {100 * res.rates['function']['level']:.0f} % bootstrap band")
        ax.legend(fontsize=7)
        files.append(save_figure(fig, outdir, "beta.png"))

    if res.decomposition is not None:
        terms = ("first_block", "feature_error", "perfect_first", "bound", "mse")
        fig, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=True)
        rd = dict(zip(("lip",) + terms, res.reference.decomposition.T[:6]))
        whos = [("reference", {k: rd[k] for k in terms})]
        for w in (done[0], done[-1]):
            whos.append((f"m = {res.widths[w]} (mean of {o.seeds} seeds)",
                         {k: np.nanmean(res.decomposition[k][w], axis=0) for k in terms}))
        for ax, (who, vals) in zip(axes, whos):
            for k in terms:
                v = vals[k]
                ax.plot(t, np.where(v > 0, v, np.nan), marker="o", ms=3, label=k.replace("_", " "),
                        ls="--" if k == "bound" else "-")
            ax.set_yscale("log")
            ax.set_xlabel("flow time t")
            ax.set_title(who)
        axes[0].set_ylabel("term of the [RZG] bound (test sample)")
        axes[0].legend(fontsize=7)
        files.append(save_figure(fig, outdir, "decomposition.png"))
    return files
