"""Figures of run and gap files, for notebooks, papers and the command line.

Every figure is one function that draws into an ``ax=`` (one panel) or a ``fig=`` (a
figure of several panels) it is given, or into a new :class:`matplotlib.figure.Figure`
when given none, and returns what it drew into (the Axes or the Figure).  Nothing here
calls ``matplotlib.use`` or pyplot: drawing never changes the process's backend, so a
notebook's inline backend keeps showing figures; in a notebook, ``display(fig)`` or
returning the Figure shows it.  Every figure names its run (the file's name, d, widths,
target and law) in its title; panels without data are left out, not drawn empty.

Runs (a :class:`~meanfield.store.Run`)::

    loss_axes         train and test loss against flow time
    velocity_axes     each block's RMS velocity against flow time (stationarity)
    function_axes     the learned function against the target along ‖x‖ (radial targets)
    particles_figure  one block's particles at chosen snapshots, each time on its own scales
    movement_axes     each block's RMS displacement from initialisation

Gap sweeps (a :class:`~meanfield.discretization.GapResult`)::

    gap_width_figure      each gap against the width at the first and last gap time
    gap_time_figure       the function and test-loss gaps against flow time, per width
    beta_axes             the fitted rate β(t) with its interval
    bias_axes             the seed mean's squared bias without the seeds' noise, against m
    samples_axes          the same for the sweeps of a sample sweep, one curve per N
    decomposition_figure  the terms of the [RZG] bound over time (two-block networks)

:func:`plot_run` and :func:`plot_gap` write all of them into a folder (what ``meanfield
plot`` does), as PNG, PDF or SVG.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .config import make_target
from .discretization.options import SAMPLE_NOTES
from .discretization.rates import bias_gaps, effective_widths
from .layout import PARAMS, group_name

FORMATS = ("png", "pdf", "svg")

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .discretization import GapResult
    from .store import Run


def pyplot():
    """matplotlib.pyplot with the Agg backend, for scripts that draw their own figures
    into files (the benchmarks).  The figures of this module do not use it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def new_figure(figsize: tuple = (6, 4), nrows: int = 1, ncols: int = 1, **kwargs):
    """A new Figure (no pyplot; constrained layout keeps labels, titles and colour bars
    inside the canvas) and its Axes (``fig.subplots(nrows, ncols, **kwargs)``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _axes(ax, figsize=(6, 4)):
    return new_figure(figsize)[1] if ax is None else ax


def run_label(run: Run) -> str:
    """What names a run in a title: its file's name, d, the widths, target and law."""
    parts = [os.path.basename(getattr(run, "path", "") or "") or "run"]
    try:
        net = run.template()
        parts.append(f"d = {net.d}, widths {'×'.join(map(str, net.widths))}")
    except Exception:   # a version-1 file opened without its configuration
        pass
    c = getattr(run, "config", None)
    if c is not None:
        parts.append(f"{c['target']['kind']} on {c['data']['distribution']}")
    return ", ".join(parts)


def gap_label(res: GapResult) -> str:
    """What names a sweep in a title: its file's name, d, the widths swept, target, law."""
    c = res.config
    name = os.path.basename(res.path) if res.path else "sweep"
    return (f"{name}, d = {c['model']['d']}, widths {int(res.widths[0])}…{int(res.widths[-1])}, "
            f"{c['target']['kind']} on {c['data']['distribution']}")


# ----------------------------------------------------------------------------------
# runs
# ----------------------------------------------------------------------------------
def loss_axes(run: Run, ax: Axes | None = None) -> Axes:
    """Train and test loss against flow time (log scale), with the run's status.
    Returns the Axes.  Raises ValueError if the run has no series rows."""
    n = run.n_series
    if n == 0:
        raise ValueError(f"{run.path}: no series rows recorded")
    ax = _axes(ax)
    t = np.asarray(run.series["t"])
    loss = np.asarray(run.series["loss"])
    mark = "o" if n < 30 else None   # a few rows (a run that stopped early): show them
    ax.plot(t, np.where(loss > 0, loss, np.nan), marker=mark, label="train")
    test = np.asarray(run.series["test_loss"])
    ok = np.isfinite(test) & (test > 0)
    if ok.any():
        ax.plot(t[ok], test[ok], marker=mark, label="test")
    ax.set_yscale("log")
    ax.set_xlabel("flow time t")
    loss_name = run.config["solver"]["loss"] if run.config is not None else "squared"
    ax.set_ylabel(f"loss ({loss_name})")
    ax.set_title(f"{run_label(run)}\nloss, status: {run.status}", fontsize=9)
    ax.legend()
    return ax


