"""Building an experiment from a resolved configuration, through the same registries as
the Python API (:data:`meanfield.DISTRIBUTIONS`, :data:`meanfield.TARGETS`,
:data:`meanfield.init.INIT_LAWS`).

Randomness is keyed by the configuration's three seeds: ``seed.init`` the initial
particles (keyed streams, so widths nest), ``seed.data`` the training and test samples
(and a teacher's default seed), ``seed.noise`` the Langevin noise.
"""
from __future__ import annotations

import math

import solvers

from ..data import DISTRIBUTIONS
from ..experiment import Experiment
from ..init import INIT_LAWS, Gaussian
from ..layout import OUT_BIAS, PARAMS, group_name, group_names
from ..activations import activation_code
from ..limit import (BOUNDED, RULES, ThreeLayerLimit, TwoLayerLimit, norm_quantile,
                     target_profile)
from ..network import Network, _block
from .. import streams
from ..objective import Dataset
from ..targets import TARGETS
from .schema import ConfigError


def context(cfg: dict) -> dict:
    """What registered builders may read: the input dimension and the seeds."""
    return {"d": cfg["model"]["d"], "seed": cfg["seed"]}


def _make(registry, table: dict, kind_key: str, cfg: dict):
    entry = registry.entries[table[kind_key]]
    return entry.make(context(cfg), {k: table[k] for k in entry.params})


def make_distribution(cfg: dict):
    """The data law of ``[data]``."""
    return _make(DISTRIBUTIONS, cfg["data"], "distribution", cfg)


def make_target(cfg: dict):
    """The target of ``[target]``."""
    return _make(TARGETS, cfg["target"], "kind", cfg)


def frozen_groups(cfg: dict) -> set:
    """Names of the groups ``model.freeze`` freezes for the whole run."""
    m = cfg["model"]
    if not m["freeze"]:
        return set()
    names = group_names(len(m["widths"]), m["out_bias"])
    groups = [solvers.Group(n, 0, (1, 1)) for n in names]
    return {groups[i].name for i in solvers.match_groups(groups, m["freeze"])}


def parameter_count(cfg: dict, widths=None) -> int:
    """P, the length of the parameter vector of ``[model]`` (at other ``widths``):
    Σ_l m_l (k_{l−1} + 1 + k_l), and the output bias."""
    mc = cfg["model"]
    dims = [mc["d"]] + list(mc["bottleneck"]) + [1]
    widths = mc["widths"] if widths is None else widths
    return sum(m * (dims[l] + 1 + dims[l + 1]) for l, m in enumerate(widths)) \
        + (1 if mc["out_bias"] else 0)


def init_laws(cfg: dict, l: int) -> dict:
    """The initial laws {"u", "c", "v"} of block ``l`` (1-based): ``model.init`` where it
    names them, else u ~ N(0, I/k_in), c, v ~ N(0, 1)."""
    mc = cfg["model"]
    dims = [mc["d"]] + mc["bottleneck"] + [1]
    laws = {"u": Gaussian(1 / math.sqrt(dims[l - 1])), "c": Gaussian(1.0), "v": Gaussian(1.0)}
    for p in PARAMS:
        spec = mc["init"].get(group_name(l, p))
        if spec is not None:
            entry = INIT_LAWS.entries[spec["law"]]
            laws[p] = entry.make({}, {k: spec[k] for k in entry.params})
    return laws


def make_network(cfg: dict, widths=None) -> Network:
    """The initial network of ``[model]`` (optionally with other ``widths``: by the
    prefix property of the keyed init streams, its particles are the first ones of the
    configured network's, for every block)."""
    mc = cfg["model"]
    widths = list(mc["widths"] if widths is None else widths)
    L = len(widths)
    dims = [mc["d"]] + mc["bottleneck"] + [1]
    frozen = frozen_groups(cfg)
    blocks = []
    for l in range(L):
        laws = init_laws(cfg, l + 1)
        train = tuple(p for p in PARAMS if group_name(l + 1, p) not in frozen)
        blocks.append(_block(cfg["seed"]["init"], l + 1, widths[l], dims[l], dims[l + 1],
                             mc["activations"][l], mc["bias"], laws["u"], laws["c"], laws["v"],
                             train=train))
    return Network(blocks, output=mc["output"], scaling=mc["scaling"],
                   out_bias=0.0 if mc["out_bias"] else None,
                   train_out_bias=OUT_BIAS not in frozen, dtype=mc["dtype"],
                   seed=cfg["seed"]["init"])


