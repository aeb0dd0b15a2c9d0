"""Experiment configurations: TOML files → validated, fully resolved experiments.

One TOML file describes a whole experiment: a top-level ``seed`` and the sections
``[model]``, ``[data]``, ``[target]``, ``[solver]``, ``[[stages]]`` and ``[record]``
(docs/config.md lists every key).  :func:`resolve` checks types, ranges and
consistency and fills in the defaults; every problem is a :class:`ConfigError` whose
one-line message names the key and what was expected.  :func:`build` turns a resolved
configuration into the network, data, objective and solver settings.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

from .activations import ACTIVATIONS


class ConfigError(ValueError):
    """A bad experiment configuration (one-line message naming the key)."""


DISTRIBUTION_KEYS = {
    "gaussian": {"std"},
    "sphere": {"radius"},
    "ball": {"radius"},
    "radial": {"norm"},
    "eldan-shamir": set(),
    "safran-lee-d": {"alpha"},
    "safran-lee-dprime": set(),
}
TARGET_KEYS = {
    "relu-norm": {"r"},
    "ball": {"lam"},
    "radial": {"profile", "r", "freq", "width"},
    "teacher": {"teacher_width", "teacher_activation", "teacher_seed"},
}
PROFILES = ("relu", "cos", "bump")
INIT_LAWS = {"gaussian": {"std", "mean"}, "sphere": {"radius"}, "constant": {"value"}, "zero": set()}
METHODS = ("euler", "heun", "rk4", "rk45")


# ----------------------------------------------------------------------------------
# small typed readers
# ----------------------------------------------------------------------------------
def _type_name(v) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(v), type(v).__name__)


def _int(tab, key, path, default=None, lo=None, required=False):
    if key not in tab:
        if required:
            raise ConfigError(f"{path}{key}: required (an integer)")
        return default
    v = tab[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{path}{key}: expected an integer, got {_type_name(v)} {v!r}")
    if lo is not None and v < lo:
        raise ConfigError(f"{path}{key}: expected an integer >= {lo}, got {v}")
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


# ----------------------------------------------------------------------------------
# resolution
# ----------------------------------------------------------------------------------
def parse_toml(text: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"invalid TOML: {str(e).splitlines()[0]}") from None


def apply_overrides(raw: dict, overrides) -> dict:
    """Apply ``key=value`` strings (``solver.dt=0.1``, ``model.widths=[64, 64]``,
    ``model.init."1.v"={law="zero"}``).

    Keys are TOML dotted keys and values TOML values; a value that is not valid TOML is
    taken as a string (``data.distribution=ball``).
    """
    raw = copy.deepcopy(raw)
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, val = item.split("=", 1)
        key, val = key.strip(), val.strip()
        try:
            patch = tomllib.loads(f"{key} = {val}")
        except tomllib.TOMLDecodeError:
            esc = val.replace("\\", "\\\\").replace('"', '\\"')
            try:
                patch = tomllib.loads(f'{key} = "{esc}"')
            except tomllib.TOMLDecodeError:
                raise ConfigError(f"--set {item!r}: bad key {key!r}") from None
        _merge(raw, patch, item)
    return raw


def _merge(dst: dict, patch: dict, item: str) -> None:
    for k, v in patch.items():
        if isinstance(v, dict) and k in dst:
            if not isinstance(dst[k], dict):
                raise ConfigError(f"--set {item!r}: {k} is not a table")
            _merge(dst[k], v, item)
        else:
            dst[k] = v


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
        _no_unknown(spec, {"law"} | INIT_LAWS[law], p)
        r = {"law": law}
        if law == "gaussian":
            r["std"] = _num(spec, "std", p, 1.0, lo=0)
            r["mean"] = _num(spec, "mean", p, 0.0)
        elif law == "sphere":
            r["radius"] = _num(spec, "radius", p, 1.0, lo=0)
        elif law == "constant":
            r["value"] = _num(spec, "value", p, 0.0)
        out[key] = r
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
    cfg = {"seed": _int(raw, "seed", "", 0, lo=0)}

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
    dt_ = _table(raw, "data", "", {})
    dist = _str(dt_, "distribution", "data.", "gaussian", tuple(DISTRIBUTION_KEYS))
    _no_unknown(dt_, {"distribution", "n_train", "n_test"} | DISTRIBUTION_KEYS[dist], "data.")
    data = {"distribution": dist, "n_train": _int(dt_, "n_train", "data.", 1024, lo=1),
            "n_test": _int(dt_, "n_test", "data.", 1024, lo=0)}
    if dist == "gaussian":
        data["std"] = _num(dt_, "std", "data.", 1.0 / math.sqrt(d), lo=0, strict=True)
    elif dist in ("sphere", "ball"):
        data["radius"] = _num(dt_, "radius", "data.", 1.0, lo=0, strict=True)
    elif dist == "safran-lee-d":
        data["alpha"] = _num(dt_, "alpha", "data.", 1.0, lo=1)
    elif dist == "radial":
        norm = _table(dt_, "norm", "data.")
        if norm is None:
            raise ConfigError("data.norm: required for distribution 'radial' "
                              "(a table like {dist = \"uniform\", loc = 0.0, scale = 2.0})")
        data["norm"] = _resolve_norm(norm)
    if dist == "safran-lee-dprime" and d < 2:
        raise ConfigError("data.distribution: 'safran-lee-dprime' needs model.d >= 2")
    cfg["data"] = data

    # [target]
    tg = _table(raw, "target", "", {})
    kind = _str(tg, "kind", "target.", "relu-norm", tuple(TARGET_KEYS))
    _no_unknown(tg, {"kind"} | TARGET_KEYS[kind], "target.")
    target = {"kind": kind}
    if kind == "relu-norm":
        target["r"] = _num(tg, "r", "target.", 1.0, lo=0, strict=True)
    elif kind == "ball":
        target["lam"] = _num(tg, "lam", "target.", 1.0, lo=0, strict=True)
    elif kind == "radial":
        target["profile"] = _str(tg, "profile", "target.", "cos", PROFILES)
        target["r"] = _num(tg, "r", "target.", 1.0, lo=0, strict=True)
        target["freq"] = _num(tg, "freq", "target.", 1.0)
        target["width"] = _num(tg, "width", "target.", 1.0, lo=0, strict=True)
    else:
        target["teacher_width"] = _int(tg, "teacher_width", "target.", 8, lo=1)
        target["teacher_activation"] = _str(tg, "teacher_activation", "target.", "relu",
                                            tuple(ACTIVATIONS))
        target["teacher_seed"] = _int(tg, "teacher_seed", "target.", cfg["seed"] + 1, lo=0)
    cfg["target"] = target

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


def _resolve_norm(norm: dict) -> dict:
    from scipy import stats

    name = _str(norm, "dist", "data.norm.", required=True)
    dist = getattr(stats, name, None)
    if not isinstance(dist, stats.rv_continuous):
        raise ConfigError(f"data.norm.dist: expected the name of a continuous scipy.stats "
                          f"distribution, got {name!r}")
    params = {}
    for k, v in norm.items():
        if k == "dist":
            continue
        params[k] = _num(norm, k, "data.norm.")
    try:
        frozen = dist(**params)
        frozen.ppf(0.5)
    except Exception as e:  # scipy says which parameter is wrong
        raise ConfigError(f"data.norm: bad parameters for {name}: {e}") from None
    if frozen.support()[0] < 0:
        raise ConfigError(f"data.norm: the norm law must live on [0, inf), {name} with "
                          f"{params} has support starting at {frozen.support()[0]}")
    return {"dist": name, **params}


def _check_groups(cfg: dict) -> None:
    """Group patterns in freeze / time_scales / projections must match real groups."""
    import solvers

    from .network import PARAMS

    m = cfg["model"]
    names = [f"{l + 1}.{p}" for l in range(len(m["widths"])) for p in PARAMS]
    if m["out_bias"]:
        names.append("out.b")
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


def load(text: str, overrides=()) -> dict:
    """Parse TOML text, apply ``--set`` overrides and resolve."""
    return resolve(apply_overrides(parse_toml(text), overrides))


# ----------------------------------------------------------------------------------
# TOML output (the resolved configuration is stored in every run file)
# ----------------------------------------------------------------------------------
def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf") if not math.isnan(v) else "nan"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_value(k)


def dumps_raw(raw: dict) -> str:
    """TOML text of any table of TOML values (sections written as inline tables)."""
    return "\n".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in raw.items()) + "\n"


def dumps(cfg: dict) -> str:
    """TOML text of a resolved configuration (round-trips through :func:`load`)."""
    lines = [f"seed = {cfg['seed']}", ""]
    for sec in ("model", "data", "target", "solver", "record"):
        lines.append(f"[{sec}]")
        for k, v in cfg[sec].items():
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        lines.append("")
    for st in cfg["stages"]:
        lines.append("[[stages]]")
        for k, v in st.items():
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------
# building the experiment
# ----------------------------------------------------------------------------------
@dataclass
class Experiment:
    config: dict
    network: object          # meanfield.Network (initial)
    train: object            # meanfield.Dataset
    test: object | None      # meanfield.Dataset or None (n_test = 0)
    target: object
    schedule: list
    stop: object             # solvers.Stop
    solver_kwargs: dict      # method, dt, rtol, atol, seed


def _init_law(spec):
    from . import init

    law = spec["law"]
    if law == "gaussian":
        return init.Gaussian(spec["std"], spec["mean"])
    if law == "sphere":
        return init.Sphere(spec["radius"])
    if law == "constant":
        return init.Constant(spec["value"])
    return init.Zero()


def make_distribution(cfg: dict):
    from . import data as D

    d = cfg["model"]["d"]
    dc = cfg["data"]
    kind = dc["distribution"]
    if kind == "gaussian":
        return D.Gaussian(d, dc["std"])
    if kind == "sphere":
        return D.Sphere(d, dc["radius"])
    if kind == "ball":
        return D.Ball(d, dc["radius"])
    if kind == "eldan-shamir":
        return D.EldanShamir(d)
    if kind == "safran-lee-d":
        return D.SafranLeeD(d, dc["alpha"])
    if kind == "safran-lee-dprime":
        return D.SafranLeeDPrime(d)
    from scipy import stats

    params = {k: v for k, v in dc["norm"].items() if k != "dist"}
    return D.Radial(d, getattr(stats, dc["norm"]["dist"])(**params))


def make_target(cfg: dict):
    from . import targets as T
    from .network import two_layer

    tc = cfg["target"]
    kind = tc["kind"]
    if kind == "relu-norm":
        return T.ReluNorm(tc["r"])
    if kind == "ball":
        return T.BallIndicator(tc["lam"])
    if kind == "radial":
        prof = tc["profile"]
        if prof == "relu":
            return T.RadialTarget(lambda rho, r=tc["r"]: np.maximum(r - rho, 0.0))
        if prof == "cos":
            return T.RadialTarget(lambda rho, f=tc["freq"]: np.cos(f * rho))
        return T.RadialTarget(lambda rho, w=tc["width"]: np.exp(-rho ** 2 / (2 * w * w)))
    teacher = two_layer(cfg["model"]["d"], tc["teacher_width"], tc["teacher_activation"],
                        seed=tc["teacher_seed"])
    return T.Teacher(teacher)


def make_network(cfg: dict):
    from . import init
    from .network import Block, Network

    mc = cfg["model"]
    L = len(mc["widths"])
    dims = [mc["d"]] + mc["bottleneck"] + [1]
    rng = np.random.default_rng([cfg["seed"], 0])
    blocks = []
    for l in range(L):
        laws = {"u": init.Gaussian(1 / math.sqrt(dims[l])), "c": init.Gaussian(1.0),
                "v": init.Gaussian(1.0)}
        for p in ("u", "c", "v"):
            if f"{l + 1}.{p}" in mc["init"]:
                laws[p] = _init_law(mc["init"][f"{l + 1}.{p}"])
        m = mc["widths"][l]
        u = laws["u"].sample(rng, (m, dims[l]))
        c = laws["c"].sample(rng, (m,))
        v = laws["v"].sample(rng, (m, dims[l + 1]))
        blocks.append(Block(u, c, v, mc["activations"][l], bias=mc["bias"]))
    net = Network(blocks, output=mc["output"], scaling=mc["scaling"],
                  out_bias=0.0 if mc["out_bias"] else None, dtype=mc["dtype"])
    if mc["freeze"]:
        import solvers

        groups = [solvers.Group(n, s, sh, t) for n, s, sh, t in net.groups()]
        frozen = {groups[i].name for i in solvers.match_groups(groups, mc["freeze"])}
        for l, b in enumerate(net.blocks):
            b.train = frozenset(p for p in b.train if f"{l + 1}.{p}" not in frozen)
        if "out.b" in frozen:
            net.train_out_bias = False
    return net


def build(cfg: dict) -> Experiment:
    """The network, data, target, schedule and solver settings of a resolved config."""
    import solvers

    from .objective import Dataset

    law = make_distribution(cfg)
    target = make_target(cfg)
    rng = np.random.default_rng([cfg["seed"], 1])
    X = law.sample(cfg["data"]["n_train"], rng)
    train = Dataset(X, target(X))
    test = None
    if cfg["data"]["n_test"] > 0:
        Xt = law.sample(cfg["data"]["n_test"], rng)
        test = Dataset(Xt, target(Xt))
    net = make_network(cfg)
    sched = []
    for s in cfg["stages"]:
        projs = []
        for p in s["projections"]:
            if p["kind"] == "ball":
                projs.append(solvers.BallProjection(tuple(p["groups"]), p["radius"], p["per"]))
            else:
                projs.append(solvers.BoxProjection(tuple(p["groups"]), p["lo"], p["hi"]))
        lv = s.get("langevin")
        sched.append(solvers.Stage(duration=s.get("duration"), steps=s.get("steps"),
                                   time_scales=dict(s["time_scales"]), freeze=tuple(s["freeze"]),
                                   projections=tuple(projs), name=s["name"],
                                   langevin=solvers.Langevin(lv["tau"], lv["lam"]) if lv else None))
    sv = cfg["solver"]
    stop = solvers.Stop(t_end=sv.get("t_end"), steps=sv.get("steps"), loss_tol=sv.get("loss_tol"))
    kw = {"method": sv["method"], "dt": sv["dt"], "rtol": sv["rtol"], "atol": sv["atol"],
          "seed": cfg["seed"]}
    return Experiment(cfg, net, train, test, target, sched, stop, kw)