def has_velocity(run: Run) -> bool:
    """Whether the run recorded any finite velocity norm."""
    return run.n_series > 0 and bool(np.isfinite(np.asarray(run.series["velocity_norm"])).any())


def velocity_axes(run: Run, ax: Axes | None = None) -> Axes:
    """Each block's velocity norm √((1/m) Σᵢ ‖Vᵢ‖²) against flow time (log scale): the
    stationarity of the flow (it tends to 0 at a stationary point).  A block whose
    parameters are all frozen has no velocity and no line.  Returns the Axes.  Raises
    ValueError if no finite norm was recorded."""
    if not has_velocity(run):
        raise ValueError(f"{run.path}: no velocity norms recorded")
    ax = _axes(ax)
    t = np.asarray(run.series["t"])
    vn = np.asarray(run.series["velocity_norm"])
    for l in range(vn.shape[1]):
        v = vn[:, l]
        ok = np.isfinite(v) & (v > 0)
        if ok.any():
            ax.plot(t[ok], v[ok], marker="o" if ok.sum() < 30 else None, label=f"block {l + 1}")
    ax.set_yscale("log")
    ax.set_xlabel("flow time t")
    ax.set_ylabel("velocity norm (1/m Σ‖Vᵢ‖²)^½")
    ax.set_title(f"{run_label(run)}\nstationarity: each block's velocity", fontsize=9)
    if ax.get_lines():
        ax.legend()
    else:   # every block frozen, or already at rest: say so instead of an empty legend
        ax.text(0.5, 0.5, "no block moves (velocity 0)", transform=ax.transAxes, ha="center")
    return ax


def radial_target(run: Run) -> bool:
    """Whether the run's target is radial (so f can be drawn along ‖x‖)."""
    return run.config is not None and run.config["target"]["kind"] in ("relu-norm", "ball", "radial")


def function_axes(run: Run, snapshots: Sequence[int] | None = None, ax: Axes | None = None,
                  n_points: int = 4000) -> Axes:
    """The learned function at the chosen snapshots (default first and last) against the
    target along ‖x‖, on up to ``n_points`` test points.  Returns the Axes.  Raises
    ValueError unless the run has a radial target and snapshots."""
    if not radial_target(run):
        raise ValueError(f"{run.path}: the target is not radial (or the run has no stored "
                         "configuration): f cannot be drawn along ‖x‖")
    snaps = _snapshots(run, snapshots)
    ax = _axes(ax)
    target = make_target(run.config)
    X = np.asarray(run.data["x_test"]) if run.data["x_test"].shape[0] else np.asarray(run.data["x"])
    X = X[:n_points]
    rho = np.linalg.norm(X, axis=1)
    for i in snaps:
        f = run.network(i)(X)
        ax.scatter(rho, f, s=3, alpha=0.5, label=f"f at t = {float(run.snapshots['t'][i]):.3g}")
    grid = np.linspace(0, rho.max(), 400)
    ax.plot(grid, target.profile(grid), "k-", lw=1.5, label="target")
    ax.set_xlabel("‖x‖")
    ax.set_ylabel("f(x)")
    ax.set_title(f"{run_label(run)}\nlearned function against the target along ‖x‖", fontsize=9)
    ax.legend(markerscale=4)
    return ax