def make_schedule(stages: list) -> list:
    """solvers.Stage objects of ``[[stages]]``."""
    sched = []
    for s in stages:
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
    return sched


def make_data(cfg: dict):
    """(train, test or None) samples of ``[data]`` and ``[target]``, from ``seed.data``."""
    law = make_distribution(cfg)
    target = make_target(cfg)
    rng = streams.data(cfg["seed"]["data"])
    X = law.sample(cfg["data"]["n_train"], rng)
    seed = cfg["seed"]["data"]
    train = Dataset(X, target(X), seed=seed)
    test = None
    if cfg["data"]["n_test"] > 0:
        Xt = law.sample(cfg["data"]["n_test"], rng)
        test = Dataset(Xt, target(Xt), seed=seed)
    return train, test, target


def _memory(d, widths, bottleneck, n, stages) -> int:
    dims = [d] + list(bottleneck) + [1]
    P = sum(w * (dims[l] + 1 + dims[l + 1]) for l, w in enumerate(widths)) + 1
    per_sample = 3 * (d + 1) + 2 * sum(dims[1:]) + 1   # (x, y) in memory, transposed, in the file image
    return 8 * P * (stages + 10) + 8 * n * per_sample


def estimate_memory(cfg: dict) -> tuple:
    """(bytes, key): about how much memory the run of ``cfg`` needs, and the key that
    drives it (the one of ``model.widths``, ``data.n_train``, ``model.d`` whose doubling
    would grow the estimate most).  Counted in 8-byte words: the parameters with their
    solver copies (the stage buffers, the next state, scratch, yielded and last-good
    states, the network's own arrays), the data sets with their transposed copies and the
    copy in the run file's first version (built in memory), and each objective's feature
    arrays (2 Σ_l k_l rows per sample)."""
    m = cfg["model"]
    n = cfg["data"]["n_train"] + cfg["data"]["n_test"]
    stages = solvers.get_method(cfg["solver"]["method"]).stages
    need = _memory(m["d"], m["widths"], m["bottleneck"], n, stages)
    doubled = {"model.widths": _memory(m["d"], [2 * w for w in m["widths"]], m["bottleneck"], n, stages),
               "data.n_train": _memory(m["d"], m["widths"], m["bottleneck"], 2 * n, stages),
               "model.d": _memory(2 * m["d"], m["widths"], m["bottleneck"], n, stages)}
    key = max(doubled, key=lambda k: doubled[k])   # ties: the first (widths, then data)
    return need, key


