"""The result of a width sweep, :class:`GapResult`: what :func:`.sweep.sweep` returns,
what :mod:`.gapfile` writes and :func:`.gapfile.open_gap` reads back.

Arrays are named by the dimensions W (widths), S (seeds), T (gap times), L (blocks) and
N (test points); the names of the member arrays, grouped by shape, are the constants
below, so the sweep, the gap file and the figures share one list.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

from .. import config as C
from ..analysis import gap_dataframe, gap_xarray
from .decomposition import Decomposition

if TYPE_CHECKING:
    import pandas
    import xarray

    from ..network import Network
from .measures import output_gap
from .options import SAMPLE_NOTES, SweepOptions, reference_config
from .rates import (COVERAGE, FEW_SEEDS, bias_squared, extrapolate, fit_bias_rate,
                    fit_debiased_bias_rate, fit_rate, width_label)

# the [RZG] decomposition's terms, in the order of the Decomposition dataclass
DECOMPOSITION_TERMS = tuple(f.name for f in fields(Decomposition) if f.name != "kappa")
PER_SEED = ("function", "loss_train", "loss_test")                  # (W, S, T)
PER_BLOCK = ("feature", "coupling", "w2", "sliced_w2", "mmd2")      # (W, S, T, L)
FLOORS = ("w2_floor", "sliced_w2_floor")                            # (W, T, L)
ARRAYS = PER_SEED + PER_BLOCK + ("outputs",) + FLOORS               # outputs: (W, S, T, N)
REFERENCE_ARRAYS = ("theta", "outputs", "loss_train", "loss_test")  # (T, P), (T, N), (T,), (T,)
RATE_FIELDS = ("beta", "beta_lo", "beta_hi", "C")


@dataclass(repr=False, eq=False)
class Trace:
    """The reference task's record at the T gap times (what every width task receives).

    t (T,) flow times;  step (T,) int64 steps;  theta (T, P) the reference's particles
    outputs (T, N) f_M on the test sample;  loss_train, loss_test (T,)
    features: list over blocks of (T, N, k_l), the block outputs on the test sample
    decomposition (T, 7) the [RZG] terms (DECOMPOSITION_TERMS), two-block networks only
    (else None);  w2_floor, sliced_w2_floor (W, T, L) the distances between two
    disjoint samples of the reference's cloud, of each width's cloud size
    status, message: how the reference run ended ("complete", "diverged")

    Against the limit (``options.reference == "limit"``): theta (T, P) is the limit's
    state (:class:`meanfield.limit.TwoLayerLimit` or
    :class:`~meanfield.limit.ThreeLayerLimit`: the nodes' r = ‖u‖, c, v, then a second
    block's a, b, w, then the output bias), ``weights`` the nodes' fixed quadrature
    weights (each block's, concatenated), ``error`` (T,) the estimate of the error of
    ``outputs``: ‖F_n − F_{n/2}‖ in L²(data law) against the limit with half the nodes
    per rule (None for a network reference); the floors are distances between two
    samples of the limit's law; the losses are the population loss ½ E (F − g)².
    """

    t: np.ndarray
    step: np.ndarray
    theta: np.ndarray
    outputs: np.ndarray
    loss_train: np.ndarray
    loss_test: np.ndarray
    features: list
    decomposition: np.ndarray | None
    w2_floor: np.ndarray
    sliced_w2_floor: np.ndarray
    status: str
    message: str
    weights: np.ndarray | None = None
    error: np.ndarray | None = None

    def __repr__(self) -> str:
        what = (f"P = {self.theta.shape[1]}" if self.weights is None else
                f"the limit, {self.weights.size} nodes, estimated error <= {np.max(self.error):.2g}")
        return (f"<Trace {self.status}: {len(self.t)} gap times, t = 0 … {self.t[-1]:.6g}, "
                f"{what}, {len(self.features)} blocks>")


@dataclass(repr=False, eq=False)
class GapResult:
    """A width sweep: options, reference trace, members' gaps, rates.

    Arrays (W widths, S seeds, T gap times, L blocks, N test points):

    widths (W,) the first block's widths;  block_widths (W, L);  seeds (S,);  t, steps (T,)
    function (W, S, T) ‖f_m − f_M‖ on the test sample
    loss_train, loss_test (W, S, T) L_m − L_M
    feature, coupling, w2, sliced_w2, mmd2 (W, S, T, L);  w2_floor, sliced_w2_floor (W, T, L)
    outputs (W, S, T, N) f_m on the test sample;  decomposition: dict term -> (W, S, T)
    (two-block networks; None otherwise).  Member arrays are None until the reference
    has finished (:meth:`set_reference`), NaN for widths not yet done.
    reference: the reference's :class:`Trace` (None until it has finished)
    done (W,) bool;  status (W,) str per width ("" until it ran)
    theta: list of (S, P_w) final particles per width (None until it ran);  sigma: list
    (per width) of lists (per block) of (S, m_l), subsample coupling only
    rates: dict name -> {"beta", "beta_lo", "beta_hi", "C"} (T,) arrays, with "x" (what
    the width axis is), "level", "n_boot"; names "function", "bias" (‖f̄_m − f_M‖ with f̄_m the
    seed mean, noise included), "bias_debiased" (‖E f_m − f_M‖, fitted to
    :meth:`bias_squared`; NaN where the seeds do not resolve it), "feature/<l>",
    "coupling/<l>" (1-based l); empty until the sweep is complete
    extrapolation: dict (see :meth:`compute_rates`)
    file_status, file_message: the status of the sweep as its gap file records it
    ("running", "interrupted", "complete", "diverged"); path, created, attrs: of the
    gap file it was read from or written to
    """

    config: dict
    options: SweepOptions
    x_test: np.ndarray
    y_test: np.ndarray
    done: np.ndarray = None
    status: list = None
    theta: list = None
    sigma: list = None
    reference: Trace | None = None
    function: np.ndarray | None = None
    loss_train: np.ndarray | None = None
    loss_test: np.ndarray | None = None
    feature: np.ndarray | None = None
    coupling: np.ndarray | None = None
    w2: np.ndarray | None = None
    sliced_w2: np.ndarray | None = None
    mmd2: np.ndarray | None = None
    outputs: np.ndarray | None = None
    w2_floor: np.ndarray | None = None
    sliced_w2_floor: np.ndarray | None = None
    decomposition: dict | None = None
    rates: dict = field(default_factory=dict)
    extrapolation: dict = field(default_factory=dict)
    file_status: str = ""
    file_message: str = ""
    path: str | None = None
    created: str | None = None
    attrs: dict = field(default_factory=dict)

    def __post_init__(self):
        self.x_test, self.y_test = np.asarray(self.x_test), np.asarray(self.y_test)
        W = self.options.W
        if self.done is None:
            self.done = np.zeros(W, dtype=bool)
        if self.status is None:
            self.status = [""] * W
        if self.theta is None:
            self.theta = [None] * W
        if self.sigma is None:
            self.sigma = [None] * W
        self._template = None

    def __repr__(self) -> str:
        o = self.options
        state = self.file_status or ("complete" if self.complete else "incomplete")
        return (f"<GapResult {state}: widths {list(map(int, self.widths))} x {o.seeds} seeds, "
                f"reference {self.reference_description}, coupling {o.coupling}, "
                f"{len(self.t)} gap times, {int(self.done.sum())}/{o.W} widths done"
                + (f", {self.path}" if self.path else "") + ">")

    @property
    def reference_description(self) -> str:
        """"[M_1, …]" for a network reference; "the limit (n nodes, …)" against the limit."""
        o = self.options
        if not o.limit:
            return str(list(o.reference_width))
        nodes = "" if self.reference is None else f"{self.reference.weights.size} nodes, "
        rule = ", homogeneous rule" if o.limit_rule == "homogeneous" else ""
        return (f"the limit ({nodes}rules of {o.limit_nodes} and {o.limit_norm_nodes} nodes{rule})")

    def to_dataframe(self) -> pandas.DataFrame:
        """The members' gaps as a pandas DataFrame indexed by (width, seed, t)
        (:func:`meanfield.analysis.gap_dataframe`; needs pandas)."""
        return gap_dataframe(self)

    def to_xarray(self) -> xarray.Dataset:
        """The sweep as a labelled xarray Dataset over width, seed, t, block and point,
        with the reference's losses and the rates over t
        (:func:`meanfield.analysis.gap_xarray`; needs xarray)."""
        return gap_xarray(self)

    @property
    def data(self) -> dict:
        """The member arrays by name (:data:`ARRAYS`, then "decomposition")."""
        out = {k: getattr(self, k) for k in ARRAYS}
        out["decomposition"] = self.decomposition
        return out

    def mark(self, status: str, message: str = "") -> None:
        """Set the sweep's status (what its gap file records next)."""
        self.file_status, self.file_message = status, message

    # -- shape helpers --
    @property
    def widths(self) -> np.ndarray:
        return self.options.m

    @property
    def block_widths(self) -> np.ndarray:
        return np.array(self.options.widths)

    @property
    def seeds(self) -> np.ndarray:
        return np.arange(self.options.seeds)

    @property
    def t(self) -> np.ndarray:
        return self.reference.t if self.reference is not None else np.zeros(0)

    @property
    def steps(self) -> np.ndarray:
        return self.reference.step if self.reference is not None else np.zeros(0, dtype=np.int64)

    @property
    def complete(self) -> bool:
        return self.reference is not None and bool(self.done.all())

    def set_reference(self, trace: Trace) -> None:
        """Take the reference task's trace and allocate the members' arrays (NaN)."""
        self.reference = trace
        W, S, T, L = self.options.W, self.options.seeds, len(trace.t), len(trace.features)
        N = self.x_test.shape[0]
        for k in PER_SEED:
            setattr(self, k, np.full((W, S, T), np.nan))
        for k in PER_BLOCK:
            setattr(self, k, np.full((W, S, T, L), np.nan))
        self.outputs = np.full((W, S, T, N), np.nan)
        for k in FLOORS:
            setattr(self, k, np.asarray(getattr(trace, k)))
        self.decomposition = ({k: np.full((W, S, T), np.nan) for k in DECOMPOSITION_TERMS}
                              if trace.decomposition is not None else None)

    def set_width(self, w: int, res: dict) -> None:
        """Take width index ``w``'s task result."""
        ref = self.reference
        self.function[w] = res["function"]
        self.loss_train[w] = res["loss_train"] - ref.loss_train[None, :]
        self.loss_test[w] = res["loss_test"] - ref.loss_test[None, :]
        for k in PER_BLOCK + ("outputs",):
            getattr(self, k)[w] = res[k]
        if self.decomposition is not None:
            for i, k in enumerate(DECOMPOSITION_TERMS):
                self.decomposition[k][w] = res["decomposition"][..., i]
        self.theta[w] = np.asarray(res["theta"])
        self.sigma[w] = res["sigma"]
        self.status[w] = res["status"]
        self.done[w] = True

    def template(self) -> Network:
        """The reference's initial network (its architecture, and the initial particles):
        a copy, made once (every write of the file needs the architecture)."""
        if self._template is None:
            self._template = C.make_network(reference_config(self.config, self.options))
        return self._template.copy()

    def bias_squared(self) -> tuple:
        """``(B, se)``, both (W, T): the unbiased estimate of ‖E f_m − f_M‖² (the squared
        bias of width m's seed-averaged function, L² over the test sample, without the
        noise that averaging the seeds leaves; it can be negative) and its standard error
        (Hoeffding's, :func:`.rates.bias_squared`), NaN for widths not done."""
        W, T = self.options.W, len(self.t)
        B, se = np.full((W, T), np.nan), np.full((W, T), np.nan)
        if self.reference is None:
            return B, se
        for j in range(T):
            f = self.outputs[:, :, j]
            ok = np.isfinite(f).all(axis=(1, 2))
            if ok.any():
                B[ok, j], se[ok, j] = bias_squared(f[ok], self.reference.outputs[j])
        return B, se

    # -- rates --
    def compute_rates(self) -> None:
        """Fit the rates at every gap time and extrapolate (needs every width done).

        Rates: the RMS gap of single networks ("function"), the gap of the seed-averaged
        function ("bias"), the bias without the seeds' noise ("bias_debiased",
        :func:`.rates.fit_debiased_bias_rate`), the feature and coupling gaps per block;
        against the effective width (1/m ∓ 1/M)⁻¹ of the first block (see :func:`.rates.effective_widths`).
        A time where a measure is zero or not finite for some member gets NaN.
        Extrapolation: the seed-mean test loss at every time (Richardson, in 1/m or 1/√m,
        whichever fits better) against the reference's; at the last time, f on the test
        sample point by point, and its L² distance to f_M next to the widest member's.
        """
        o = self.options
        m = self.widths
        T, L = len(self.t), len(self.reference.features)
        kw = dict(M=o.M, coupling=o.coupling, n_boot=o.n_boot, level=o.level,
                  interval=o.interval)
        series = {"function": self.function}
        for l in range(L):
            series[f"feature/{l + 1}"] = self.feature[..., l]
            if o.coupling == "subsample":
                series[f"coupling/{l + 1}"] = self.coupling[..., l]
        rates = {}
        for name, g in list(series.items()) + [("bias", None), ("bias_debiased", None)]:
            r = {k: np.full(T, np.nan) for k in RATE_FIELDS}
            for j in range(T):
                if name.startswith("bias"):
                    f = self.outputs[:, :, j]
                    if not np.isfinite(f).all():
                        continue
                    fit = (fit_bias_rate(m, f, self.reference.outputs[j], seed=j, **kw)
                           if name == "bias" else
                           fit_debiased_bias_rate(m, f, self.reference.outputs[j], M=o.M,
                                                  coupling=o.coupling, level=o.level))
                else:
                    gj = g[:, :, j]
                    if not (np.isfinite(gj).all() and (gj > 0).all()):
                        continue
                    fit = fit_rate(m, gj, seed=j, **kw)
                for k in r:
                    r[k][j] = getattr(fit, k)
            debiased = name == "bias_debiased"   # always a jackknife, no resamples
            r.update(x=width_label(kw["M"], o.coupling), level=o.level,
                     n_boot=0 if debiased else o.n_boot,
                     interval="jackknife" if debiased else o.interval)
            rates[name] = r
        self.rates = rates
        ex = {"value": np.full(T, np.nan), "error": np.full(T, np.nan),
              "variable": [""] * T, "reference": np.asarray(self.reference.loss_test)}
        if m.size >= 3:
            for j in range(T):
                vals = np.mean(self.loss_test[:, :, j], axis=1) + self.reference.loss_test[j]
                if np.isfinite(vals).all():
                    e = extrapolate(m, vals)
                    ex["value"][j], ex["error"][j], ex["variable"][j] = e.value, e.error, e.variable
        fx = {}
        f = self.outputs[:, :, -1].mean(axis=1)   # (W, N)
        if m.size >= 3 and np.isfinite(f).all():
            e = extrapolate(m, f)
            fref = self.reference.outputs[-1]
            fx = {"variable": e.variable, "extrapolated_gap": output_gap(e.value, fref),
                  "widest_gap": output_gap(f[-1], fref)}
        self.extrapolation = {"test_loss": ex, "function": fx}

    # -- text summary --
    def summary(self) -> str:
        o = self.options
        lines = []
        status = self.file_status or ("complete" if self.complete else "incomplete")
        if status == "running" and not self.complete:
            status = "incomplete (resume with --resume)"
        lines.append(f"sweep: {status}; {o.W} widths {list(map(int, self.widths))} x {o.seeds} "
                     f"seeds, reference {self.reference_description}, coupling {o.coupling}"
                     + (", " + SAMPLE_NOTES[o.samples] if SAMPLE_NOTES[o.samples] else ""))
        lines.append(f"done: {int(self.done.sum())}/{o.W} widths" +
                     ("" if self.reference is not None else "; the reference has not finished"))
        if self.reference is not None:
            lines.append(f"gap times: {len(self.t)} (every {o.every} steps), t = 0 … {self.t[-1]:.6g}; "
                         f"reference {self.reference.status}, test loss "
                         f"{self.reference.loss_test[0]:.4e} -> {self.reference.loss_test[-1]:.4e}"
                         + (" (population)" if o.limit else ""))
            if self.reference.error is not None:
                lines.append(f"the limit's error (f against half the nodes per rule, L2 of the data "
                             f"law): at most {np.nanmax(self.reference.error):.2e} over the gap times")
        if self.reference is not None and self.done.any():
            w = int(np.flatnonzero(self.done)[-1])
            j = len(self.t) - 1
            what = ("of at most {n} particles in the limit's coordinates (block 1: |u|, c, v; "
                    "seeded subsamples of the member, draws from the limit's law)" if o.limit else
                    "of at most {n} particles (seeded subsamples of member and reference)")
            lines.append(f"distances between clouds {what.format(n=o.distance_size)}, at "
                         f"t = {self.t[j]:.4g} for m = "
                         f"{int(self.widths[w])} (mean over seeds; noise floor in brackets):")
            for l in range(len(self.reference.features)):
                lines.append(f"  block {l + 1}: W2 {np.mean(self.w2[w, :, j, l]):.4g} "
                             f"[{self.w2_floor[w, j, l]:.4g}], sliced W2 "
                             f"{np.mean(self.sliced_w2[w, :, j, l]):.4g} [{self.sliced_w2_floor[w, j, l]:.4g}], "
                             f"MMD2 {np.mean(self.mmd2[w, :, j, l]):.3g}")
        if self.rates:
            r = self.rates["function"]
            b = self.rates["bias"]
            how = ("jackknife t interval over seeds" if r.get("interval") == "jackknife" else
                   f"percentile bootstrap interval over seeds, {r['n_boot']} resamples")
            lines.append(f"rate of the function gap against {'the width ' if r['x'] == 'm' else 'the '}"
                         f"{r['x']} ({100 * r['level']:.0f} % {how}):")
            for j in sorted({0, len(self.t) - 1}):
                lines.append(f"  t = {self.t[j]:<10.4g} beta = {r['beta'][j]:.3f} "
                             f"[{r['beta_lo'][j]:.3f}, {r['beta_hi'][j]:.3f}];  bias (seed-averaged) "
                             f"beta = {b['beta'][j]:.3f} [{b['beta_lo'][j]:.3f}, {b['beta_hi'][j]:.3f}]")
                db = self.rates.get("bias_debiased")
                if db is not None:
                    lines.append(
                        f"  {'':<14}bias without the seeds' noise: " +
                        ("not resolved by these seeds" if not np.isfinite(db["beta"][j]) else
                         f"beta = {db['beta'][j]:.3f} [{db['beta_lo'][j]:.3f}, "
                         f"{db['beta_hi'][j]:.3f}], C = {db['C'][j]:.3g}"
                         if np.isfinite(db["beta_lo"][j]) else
                         f"beta = {db['beta'][j]:.3f}, C = {db['C'][j]:.3g} (no interval: without "
                         "some seed it is not resolved)"))
            if o.seeds < FEW_SEEDS:
                cov = COVERAGE[o.interval]
                lines.append(f"  note: with {o.seeds} seeds the intervals are too short: a "
                             f"nominal 90 % {o.interval} interval covered the true rate "
                             f"{100 * cov[5]:.0f} % of the time at 5 seeds and {100 * cov[10]:.0f} % "
                             f"at 10 (`python -m benchmarks coverage`); use {FEW_SEEDS} seeds or more")
            ex = self.extrapolation.get("test_loss")
            if ex is not None and np.isfinite(ex["value"][-1]):
                lines.append(f"test loss at the end extrapolated to m -> inf (in {ex['variable'][-1]}): "
                             f"{ex['value'][-1]:.4e} +- {ex['error'][-1]:.1e}; reference "
                             f"{ex['reference'][-1]:.4e}")
            fx = self.extrapolation.get("function")
            if fx:
                lines.append(f"f at the end extrapolated (in {fx['variable']}): gap to "
                             f"{'the limit' if o.limit else 'f_M'} "
                             f"{fx['extrapolated_gap']:.3e}, against {fx['widest_gap']:.3e} for the "
                             "widest members' mean")
        return "\n".join(lines)
