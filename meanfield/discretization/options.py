"""The options of a width sweep (:class:`SweepOptions`), their checks against the
experiment's configuration (:func:`make_options`), and the reference's configuration.

Everything a sweep needs is checked here, before anything trains: the configuration's
solver and data, the widths against the reference under the chosen coupling, and the
sizes of the distance clouds.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import numpy as np

from solvers.rk import get_method

from .. import config as C
from ..experiment import Experiment
from .coupling import COUPLINGS
from .rates import INTERVALS


class SweepError(ValueError):
    """Bad sweep options or configuration (one line; the command line exits with 2)."""


# ----------------------------------------------------------------------------------
# options
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepOptions:
    """The options of a sweep (stored in the gap file).

    widths : (W, L) the members' widths per block (increasing in the first block)
    seeds : S, the number of members per width (seeds 0 … S−1)
    reference_width : (L,) the reference's widths M_l
    coupling : "subsample" or "independent" (see :mod:`.coupling`)
    every : steps between gap times
    distance_size : n_d, the size of the clouds that W₂, sliced W₂ and MMD² compare: a
        member larger than n_d and the reference are subsampled (seeded, the same
        particles at every time) to n_d particles (default min(256, M/2))
    n_projections : directions of the sliced W₂;  bandwidth : of the MMD kernel (None:
        median heuristic)
    n_boot, level : bootstrap resamples (percentile intervals) and level of the rate
        intervals;  interval : "jackknife" (t times the delete-one-seed standard error,
        the default) or "percentile" (bootstrap; what files before it record), see
        :class:`.rates.RateFit`
    reference : "network" (the M-particle network of ``reference_width``) or "limit" (the
        exact m, N → ∞ limit, :func:`meanfield.config.make_limit`; members are
        independent draws, and ``reference_width`` is only the widest member's widths,
        the architecture the file records)
    limit_nodes, limit_norm_nodes : the limit's rules (nodes per coordinate of the initial
        law, per piece of the norm law); the limit with half as many of each gives the
        reference's error estimate
    limit_rule : the rule of the limit's first-block initial law, "tensor" or
        "homogeneous" (ReLU, Gaussian laws, bottleneck 1 for two blocks:
        :func:`meanfield.limit.homogeneous_rule`)
    samples : "fixed" (members train on the configuration's ``data.n_train`` points),
        "fresh" (``data.n_train`` new points every step, the same for the reference and
        every member: against the limit their seed mean keeps that one stream's
        deviation from the population flow) or "independent" (new points every step
        from each member's own stream, so that against the limit the seed mean averages
        the sample noise away with the initial particles' and converges to the
        population flow; docs/math.md §8.2)
    """

    widths: tuple
    seeds: int
    reference_width: tuple
    coupling: str = "subsample"
    every: int = 100
    distance_size: int = 256
    n_projections: int = 64
    bandwidth: float | None = None
    n_boot: int = 1000
    level: float = 0.9
    reference: str = "network"
    limit_nodes: int = 16
    limit_norm_nodes: int = 64
    samples: str = "fixed"
    interval: str = "jackknife"
    limit_rule: str = "tensor"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = [list(w) for w in self.widths]
        d["reference_width"] = list(self.reference_width)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SweepOptions":
        d = dict(d)
        d["widths"] = tuple(tuple(int(x) for x in w) for w in d["widths"])
        d["reference_width"] = tuple(int(x) for x in d["reference_width"])
        d.setdefault("interval", "percentile")   # files written before the jackknife
        d.setdefault("limit_rule", "tensor")     # files written before the homogeneous rule
        return cls(**d)

    @property
    def limit(self) -> bool:
        """Whether the reference is the exact limit."""
        return self.reference == "limit"

    @property
    def M(self):
        """The reference's first-block width, or None for the limit (the rates' width axis)."""
        return None if self.limit else self.reference_width[0]

    @property
    def W(self) -> int:
        return len(self.widths)

    @property
    def m(self) -> np.ndarray:
        """(W,) the first block's widths: the sweep variable."""
        return np.array([w[0] for w in self.widths])