def available_memory() -> int | None:
    """Bytes of memory available now (Linux /proc/meminfo, else None)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(cfg: dict) -> None:
    """Refuse (ConfigError) a run that cannot fit in the memory available."""
    need, key = estimate_memory(cfg)
    avail = available_memory()
    if avail is not None and need > avail:
        raise ConfigError(f"{key}: the run needs about {need / 2 ** 30:.1f} GiB of memory, more "
                          f"than the {avail / 2 ** 30:.1f} GiB available")


def build(cfg: dict):
    """The :class:`~meanfield.experiment.Experiment` of a resolved configuration
    (ConfigError, before anything is allocated, when it cannot fit in memory)."""
    check_memory(cfg)
    train, test, target = make_data(cfg)
    sv = cfg["solver"]
    return Experiment(
        network=make_network(cfg), train=train, test=test, target=target,
        schedule=make_schedule(cfg["stages"]),
        stop=solvers.Stop(t_end=sv.get("t_end"), steps=sv.get("steps"), loss_tol=sv.get("loss_tol")),
        method=sv["method"], dt=sv["dt"], rtol=sv["rtol"], atol=sv["atol"], loss=sv["loss"],
        seed=cfg["seed"]["noise"], record=dict(cfg["record"]), config=cfg)


def make_limit(cfg: dict, nodes: int = 16, norm_nodes: int = 64, direction_nodes: int = 64,
               rule: str = "tensor"):
    """The exact m, N → ∞ limit of the configuration's network and data
    (:class:`meanfield.limit.TwoLayerLimit` for one block,
    :class:`meanfield.limit.ThreeLayerLimit` for two; docs/math.md §8), with ``nodes``
    nodes per coordinate of its initial-law rules, ``norm_nodes`` per piece of its
    norm rule and ``direction_nodes`` in its direction rule (smooth first blocks).
    ``rule``: the first block's initial-law rule, "tensor" or "homogeneous" (ReLU,
    Gaussian laws, bottleneck 1; :func:`meanfield.limit.homogeneous_rule`).
    ConfigError naming the key when the configuration is not a problem the limit
    solver reduces: a mean-field network of one or two blocks with the squared
    loss, a radial law (a heavy-tailed one only under bounded features) and target, a
    rotation-invariant initial law of the first block's u, and stages without noise
    whose projections commute with rotations of u."""
    mc = cfg["model"]
    L = len(mc["widths"])
    if L > 2:
        raise ConfigError(f"model.widths: the limit solver reduces networks of one or two blocks; "
                          f"this one has {L}")
    checks = (("model.scaling", mc["scaling"], "mf"), ("model.dtype", mc["dtype"], "float64"),
              ("solver.loss", cfg["solver"]["loss"], "squared"))
    for key, got, want in checks:
        if got != want:
            raise ConfigError(f"{key}: the limit solver needs {want!r}, got {got!r}")
    for i, st in enumerate(cfg["stages"]):
        if st.get("langevin"):
            raise ConfigError(f"stages[{i}].langevin: the limit solver has no noise")
        for j, pr in enumerate(st["projections"]):
            touches_u = any(solvers.match_groups([solvers.Group("1.u", 0, (1, 1))], [g])
                            for g in pr["groups"])
            if touches_u and not (pr["kind"] == "ball" and pr["per"] == "particle"):
                raise ConfigError(f"stages[{i}].projections[{j}]: only a per-particle ball "
                                  "commutes with rotations of u (the limit holds ‖u‖ only)")
            if pr["kind"] == "ball" and pr["per"] == "group":
                raise ConfigError(f"stages[{i}].projections[{j}]: a per-group ball has no "
                                  "infinite-width limit")
    frozen = frozen_groups(cfg)
    laws = init_laws(cfg, 1)
    law, target = make_distribution(cfg), make_target(cfg)
    bounded = activation_code(mc["activations"][0]) in BOUNDED
    for key, check in (("data.distribution", lambda: norm_quantile(law, bounded)),
                       ("target.kind", lambda: target_profile(target))):
        try:
            check()
        except ValueError as e:
            raise ConfigError(f"{key}: {e}") from None
    if rule not in RULES:
        raise ConfigError(f"limit rule: expected one of {', '.join(RULES)}, got {rule!r}")
    if rule == "homogeneous" and L == 2 and mc["bottleneck"][0] != 1:
        raise ConfigError(f"model.bottleneck: the homogeneous rule reduces a first block with "
                          f"k = 1, not {mc['bottleneck'][0]} (use the tensor rule)")
    if rule == "homogeneous":
        for i, st in enumerate(cfg["stages"]):
            for j, pr in enumerate(st["projections"]):
                if any(solvers.match_groups([solvers.Group(g, 0, (1, 1))], [pat])
                       for g in ("1.u", "1.c", "1.v") for pat in pr["groups"]):
                    raise ConfigError(f"stages[{i}].projections[{j}]: a projection of the first "
                                      "block does not commute with scaling, which the "
                                      "homogeneous rule needs (use the tensor rule)")
    if rule == "homogeneous" and mc["activations"][0] != "relu":
        raise ConfigError(f"model.activations: the homogeneous rule needs a 2-homogeneous "
                          f"activation (relu), not {mc['activations'][0]!r}")
    try:
        if L == 2:
            return ThreeLayerLimit(
                mc["d"], law, target, k=mc["bottleneck"][0], nodes=nodes, norm_nodes=norm_nodes,
                init={group_name(l, p): law_ for l in (1, 2)
                      for p, law_ in init_laws(cfg, l).items()},
                activation=mc["activations"][0], activation2=mc["activations"][1],
                bias=mc["bias"], out_bias=mc["out_bias"], frozen=frozen,
                direction_nodes=direction_nodes, output=mc["output"], rule=rule)
        return TwoLayerLimit(mc["d"], law, target, nodes=nodes, activation=mc["activations"][0],
                             direction_nodes=direction_nodes, output=mc["output"],
                             norm_nodes=norm_nodes, u_init=laws["u"], c_init=laws["c"],
                             v_init=laws["v"], bias=mc["bias"], out_bias=mc["out_bias"],
                             train=tuple(p for p in PARAMS if group_name(1, p) not in frozen),
                             train_out_bias=OUT_BIAS not in frozen, rule=rule)
    except ValueError as e:   # the initial laws, the rule
        raise ConfigError(f"model.init: {e}") from None