def _snapshots(run, snapshots):
    S = run.n_snapshots
    if S == 0:
        raise ValueError(f"{run.path}: no snapshots recorded")
    chosen = snapshots if snapshots is not None else [0, S - 1]
    for s in chosen:
        if not -S <= int(s) < S:
            raise ValueError(f"snapshot {s} out of range (the run has {S})")
    return sorted({int(i) % S for i in chosen})


def _limits(a):
    """Axis limits that show the values of ``a`` with a margin (constant values too)."""
    lo, hi = float(np.min(a)), float(np.max(a))
    if hi > lo:
        pad = 0.05 * (hi - lo)
    else:
        pad = 0.05 * abs(hi) if hi != 0 else 0.5
    return lo - pad, hi + pad


def particles_figure(run: Run, block: int = 1, snapshots: Sequence[int] | None = None,
                     fig: Figure | None = None) -> Figure:
    """Block ``block``'s (1-based) particles at the chosen snapshots (default first and
    last): (‖u‖, c) (or (u, c) when u is one-dimensional) coloured by v₁, and the law of
    v₁.  Each time has its own axes, colour scale (centred at 0) and histogram range, so
    that a law that is narrow at t = 0 is seen as it is.  Returns the Figure."""
    from matplotlib.colors import Normalize

    net = run.template()
    if not 1 <= block <= net.L:
        raise ValueError(f"block {block}: the network has blocks 1 to {net.L}")
    b = net.blocks[block - 1]
    snaps = _snapshots(run, snapshots)
    n = len(snaps)
    if fig is None:
        fig, axes = new_figure((4.2 * n + 0.6, 7), 2, n, squeeze=False)
    else:
        axes = fig.subplots(2, n, squeeze=False)
    xlabel = "u" if b.k_in == 1 else "‖u‖"
    for col, i in enumerate(snaps):
        u = np.asarray(run.snapshots[group_name(block, "u")][i]).reshape(b.m, -1)
        c = np.asarray(run.snapshots[group_name(block, "c")][i]).reshape(b.m)
        v = np.asarray(run.snapshots[group_name(block, "v")][i]).reshape(b.m, -1)[:, 0]
        x = u[:, 0] if u.shape[1] == 1 else np.linalg.norm(u, axis=1)   # signed u when 1-D
        t = float(run.snapshots["t"][i])
        vmax = float(np.max(np.abs(v))) or 1.0
        ax = axes[0, col]
        sc = ax.scatter(x, c, c=v, s=4, cmap="coolwarm", norm=Normalize(-vmax, vmax))
        ax.set_xlim(*_limits(x))
        ax.set_ylim(*_limits(c))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("c")
        ax.set_title(f"t = {t:.3g}")
        fig.colorbar(sc, ax=ax, label="v₁")
        lo, hi = _limits(v)
        axes[1, col].hist(v, bins=np.linspace(lo, hi, 61))
        axes[1, col].set_xlabel("v₁")
        axes[1, col].set_ylabel("particles")
        axes[1, col].set_title(f"v₁ at t = {t:.3g}")
    fig.suptitle(f"{run_label(run)}\nblock {block}: particles, each time on its own scales",
                 fontsize=10)
    return fig


def movement_axes(run: Run, ax: Axes | None = None) -> Axes:
    """Each block's RMS particle displacement from the first snapshot,
    (1/m Σᵢ ‖θᵢ(t) − θᵢ(0)‖²)^½, at the snapshots (markers only: it is known there and
    nowhere between).  Returns the Axes.  Raises ValueError with fewer than 2 snapshots."""
    S = run.n_snapshots
    if S < 2:
        raise ValueError(f"{run.path}: movement needs 2 snapshots, the run has {S}")
    ax = _axes(ax)
    net = run.template()
    t = np.asarray(run.snapshots["t"])
    for l, b in enumerate(net.blocks):
        disp = np.zeros(S)
        for p in PARAMS:
            rows = run.snapshots[group_name(l + 1, p)]
            first = np.asarray(rows[0]).reshape(b.m, -1)
            for i in range(S):
                disp[i] += np.sum((np.asarray(rows[i]).reshape(b.m, -1) - first) ** 2)
        frozen = "" if b.train else " (frozen)"
        ax.plot(t, np.sqrt(disp / b.m), marker="o", linestyle="none", label=f"block {l + 1}{frozen}")
    ax.set_xlabel("flow time t")
    ax.set_ylabel("RMS displacement (1/m Σ‖θᵢ(t) − θᵢ(0)‖²)^½")
    ax.set_title(f"{run_label(run)}\nparticle movement per block ({S} snapshots)", fontsize=9)
    ax.legend()
    return ax


