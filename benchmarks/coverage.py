"""Coverage of the intervals of the width rate β: ``python -m benchmarks coverage``.

At t = 0 a sweep against the exact limit has a known rate: a width-m member is m
independent draws of the initial laws, the limit's f is 0 (v has mean 0 and is
independent of u and c), so E‖f_m‖² = V/m on the test sample and the RMS gap decays like
m^(−1/2) exactly.  This benchmark draws R replicate sweeps of S seeds as
``meanfield gap --reference limit`` draws its members (the configuration's network at
each width, init seed :func:`meanfield.streams.independent_init_seed` of the seed, so a
seed's members are nested across widths), and counts how often each interval contains
β = 1/2:

- ``percentile``: the percentile bootstrap over seeds of the RMS fit (what
  :func:`meanfield.discretization.rates.fit_rate` computed up to this benchmark);
- ``bca``: scipy.stats.bootstrap's bias-corrected and accelerated interval of the same
  statistic (seeds resampled jointly across widths);
- ``t``: the t-interval of the per-seed fits (each seed's gaps fitted alone, mean ±
  t_{S−1} sd/√S);
- ``jackknife``: the RMS fit ± t_{S−1} times its delete-one-seed jackknife standard error.
"""
from __future__ import annotations

import copy
import json
import os
import sys
import time

import numpy as np

FULL = dict(seeds=(5, 10, 20), replicates=400, widths=(16, 32, 64, 128, 256), n_test=256,
            n_boot=1000, level=0.9)
QUICK = dict(seeds=(5,), replicates=20, widths=(16, 32, 64), n_test=64, n_boot=200, level=0.9)


def _gaps(cfg, X, widths, S, rep):
    """(W, S) ‖f_m‖ on X for the members of replicate ``rep``: seed s's width-m member is
    the first m particles of its widest one (the init streams' prefix property), so f_m
    is a running mean of the widest member's terms v_i ReLU(u_i·x + c_i)."""
    from meanfield import config as C
    from meanfield import streams

    out = np.empty((len(widths), S))
    for s in range(S):
        c = copy.deepcopy(cfg)
        c["seed"]["init"] = streams.independent_init_seed(rep, s)
        b = C.make_network(c, widths=[max(widths)]).blocks[0]
        terms = b.v[:, 0][None, :] * np.maximum(X @ b.u.T + b.c[None, :], 0.0)   # (N, M)
        run = np.cumsum(terms, axis=1)
        for w, m in enumerate(widths):
            out[w, s] = float(np.sqrt(np.mean((run[:, m - 1] / m) ** 2)))
    return out


def intervals(widths, gaps, n_boot, level, seed):
    """{name: (lo, hi)} of the three intervals for gaps (W, S)."""
    from scipy import stats

    from meanfield.discretization.rates import fit_rate

    x = np.asarray(widths, dtype=float)
    lx = np.log(x) - np.log(x).mean()
    S = gaps.shape[1]
    pct = fit_rate(x, gaps, n_boot=n_boot, level=level, seed=seed, interval="percentile")

    def beta_of(idx):
        g = gaps[:, np.asarray(idx, dtype=int)]
        ly = np.log(np.sqrt(np.mean(g * g, axis=-1)))
        return -float(lx @ (ly - ly.mean()) / (lx @ lx))

    bca = stats.bootstrap((np.arange(S),), beta_of, n_resamples=n_boot, confidence_level=level,
                          method="BCa", vectorized=False,
                          random_state=np.random.default_rng(seed)).confidence_interval
    per = -(lx @ (np.log(gaps) - np.log(gaps).mean(axis=0))) / (lx @ lx)   # (S,)
    tq = stats.t.ppf((1 + level) / 2, S - 1)
    half = tq * per.std(ddof=1) / np.sqrt(S)
    # the jackknife: the RMS fit without each seed in turn; its standard error, t quantile
    beta = beta_of(np.arange(S))
    jack = np.array([beta_of(np.delete(np.arange(S), s)) for s in range(S)])
    se = np.sqrt((S - 1) / S * np.sum((jack - jack.mean()) ** 2))
    return {"percentile": (pct.beta_lo, pct.beta_hi), "bca": (bca.low, bca.high),
            "t": (per.mean() - half, per.mean() + half),
            "jackknife": (beta - tq * se, beta + tq * se)}


def run(args) -> dict:
    from tqdm.auto import tqdm

    import meanfield as mf
    from meanfield import config as C

    p = QUICK if args.quick else FULL
    cfg = C.load_config(mf.presets.text("relu-norm-2layer"),
                        [f"data.n_test={p['n_test']}", "data.n_train=16"])
    X = C.make_data(cfg)[1].X
    res = {"quick": args.quick, "params": {k: list(v) if isinstance(v, tuple) else v
                                           for k, v in p.items()}, "rows": []}
    t0 = time.perf_counter()
    total = sum(p["replicates"] for _ in p["seeds"])
    with tqdm(total=total, file=sys.stderr, dynamic_ncols=True, disable=args.quiet) as bar:
        for S in p["seeds"]:
            hits = {"percentile": 0, "bca": 0, "t": 0, "jackknife": 0}
            width = {k: [] for k in hits}
            for rep in range(p["replicates"]):
                g = _gaps(cfg, X, p["widths"], S, 1000 * S + rep)
                for k, (lo, hi) in intervals(p["widths"], g, p["n_boot"], p["level"], rep).items():
                    hits[k] += int(lo <= 0.5 <= hi)
                    width[k].append(hi - lo)
                bar.update(1)
            R = p["replicates"]
            res["rows"].append({"S": S, "R": R, **{f"coverage_{k}": hits[k] / R for k in hits},
                                **{f"se_{k}": float(np.sqrt(hits[k] / R * (1 - hits[k] / R) / R))
                                   for k in hits},
                                **{f"width_{k}": float(np.median(width[k])) for k in hits}})
    res["seconds"] = time.perf_counter() - t0
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "coverage.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(args.out, "coverage.md"), "w") as f:
        f.write(report(res) + "\n")
    return res


def report(res) -> str:
    p = res["params"]
    out = [f"Coverage of the {100 * p['level']:.0f} % intervals of β at t = 0 against the exact "
           f"limit (true β = 1/2), relu-norm-2layer's laws, widths {p['widths']}, "
           f"{p['n_test']} test points, {p['n_boot']} resamples; R replicate sweeps per row; ± "
           "the binomial standard error; median interval width in brackets.", "",
           "| seeds S | R | percentile bootstrap | BCa | t over per-seed fits | jackknife t |",
           "|---|---|---|---|---|---|"]
    for r in res["rows"]:
        cells = [f"{r['coverage_' + k]:.3f} ± {r['se_' + k]:.3f} [{r['width_' + k]:.3f}]"
                 for k in ("percentile", "bca", "t", "jackknife")]
        out.append(f"| {r['S']} | {r['R']} | " + " | ".join(cells) + " |")
    out += ["", f"One run: {res['seconds']:.0f} s."]
    return "\n".join(out)
