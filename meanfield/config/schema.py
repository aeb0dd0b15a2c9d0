"""Validation of experiment configurations: raw TOML tables → resolved configurations.

:func:`resolve` checks types, ranges and consistency and fills in every default; every
problem is a :class:`ConfigError` whose one-line message names the key and what was
expected.  Data laws, targets and initial laws are validated from their registrations
(:mod:`meanfield.registry`), so a newly registered one needs nothing here.
"""
from __future__ import annotations

import math

import solvers

from ..activations import ACTIVATIONS
from ..data import DISTRIBUTIONS
from ..init import INIT_LAWS
from ..layout import group_names
from ..registry import REQUIRED
from ..targets import TARGETS

METHODS = tuple(solvers.METHODS)   # the integrators solvers/ provides
SEED_KEYS = ("init", "data", "noise")
SEED_MAX = 2 ** 64 - 1


class ConfigError(ValueError):
    """A bad experiment configuration (one-line message naming the key)."""


# ----------------------------------------------------------------------------------
# small typed readers
# ----------------------------------------------------------------------------------
def _type_name(v) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(v), type(v).__name__)


def _int(tab, key, path, default=None, lo=None, required=False, hi=None):
    if key not in tab:
        if required:
            raise ConfigError(f"{path}{key}: required (an integer)")
        return default
    v = tab[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{path}{key}: expected an integer, got {_type_name(v)} {v!r}")
    if lo is not None and v < lo:
        raise ConfigError(f"{path}{key}: expected an integer >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise ConfigError(f"{path}{key}: expected an integer <= {hi}, got {v}")
    return v


def _num(tab, key, path, default=None, lo=None, strict=False, required=False):
    if key not in tab:
        if required:
            raise ConfigError(f"{path}{key}: required (a number)")
        return default
    v = tab[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{path}{key}: expected a number, got {_type_name(v)} {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ConfigError(f"{path}{key}: expected a finite number, got {v}")
    if lo is not None and (v <= lo if strict else v < lo):
        raise ConfigError(f"{path}{key}: expected a number {'>' if strict else '>='} {lo}, got {v}")
    return v


def _str(tab, key, path, default=None, choices=None, required=False):
    if key not in tab:
        if required:
            raise ConfigError(f"{path}{key}: required (a string)")
        return default
    v = tab[key]
    if not isinstance(v, str):
        raise ConfigError(f"{path}{key}: expected a string, got {_type_name(v)} {v!r}")
    if choices is not None and v not in choices:
        raise ConfigError(f"{path}{key}: expected one of {', '.join(choices)}, got {v!r}")
    return v


def _bool(tab, key, path, default):
    if key not in tab:
        return default
    v = tab[key]
    if not isinstance(v, bool):
        raise ConfigError(f"{path}{key}: expected true or false, got {_type_name(v)} {v!r}")
    return v


def _list(tab, key, path, kind, default=None, required=False):
    if key not in tab:
        if required:
            raise ConfigError(f"{path}{key}: required (a list)")
        return default
    v = tab[key]
    if not isinstance(v, list):
        raise ConfigError(f"{path}{key}: expected a list, got {_type_name(v)} {v!r}")
    for i, x in enumerate(v):
        ok = isinstance(x, str) if kind is str else (not isinstance(x, bool) and isinstance(x, int))
        if not ok:
            what = "strings" if kind is str else "integers"
            raise ConfigError(f"{path}{key}[{i}]: expected a list of {what}, got {_type_name(x)} {x!r}")
    return list(v)


def _table(tab, key, path, default=None):
    if key not in tab:
        return default
    v = tab[key]
    if not isinstance(v, dict):
        raise ConfigError(f"{path}{key}: expected a table, got {_type_name(v)} {v!r}")
    return v


def _no_unknown(tab, allowed, path):
    for k in tab:
        if k not in allowed:
            where = path.rstrip(".") or "the top level"
            raise ConfigError(f"{path}{k}: unknown key in {where}; expected one of {', '.join(sorted(allowed))}")




def _entry_params(tab, entry, path, ctx, kind_key) -> dict:
    """The resolved keys of a registered entry (see :class:`meanfield.registry.Param`)."""
    out = {}
    for key, p in entry.params.items():
        default = p.default(ctx) if callable(p.default) else p.default
        required = default is REQUIRED
        if p.kind == "number":
            out[key] = _num(tab, key, path, None if required else default, lo=p.lo,
                            strict=p.strict, required=required)
        elif p.kind == "integer":
            out[key] = _int(tab, key, path, None if required else default, lo=p.lo,
                            required=required)
        elif p.kind == "string":
            out[key] = _str(tab, key, path, None if required else default,
                            choices=p.choices or None, required=required)
        elif p.kind == "bool":
            out[key] = _bool(tab, key, path, default)
        else:  # a table, validated by the entry's own resolver
            t = _table(tab, key, path)
            if t is None:
                raise ConfigError(f"{path}{key}: required for {kind_key} {entry.name!r}"
                                  + (f" ({p.doc})" if p.doc else ""))
            try:
                out[key] = p.resolve(t)
            except ValueError as e:
                raise ConfigError(f"{path}{key}{e}") from None
    if entry.check is not None:
        try:
            entry.check(ctx, out)
        except ValueError as e:
            raise ConfigError(f"{path}{kind_key}: {e}") from None
    return out


def _resolve_seed(raw) -> dict:
    """``seed = s`` (every stream from s) or ``seed = {init, data, noise}`` (missing keys 0)."""
    if "seed" not in raw:
        return {k: 0 for k in SEED_KEYS}
    if isinstance(raw["seed"], dict):
        tab = raw["seed"]
        _no_unknown(tab, set(SEED_KEYS), "seed.")
        return {k: _int(tab, k, "seed.", 0, lo=0, hi=SEED_MAX) for k in SEED_KEYS}
    s = _int(raw, "seed", "", 0, lo=0, hi=SEED_MAX)
    return {k: s for k in SEED_KEYS}


def _resolve_init(tab, path, L):
    out = {}
    for key, spec in tab.items():
        parts = key.split(".")
        if len(parts) != 2 or parts[1] not in ("u", "c", "v") or not parts[0].isdigit() \
                or not 1 <= int(parts[0]) <= L:
            raise ConfigError(f"{path}{key}: expected a key '<block>.<u|c|v>' with block in 1..{L}")
        if not isinstance(spec, dict):
            raise ConfigError(f"{path}{key}: expected a table like {{law = \"gaussian\", std = 1.0}}")
        p = f"{path}{key}."
        law = _str(spec, "law", p, required=True, choices=tuple(INIT_LAWS))
        entry = INIT_LAWS.entries[law]
        _no_unknown(spec, {"law"} | set(entry.params), p)
        out[key] = {"law": law, **_entry_params(spec, entry, p, {}, "law")}
    return out


def _resolve_stage(st, i, L):
    path = f"stages[{i}]."
    if not isinstance(st, dict):
        raise ConfigError(f"stages[{i}]: expected a table")
    _no_unknown(st, {"name", "duration", "steps", "freeze", "time_scales", "projections",
                     "langevin"}, path)
    out = {"name": _str(st, "name", path, "")}
    dur = _num(st, "duration", path, lo=0, strict=True)
    steps = _int(st, "steps", path, lo=1)
    if dur is not None and steps is not None:
        raise ConfigError(f"{path}duration/steps: give one of them, not both")
    if dur is not None:
        out["duration"] = dur
    if steps is not None:
        out["steps"] = steps
    out["freeze"] = _list(st, "freeze", path, str, [])
    ts = _table(st, "time_scales", path, {})
    out["time_scales"] = {k: _num(ts, k, f"{path}time_scales.", lo=0) for k in ts}
    projs = st.get("projections", [])
    if not isinstance(projs, list):
        raise ConfigError(f"{path}projections: expected a list of tables")
    out["projections"] = []
    for j, p in enumerate(projs):
        pp = f"{path}projections[{j}]."
        if not isinstance(p, dict):
            raise ConfigError(f"{path}projections[{j}]: expected a table")
        kind = _str(p, "kind", pp, required=True, choices=("ball", "box"))
        if kind == "ball":
            _no_unknown(p, {"kind", "groups", "radius", "per"}, pp)
            out["projections"].append({
                "kind": "ball", "groups": _list(p, "groups", pp, str, required=True),
                "radius": _num(p, "radius", pp, lo=0, strict=True, required=True),
                "per": _str(p, "per", pp, "particle", choices=("particle", "group"))})
        else:
            _no_unknown(p, {"kind", "groups", "lo", "hi"}, pp)
            lo = _num(p, "lo", pp, required=True)
            hi = _num(p, "hi", pp, required=True)
            if lo > hi:
                raise ConfigError(f"{pp}lo/hi: expected lo <= hi, got lo={lo}, hi={hi}")
            out["projections"].append({"kind": "box", "groups": _list(p, "groups", pp, str, required=True),
                                       "lo": lo, "hi": hi})
    lv = _table(st, "langevin", path)
    if lv is not None:
        _no_unknown(lv, {"tau", "lam"}, f"{path}langevin.")
        out["langevin"] = {"tau": _num(lv, "tau", f"{path}langevin.", 0.0, lo=0),
                           "lam": _num(lv, "lam", f"{path}langevin.", 0.0, lo=0)}
    return out



def resolve(raw: dict) -> dict:
    """Validate a raw configuration and return it with every default filled in."""
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a TOML table")
    _no_unknown(raw, {"seed", "model", "data", "target", "solver", "stages", "record"}, "")
    cfg = {"seed": _resolve_seed(raw)}

    # [model]
    m = _table(raw, "model", "", None)
    if m is None:
        raise ConfigError("model: required section [model] (keys d, widths, ...)")
    _no_unknown(m, {"d", "widths", "bottleneck", "activations", "output", "scaling", "bias",
                    "out_bias", "freeze", "dtype", "init"}, "model.")
    d = _int(m, "d", "model.", lo=1, required=True)
    widths = _list(m, "widths", "model.", int, required=True)
    if not widths:
        raise ConfigError("model.widths: expected at least one width")
    for i, w in enumerate(widths):
        if w < 1:
            raise ConfigError(f"model.widths[{i}]: expected a width >= 1, got {w}")
    L = len(widths)
    bott = _list(m, "bottleneck", "model.", int, [1] * (L - 1))
    if len(bott) != L - 1:
        raise ConfigError(f"model.bottleneck: expected {L - 1} values (one per block but the last) "
                          f"for {L} widths, got {len(bott)}")
    for i, k in enumerate(bott):
        if k < 1:
            raise ConfigError(f"model.bottleneck[{i}]: expected a dimension >= 1, got {k}")
    acts = _list(m, "activations", "model.", str, ["relu"] * L)
    if len(acts) != L:
        raise ConfigError(f"model.activations: expected {L} names (one per width), got {len(acts)}")
    for i, a in enumerate(acts):
        if a not in ACTIVATIONS:
            raise ConfigError(f"model.activations[{i}]: expected one of {', '.join(ACTIVATIONS)}, got {a!r}")
    cfg["model"] = {
        "d": d, "widths": widths, "bottleneck": bott, "activations": acts,
        "output": _str(m, "output", "model.", "identity", ("identity", "clip01")),
        "scaling": _str(m, "scaling", "model.", "mf", ("mf", "ntk")),
        "bias": _bool(m, "bias", "model.", True),
        "out_bias": _bool(m, "out_bias", "model.", False),
        "freeze": _list(m, "freeze", "model.", str, []),
        "dtype": _str(m, "dtype", "model.", "float64", ("float64", "float32")),
        "init": _resolve_init(_table(m, "init", "model.", {}), "model.init.", L),
    }

    # [data]
    ctx = {"d": d, "seed": cfg["seed"]}
    dt_ = _table(raw, "data", "", {})
    dist = _str(dt_, "distribution", "data.", "gaussian", tuple(DISTRIBUTIONS))
    entry = DISTRIBUTIONS.entries[dist]
    _no_unknown(dt_, {"distribution", "n_train", "n_test"} | set(entry.params), "data.")
    data = {"distribution": dist, "n_train": _int(dt_, "n_train", "data.", 1024, lo=1),
            "n_test": _int(dt_, "n_test", "data.", 1024, lo=0)}
    data.update(_entry_params(dt_, entry, "data.", ctx, "distribution"))
    cfg["data"] = data

    # [target]
    tg = _table(raw, "target", "", {})
    kind = _str(tg, "kind", "target.", "relu-norm", tuple(TARGETS))
    entry = TARGETS.entries[kind]
    _no_unknown(tg, {"kind"} | set(entry.params), "target.")
    cfg["target"] = {"kind": kind, **_entry_params(tg, entry, "target.", ctx, "kind")}

    # [solver]
    sv = _table(raw, "solver", "", {})
    _no_unknown(sv, {"method", "dt", "steps", "t_end", "loss", "loss_tol", "rtol", "atol"}, "solver.")
    solver = {"method": _str(sv, "method", "solver.", "euler", METHODS),
              "dt": _num(sv, "dt", "solver.", 0.01, lo=0, strict=True),
              "loss": _str(sv, "loss", "solver.", "squared", ("squared", "logistic")),
              "rtol": _num(sv, "rtol", "solver.", 1e-6, lo=0, strict=True),
              "atol": _num(sv, "atol", "solver.", 1e-9, lo=0, strict=True)}
    steps = _int(sv, "steps", "solver.", lo=0)
    t_end = _num(sv, "t_end", "solver.", lo=0)
    tol = _num(sv, "loss_tol", "solver.", lo=0)
    if steps is not None:
        solver["steps"] = steps
    if t_end is not None:
        solver["t_end"] = t_end
    if tol is not None:
        solver["loss_tol"] = tol

    # [[stages]]
    stages_raw = raw.get("stages", [])
    if not isinstance(stages_raw, list):
        raise ConfigError("stages: expected an array of tables [[stages]]")
    stages = [_resolve_stage(s, i, L) for i, s in enumerate(stages_raw)]
    for i, s in enumerate(stages[:-1]):
        if "duration" not in s and "steps" not in s:
            raise ConfigError(f"stages[{i}]: needs duration or steps (only the last stage may be open-ended)")
    bounded = stages and ("duration" in stages[-1] or "steps" in stages[-1])
    if steps is None and t_end is None and not bounded:
        raise ConfigError("solver.steps: required (or solver.t_end, or stages that all have a length)")
    if solver["method"] == "rk45":
        for i, s in enumerate(stages):
            if "steps" in s:
                raise ConfigError(f"stages[{i}].steps: the adaptive method rk45 needs durations")
            if s.get("langevin", {}).get("tau", 0) > 0:
                raise ConfigError(f"stages[{i}].langevin.tau: noise needs a fixed-step method, not rk45")
        if steps is not None and t_end is None:
            pass  # a step budget is fine for rk45
    cfg["solver"] = solver
    cfg["stages"] = stages

    # [record]
    rc = _table(raw, "record", "", {})
    _no_unknown(rc, {"series_every", "snapshot_every", "checkpoint_every", "test_every",
                     "compression"}, "record.")
    series_every = _int(rc, "series_every", "record.", 10, lo=1)
    cfg["record"] = {
        "series_every": series_every,
        "snapshot_every": _int(rc, "snapshot_every", "record.", 100, lo=1),
        "checkpoint_every": _int(rc, "checkpoint_every", "record.", 100, lo=1),
        "test_every": _int(rc, "test_every", "record.", series_every, lo=1),
        "compression": _str(rc, "compression", "record.", "none", ("none", "gzip", "lzf")),
    }
    if cfg["record"]["test_every"] % series_every:
        raise ConfigError(f"record.test_every: expected a multiple of record.series_every "
                          f"({series_every}), got {cfg['record']['test_every']}")
    _check_groups(cfg)
    return cfg



def _check_groups(cfg: dict) -> None:
    """Group patterns in freeze / time_scales / projections must match real groups."""
    m = cfg["model"]
    names = group_names(len(m["widths"]), m["out_bias"])
    groups = [solvers.Group(n, 0, (1, 1)) for n in names]

    def check(patterns, where):
        try:
            solvers.match_groups(groups, patterns, where)
        except ValueError as e:
            raise ConfigError(str(e)) from None

    if m["freeze"]:
        check(m["freeze"], "model.freeze pattern")
    for i, s in enumerate(cfg["stages"]):
        if s["freeze"]:
            check(s["freeze"], f"stages[{i}].freeze pattern")
        for k in s["time_scales"]:
            check([k], f"stages[{i}].time_scales key")
        for j, p in enumerate(s["projections"]):
            check(p["groups"], f"stages[{i}].projections[{j}].groups pattern")