def _check_format(format: str) -> str:
    if format not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {format!r}")
    return format


def plot_run(run: Run, outdir: str | os.PathLike[str], snapshots: Sequence[int] | None = None,
             format: str = "png") -> list[str]:
    """Write every figure of ``run`` that has data into ``outdir`` (created if needed),
    as ``format`` (png, pdf or svg): loss, velocity, function (radial targets),
    particles-block<l>, movement (2 snapshots or more).  Returns the written paths."""
    _check_format(format)
    os.makedirs(outdir, exist_ok=True)
    figures = []
    if run.n_series:
        figures.append(("loss", loss_axes(run).figure))
        if has_velocity(run):
            figures.append(("velocity", velocity_axes(run).figure))
    if run.n_snapshots:
        if radial_target(run):
            figures.append(("function", function_axes(run, snapshots).figure))
        for l in range(run.template().L):
            figures.append((f"particles-block{l + 1}", particles_figure(run, l + 1, snapshots)))
        if run.n_snapshots > 1:
            figures.append(("movement", movement_axes(run).figure))
    return [save_figure(fig, outdir, f"{name}.{format}", tight=False) for name, fig in figures]


def save_figure(fig, outdir, name, tight=True, dpi=110) -> str:
    """Save ``fig`` as ``outdir/name`` (the format from the name's suffix), close it if it
    is a pyplot figure, and return the path."""
    path = os.path.join(outdir, name)
    if tight and fig.get_layout_engine() is None:
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
    """The RMS over ``axis`` of the finite values (NaN where there is none, silently)."""
    ok = np.isfinite(g)
    n = ok.sum(axis=axis)
    total = np.where(ok, g * g, 0.0).sum(axis=axis)
    return np.sqrt(np.where(n > 0, total / np.maximum(n, 1), np.nan))


def _interval_name(rate) -> str:
    kind = rate.get("interval", "percentile")
    return f"{100 * rate['level']:.0f} % " + ("jackknife" if kind == "jackknife" else "bootstrap")


def _rate_panel(ax, x, per_seed, reduced, rate, j, label, color, xlabel):
    """Per-seed gaps (small dots), their reduction (large markers), the fitted line and
    the band of slopes of the rate's interval, pivoted at the fit's centre."""
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


def _finished(res):
    done = np.flatnonzero(res.done)
    if res.reference is None or done.size == 0:
        raise ValueError(f"{res.path or 'the sweep'}: no finished width yet")
    return done


def _panel_specs(res, done):
    """(title, per-seed gaps (W, S, T) or None, rate name, kind) of every measure."""
    o = res.options
    specs = [("function gap ‖f_m − f_M‖", res.function[done], "function", "rms")]
    if res.complete:
        specs.append(("seed-averaged gap ‖f̄_m − f_M‖", None, "bias", "bias"))
    for l in range(len(res.reference.features)):
        specs.append((f"feature gap, block {l + 1}", res.feature[done][..., l], f"feature/{l + 1}", "rms"))
        if o.coupling == "subsample":
            specs.append((f"coupling gap, block {l + 1}", res.coupling[done][..., l],
                          f"coupling/{l + 1}", "rms"))
        specs.append((f"sliced W₂, block {l + 1}", res.sliced_w2[done][..., l], None, "floor"))
    return specs