def check_int(name, v, lo=1) -> int:
    """``v`` as an int, or SweepError naming ``name`` when it is not an integer >= ``lo``."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise SweepError(f"{name}: expected an integer >= {lo}, got {v!r}")
    return int(v)


def _scaled(base, m) -> tuple:
    """Widths per block for sweep width m: the configured widths scaled together."""
    top = max(base)
    return tuple(max(1, int(round(m * b / top))) for b in base)


def _check_config(cfg: dict) -> None:
    sv = cfg["solver"]
    if get_method(sv["method"]).adaptive:
        raise SweepError(f"solver.method: a sweep compares networks at common flow times and needs "
                         f"a fixed-step method, got the adaptive {sv['method']!r}")
    if sv.get("loss_tol") is not None:
        raise SweepError("solver.loss_tol: members would stop at different times; a sweep stops "
                         "by solver.steps or solver.t_end")
    if sv.get("steps") is None and sv.get("t_end") is None:
        raise SweepError("solver: a sweep needs solver.steps or solver.t_end")
    if int(cfg["data"]["n_test"]) < 2:
        raise SweepError("data.n_test: the gaps are measured on the test sample; give at least 2 points")


REFERENCES = ("network", "limit")
SAMPLES = ("fixed", "fresh", "independent")
SAMPLE_NOTES = {"fixed": "", "fresh": "fresh samples every step (shared)",
                "independent": "fresh samples every step (each member its own)"}


def make_options(cfg: dict, *, widths, seeds: int = 5, reference_width=None,
                 coupling=None, every=None, distance_size=None,
                 n_projections: int = 64, bandwidth=None, n_boot: int = 1000,
                 level: float = 0.9, reference: str = "network", limit_nodes: int = 16,
                 limit_norm_nodes: int = 64, samples: str = "fixed",
                 interval: str = "jackknife", limit_rule: str = "tensor") -> SweepOptions:
    """Check the options against the configuration ``cfg`` (resolved) and resolve them.

    ``widths``: a list of widths m (every block scaled with the configuration's widths:
    [1024, 512] swept at m gives [m, m/2]) or a list of per-block lists.
    ``reference_width``: M (scaled the same way) or a per-block list; default: the
    configured widths.  ``coupling``: default "subsample", and "independent" (the only
    one) against the limit.  ``every``: steps between gap times (default: the
    configuration's ``record.snapshot_every``).  ``reference="limit"`` checks that the
    limit solver reduces the configuration (building its rules) before anything trains.
    """
    _check_config(cfg)
    if reference not in REFERENCES:
        raise SweepError(f"reference: expected one of {', '.join(REFERENCES)}, got {reference!r}")
    if interval not in INTERVALS:
        raise SweepError(f"interval: expected one of {', '.join(INTERVALS)}, got {interval!r}")
    if limit_rule not in ("tensor", "homogeneous"):
        raise SweepError(f"limit rule: expected tensor or homogeneous, got {limit_rule!r}")
    if limit_rule != "tensor" and reference != "limit":
        raise SweepError("limit rule: the rule of the limit's initial law needs --reference limit")
    if samples not in SAMPLES:
        raise SweepError(f"samples: expected one of {', '.join(SAMPLES)}, got {samples!r}")
    limit = reference == "limit"
    limit_nodes = check_int("limit nodes", limit_nodes, 2)
    limit_norm_nodes = check_int("limit norm nodes", limit_norm_nodes, 4)
    if coupling is None:
        coupling = "independent" if limit else "subsample"
    if limit:
        if coupling != "independent":
            raise SweepError(f"coupling: members of the limit are independent draws from its "
                             f"initial laws, not {coupling!r}")
        if reference_width is not None:
            raise SweepError("reference width: the limit has no width; give it with a network "
                             "reference only")
        try:   # what it refuses, it refuses at any size
            C.make_limit(cfg, nodes=2, norm_nodes=4, rule=limit_rule)
        except C.ConfigError as e:
            raise SweepError(f"--reference limit: {e}") from None
    base = list(cfg["model"]["widths"])
    L = len(base)
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__") or len(widths) < 2:
        raise SweepError(f"widths: expected at least two widths, got {widths!r}")
    ws = []
    for w in widths:
        if np.isscalar(w):
            ws.append(_scaled(base, check_int("widths", w)))
        else:
            w = tuple(check_int("widths", x) for x in w)
            if len(w) != L:
                raise SweepError(f"widths: {list(w)} has {len(w)} entries; the network has {L} blocks")
            ws.append(w)
    if len(set(ws)) != len(ws):
        raise SweepError("widths: each width must appear once")
    ws.sort(key=lambda w: w[0])
    if limit:
        ref = ws[-1]
    elif reference_width is None:
        ref = tuple(base)
    elif np.isscalar(reference_width):
        ref = _scaled(base, check_int("reference width", reference_width))
    else:
        ref = tuple(check_int("reference width", x) for x in reference_width)
        if len(ref) != L:
            raise SweepError(f"reference width: expected {L} entries, got {len(ref)}")
    if coupling not in COUPLINGS:
        raise SweepError(f"coupling: expected one of {', '.join(COUPLINGS)}, got {coupling!r}")
    for w in ([] if limit else ws):
        for l, (a, b) in enumerate(zip(w, ref)):
            if coupling == "subsample" and not a < b:
                raise SweepError(f"widths: {a} in block {l + 1} is not below the reference's {b} "
                                 "(a subsample member is narrower than the reference)")
            if coupling == "independent" and not a <= b:
                raise SweepError(f"widths: {a} in block {l + 1} is above the reference's {b} (a "
                                 "member is at most as wide as the reference; raise "
                                 "--reference-width)")
    seeds = check_int("seeds", seeds, 2)
    every = check_int("every", cfg["record"]["snapshot_every"] if every is None else every)
    if distance_size is None:
        distance_size = 256 if limit else max(2, min(256, min(ref) // 2))
    distance_size = check_int("distance size", distance_size, 2)
    if not limit and 2 * distance_size > min(ref):
        raise SweepError(f"distance size: {distance_size} is more than half the reference width "
                         f"{min(ref)} (the noise floor needs two disjoint samples of it)")
    n_projections = check_int("projections", n_projections)
    if bandwidth is not None and not (isinstance(bandwidth, (int, float)) and bandwidth > 0
                                      and math.isfinite(bandwidth)):
        raise SweepError(f"bandwidth: expected a positive number, got {bandwidth!r}")
    n_boot = check_int("bootstrap resamples", n_boot, 10)
    if not (isinstance(level, float) and 0 < level < 1):
        raise SweepError(f"level: expected a number in (0, 1), got {level!r}")
    return SweepOptions(tuple(ws), seeds, ref, coupling, every, distance_size, n_projections,
                        None if bandwidth is None else float(bandwidth), n_boot, float(level),
                        reference, int(limit_nodes), int(limit_norm_nodes), samples, interval,
                        limit_rule)


def reference_config(cfg: dict, opts: SweepOptions) -> dict:
    """The configuration of the reference run: ``cfg`` at the reference widths."""
    c = copy.deepcopy(cfg)
    c["model"]["widths"] = list(opts.reference_width)
    return c


def reference_experiment(cfg: dict, opts: SweepOptions) -> Experiment:
    """The reference run's experiment (members start from its initial particles or
    from its initial laws)."""
    return C.build(reference_config(cfg, opts))


def parse_widths(text: str, flag: str = "--widths") -> list:
    """``16,32,64``; ``16,32,...,4096`` (a geometric grid: the ratio of the first two,
    up to the last); per-block widths with ``:`` (``16:8,32:16``)."""
    items = [t.strip() for t in text.split(",") if t.strip()]

    def one(t):
        try:
            v = [int(x) for x in t.split(":")]
        except ValueError:
            raise SweepError(f"{flag}: {t!r} is not " + ("a width (expected integers like 16, "
                             "or 16:8 per block)" if flag == "--widths" else "an integer")) from None
        return v[0] if len(v) == 1 else v

    if "..." in items:
        i = items.index("...")
        if i != 2 or len(items) != 4:
            raise SweepError(f"{flag}: write a geometric grid as A,B,...,Z (e.g. 16,32,...,4096)")
        a, b, z = one(items[0]), one(items[1]), one(items[3])
        if not all(isinstance(x, int) for x in (a, b, z)) or not 0 < a < b <= z:
            raise SweepError(f"{flag}: A,B,...,Z needs integers 0 < A < B <= Z")
        out, w = [], a
        while w <= z * (1 + 1e-9):
            out.append(int(round(w)))
            w *= b / a
        if out[-1] != z:
            raise SweepError(f"{flag}: {z} is not on the grid {a}, {b}, … (ratio {b / a:g})")
        return out
    return [one(t) for t in items]


def gap_times(cfg: dict, every: int) -> int:
    """T, the number of gap times of a sweep of ``cfg``: step 0, every ``every`` steps,
    and the last step."""
    sv = cfg["solver"]
    steps = sv.get("steps")
    if steps is None:
        steps = math.ceil(sv["t_end"] / sv["dt"] - 1e-9)
    return steps // every + 1 + (1 if steps % every else 0)


def estimate_memory(cfg: dict, opts: SweepOptions) -> tuple:
    """(bytes, key): about how much memory a sweep needs at its peak, and the option that
    drives it (the one whose doubling would grow the estimate most).  Counted in 8-byte
    words: the result arrays (W × S × T × (N + 5L + 10)), the reference's trace (T × (P_M
    + N (1 + Σ_l k_l))), the members' final particles, and the larger of the reference's
    run (:func:`meanfield.config.estimate_memory`) and a width task (S members with
    their solver copies)."""
    mc = cfg["model"]
    dims = [mc["d"]] + list(mc["bottleneck"]) + [1]
    N = int(cfg["data"]["n_test"])
    L = len(dims) - 1
    stages = get_method(cfg["solver"]["method"]).stages

    def params(widths):
        return sum(w * (dims[l] + 1 + dims[l + 1]) for l, w in enumerate(widths)) + 1

    def need(S, W, T, N, ref_scale):
        ref = [ref_scale * M for M in opts.reference_width]
        widest = params(opts.widths[-1])
        results = W * S * T * (N + 5 * L + 10) + 2 * W * T * L
        trace = T * (params(ref) + N * (1 + sum(dims[1:])) + 10)
        members = S * W * widest
        run_ref = C.estimate_memory({**cfg, "model": {**mc, "widths": ref},
                                     "data": {**cfg["data"], "n_test": N}})[0] // 8
        task = S * widest * (stages + 10) + N * (mc["d"] + 1 + sum(dims[1:]))
        return 8 * (results + trace + members + max(run_ref, task))

    T = gap_times(cfg, opts.every)
    base = dict(S=opts.seeds, W=opts.W, T=T, N=N, ref_scale=1)
    total = need(**base)
    doubled = {"seeds": need(**{**base, "S": 2 * opts.seeds}),
               "widths": need(**{**base, "W": 2 * opts.W}),
               "every": need(**{**base, "T": 2 * T}),
               "data.n_test": need(**{**base, "N": 2 * N})}
    if not opts.limit:
        doubled["reference width"] = need(**{**base, "ref_scale": 2})
    return total, max(doubled, key=lambda k: doubled[k])


def check_memory(cfg: dict, opts: SweepOptions) -> None:
    """Refuse (SweepError, one line naming the option that drives it) a sweep that cannot
    fit in the memory available, before anything trains."""
    need, key = estimate_memory(cfg, opts)
    avail = C.available_memory()
    if avail is not None and need > avail:
        raise SweepError(f"{key}: the sweep needs about {need / 2 ** 30:.1f} GiB of memory "
                         f"(results of {opts.W} widths x {opts.seeds} seeds x "
                         f"{gap_times(cfg, opts.every)} gap times x {cfg['data']['n_test']} test "
                         f"points), more than the {avail / 2 ** 30:.1f} GiB available")