def _width_panels(res, done):
    """The gap-vs-width panels with data at the first or last gap time: (title, rate
    name, kind, {time index: (per-seed gaps, their reduction)}), and the titles of the
    measures left out (zero or undefined at both times)."""
    panels, missing = [], []
    for title, g, rname, kind in _panel_specs(res, done):
        series = {}
        for j in sorted({0, len(res.t) - 1}):
            if kind == "bias":
                red = bias_gaps(res.outputs[done][:, :, j], res.reference.outputs[j])
                per = red[:, None]
            else:
                per = g[:, :, j]
                red = _rms(per)
            if np.any(np.isfinite(red) & (red > 0)):
                series[j] = (per, red)
        if series:
            panels.append((title, rname, kind, series))
        else:
            missing.append(title)
    return panels, missing


def gap_width_figure(res: GapResult, fig: Figure | None = None) -> Figure:
    """Each gap against the width on log–log axes at the first and the last gap time:
    every seed (dots), their RMS (markers), the fitted line with its slope β and the band
    of the rate's interval; one panel per measure that has data (a gap that is zero at
    both times, e.g. the coupling gap of a frozen block, has no panel; the figure's
    footnote names it).  Returns the Figure."""
    done = _finished(res)
    o = res.options
    t = res.t
    xname = "width m" if not res.rates else res.rates["function"]["x"]
    x = res.widths.astype(float)
    if res.rates:
        x = effective_widths(res.widths, o.M, o.coupling)
    x = x[done]
    panels, missing = _width_panels(res, done)
    if not panels:
        raise ValueError(f"{res.path or 'the sweep'}: every gap is zero or undefined")
    ncol = min(3, len(panels))
    nrow = -(-len(panels) // ncol)
    if fig is None:
        fig, axes = new_figure((5 * ncol, 4 * nrow + 0.6), nrow, ncol, squeeze=False)
    else:
        axes = fig.subplots(nrow, ncol, squeeze=False)
    colors = {0: "tab:blue", len(t) - 1: "tab:red"}
    for ax, (title, rname, kind, series) in zip(axes.flat, panels):
        for j, (per, red) in series.items():
            rate = res.rates.get(rname) if rname else None
            _rate_panel(ax, x, per, red, rate, j, f"t = {t[j]:.4g}", colors[j], xname)
            if kind == "floor":
                l = int(title.rsplit(" ", 1)[1]) - 1
                ax.plot(x, res.sliced_w2_floor[done][:, j, l], "--", color=colors[j], lw=1,
                        label=f"noise floor, t = {t[j]:.4g}")
        ax.set_title(title)
        ax.set_ylabel("gap (RMS over seeds)" if kind != "bias" else "gap of the seed mean")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    ref = (f"the width-{o.reference_width[0]} reference" if not o.limit else
           "the exact limit (f_M: the limit's f)")
    fig.suptitle(f"{gap_label(res)}\ngap to {ref} against the width ({o.seeds} seeds, "
                 f"{o.coupling} coupling"
                 + (", " + SAMPLE_NOTES[o.samples] if SAMPLE_NOTES[o.samples] else "") + ")",
                 fontsize=10)
    if missing:
        fig.supxlabel("zero or undefined at the first and last gap times (no panel): " + "; ".join(missing),
                      fontsize=8)
    return fig


def gap_time_figure(res: GapResult, fig: Figure | None = None) -> Figure:
    """The RMS function gap and the mean test-loss gap against flow time, one line per
    width.  Returns the Figure."""
    import matplotlib

    done = _finished(res)
    t = res.t
    if fig is None:
        fig, axes = new_figure((11, 4.4), 1, 2)
    else:
        axes = fig.subplots(1, 2)
    cmap = matplotlib.colormaps["viridis"]
    for i, w in enumerate(done):
        c = cmap(i / max(1, len(done) - 1))
        g = _rms(res.function[w], axis=0)
        lo = np.abs(np.mean(res.loss_test[w], axis=0))
        axes[0].plot(t, np.where(g > 0, g, np.nan), "-o", ms=3, color=c, label=f"m = {res.widths[w]}")
        axes[1].plot(t, np.where(lo > 0, lo, np.nan), "-o", ms=3, color=c)
    axes[0].set_ylabel("RMS function gap ‖f_m − f_M‖")
    axes[1].set_ylabel("|mean test-loss gap L_m − L_M|")
    for ax in axes:
        ax.set_xlabel("flow time t")
        ax.set_yscale("log")
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle(f"{gap_label(res)}\ngaps against flow time", fontsize=10)
    return fig


def beta_axes(res: GapResult, ax: Axes | None = None) -> Axes:
    """β(t) of the function gap and of the seed-averaged function, with the band of
    their interval and the lines β = 1/2 and β = 1.  Returns the Axes.  Raises
    ValueError before the sweep's rates are computed."""
    if not res.rates:
        raise ValueError(f"{res.path or 'the sweep'}: no rates yet (the sweep is not complete)")
    ax = _axes(ax, (6.4, 4.4))
    t = res.t
    for name, color, lab in (("function", "tab:blue", "function gap (single networks)"),
                             ("bias", "tab:orange", "seed-averaged function"),
                             ("bias_debiased", "tab:green", "bias without the seeds' noise")):
        r = res.rates.get(name)
        if r is None or not np.any(np.isfinite(r["beta"])):   # older files; not resolved
            continue
        ax.plot(t, r["beta"], "-o", ms=3, color=color, label=lab)
        ax.fill_between(t, r["beta_lo"], r["beta_hi"], color=color, alpha=0.2, lw=0)
    ax.axhline(0.5, color="gray", ls="--", lw=1, label="β = 1/2 (fluctuations)")
    ax.axhline(1.0, color="gray", ls=":", lw=1, label="β = 1 (bias)")
    ax.set_xlabel("flow time t")
    ax.set_ylabel("rate β (gap ∝ x^−β)")
    ax.set_title(f"{gap_label(res)}\nfitted rate, {_interval_name(res.rates['function'])} band; "
                 f"x = {res.rates['function']['x']}", fontsize=8)
    ax.legend(fontsize=7)
    return ax


def _bias_points(ax, x, b, e, color, label, fmt) -> None:
    """Debiased squared biases ``b`` ± 2 standard errors ``e`` at ``x``: markers with bars
    where b > 2e, upper bounds (▽ at b + 2e, when positive: a log axis) elsewhere."""
    sig = b > 2 * e
    if sig.any():
        ax.errorbar(x[sig], b[sig], yerr=np.minimum(2 * e[sig], 0.999 * b[sig]), fmt=fmt, ms=4,
                    color=color, capsize=2, label=label)
    up = ~sig & np.isfinite(e) & (b + 2 * e > 0)
    if up.any():
        ax.plot(x[up], b[up] + 2 * e[up], "v", ms=5, mfc="none", color=color,
                label=label + ": upper bounds")


def bias_axes(res: GapResult, ax: Axes | None = None, times: Sequence[int] | None = None) -> Axes:
    """The squared bias of the seed-averaged function without the seeds' noise
    (:meth:`GapResult.bias_squared`: an unbiased estimate of ‖E f_m − f_M‖²) against the
    width, at the gap times of index ``times`` (default: the first and the last), with
    bars of ± 2 standard errors; an estimate less than 2 standard errors above 0 is drawn
    as an upper bound (▽ at B + 2 se), and the fit C² m^(−2β) of the rate
    "bias_debiased" where the seeds resolve it.  Returns the Axes."""
    done = _finished(res)
    if res.options.seeds < 3:
        raise ValueError(f"{res.path or 'the sweep'}: the bias's standard error needs 3 seeds "
                         f"or more, the sweep has {res.options.seeds}")
    ax = _axes(ax, (6.4, 4.4))
    B, se = res.bias_squared()
    x = effective_widths(res.widths, res.options.M, res.options.coupling)[done]
    times = sorted({0, len(res.t) - 1}) if times is None else list(times)
    colors = [f"C{i % 10}" for i in range(len(times))]
    rate = res.rates.get("bias_debiased") if res.rates else None
    for c, j in zip(colors, times):
        _bias_points(ax, x, B[done, j], se[done, j], c, f"t = {res.t[j]:.4g}", "o")
        if rate is not None and np.isfinite(rate["beta"][j]):
            C, beta = rate["C"][j], rate["beta"][j]
            ax.plot(x, C * C * x ** (-2 * beta), "-", color=c, lw=1,
                    label=f"fit: ({C:.3g} m^−{beta:.2f})²")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(res.rates["function"]["x"] if res.rates else "width m")
    ax.set_ylabel("‖E f_m − f_M‖² (debiased)")
    if not ax.has_data():   # every estimate NaN (a diverged width)
        ax.text(0.5, 0.5, "no finite estimate", transform=ax.transAxes, ha="center")
    ax.set_title(f"{gap_label(res)}\nsquared bias of the seed mean, ± 2 se "
                 f"({res.options.seeds} seeds)", fontsize=8)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return ax


def samples_axes(results: Sequence[GapResult], ax: Axes | None = None, time: int = -1) -> Axes:
    """The seed mean's squared bias without the seeds' noise against the width at gap
    time index ``time``, one curve per training-set size N of a sample sweep
    (:func:`meanfield.discretization.sample_sweep`): with a fixed sample the curves
    flatten at the sample floor of their N.  Bars are ± 2 standard errors; an estimate
    less than 2 standard errors above 0 is drawn as an upper bound (▽).  Returns the Axes."""
    results = sorted(results, key=lambda r: int(r.config["data"]["n_train"]))
    if not results:
        raise ValueError("samples_axes: no sweeps given")
    ax = _axes(ax, (6.4, 4.4))
    for i, r in enumerate(results):
        done = _finished(r)
        if r.options.seeds < 3:
            raise ValueError(f"{r.path or 'a sweep'}: the bias's standard error needs 3 seeds or more")
        B, se = r.bias_squared()
        _bias_points(ax, r.widths[done].astype(float), B[done, time], se[done, time],
                     f"C{i % 10}", f"N = {int(r.config['data']['n_train'])}", "-o")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width m")
    ax.set_ylabel("‖E f_m − f_M‖² (debiased)")
    r0 = results[0]
    ax.set_title(f"{gap_label(r0)}\nsquared bias of the seed mean at t = {r0.t[time]:.4g} "
                 f"against m and N (▽: upper bounds, 2 se)", fontsize=8)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return ax


def decomposition_figure(res: GapResult, fig: Figure | None = None) -> Figure:
    """The terms of the [RZG] bound over time for the reference and the narrowest and
    widest members (seed means).  Returns the Figure.  Raises ValueError for a sweep of
    networks that are not of two blocks (no decomposition)."""
    if res.decomposition is None:
        raise ValueError(f"{res.path or 'the sweep'}: no decomposition (two-block networks only)")
    done = _finished(res)
    o = res.options
    t = res.t
    terms = ("first_block", "feature_error", "perfect_first", "bound", "mse")
    if fig is None:
        fig, axes = new_figure((15, 4.4), 1, 3, sharey=True)
    else:
        axes = fig.subplots(1, 3, sharey=True)
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
    fig.suptitle(f"{gap_label(res)}\nthe [RZG] loss decomposition", fontsize=10)
    return fig


def plot_gap(res: GapResult, outdir: str | os.PathLike[str], format: str = "png") -> list[str]:
    """Write the figures of a width sweep into ``outdir`` (created if needed) as
    ``format`` (png, pdf or svg): gap-vs-width, gap-vs-time, beta (once the rates are
    computed), bias (three seeds or more), decomposition (two-block networks).  Returns the written paths."""
    _check_format(format)
    _finished(res)
    os.makedirs(outdir, exist_ok=True)
    figures = [("gap-vs-width", gap_width_figure(res)), ("gap-vs-time", gap_time_figure(res))]
    if res.rates:
        figures.append(("beta", beta_axes(res).figure))
    if res.options.seeds >= 3:
        figures.append(("bias", bias_axes(res).figure))
    if res.decomposition is not None:
        figures.append(("decomposition", decomposition_figure(res)))
    return [save_figure(fig, outdir, f"{name}.{format}", tight=False) for name, fig in figures]
