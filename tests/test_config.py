"""Experiment configurations: validation errors, overrides, round trips, fuzzing."""
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import meanfield as mf
from meanfield import config as C
from meanfield.presets import names as preset_names, text as preset_text

TINY = """
seed = 5
[model]
d = 3
widths = [16, 12]
[data]
n_train = 64
n_test = 32
[solver]
steps = 40
"""


def test_defaults_filled_in():
    cfg = C.load(TINY)
    assert cfg["model"]["bottleneck"] == [1]
    assert cfg["model"]["activations"] == ["relu", "relu"]
    assert cfg["model"]["output"] == "identity" and cfg["model"]["scaling"] == "mf"
    assert cfg["data"]["distribution"] == "gaussian"
    assert cfg["data"]["std"] == pytest.approx(1 / math.sqrt(3))
    assert cfg["target"] == {"kind": "relu-norm", "r": 1.0}
    assert cfg["solver"]["method"] == "euler" and cfg["solver"]["loss"] == "squared"
    assert cfg["record"]["series_every"] == 10 and cfg["stages"] == []


def test_dumps_round_trips_and_every_preset_resolves():
    for name in preset_names():
        cfg = C.load(preset_text(name))
        assert C.load(C.dumps(cfg)) == cfg
    cfg = C.load(TINY + """
[[stages]]
duration = 1.0
freeze = ["2"]
time_scales = {"1.u" = 0.5}
projections = [{kind = "ball", groups = ["1.u"], radius = 2.0}, {kind = "box", groups = ["2.c"], lo = -1.0, hi = 1.0}]
[[stages]]
langevin = {tau = 0.01}
""")
    assert C.load(C.dumps(cfg)) == cfg
    assert cfg["stages"][1]["langevin"] == {"tau": 0.01, "lam": 0.0}


def test_build_is_deterministic_and_matches_config():
    cfg = C.load(TINY)
    a, b = C.build(cfg), C.build(cfg)
    assert np.array_equal(a.network.theta, b.network.theta)
    assert np.array_equal(a.train.X, b.train.X) and np.array_equal(a.test.X, b.test.X)
    assert a.network.widths == (16, 12) and a.train.X.shape == (64, 3) and a.test.X.shape == (32, 3)
    np.testing.assert_allclose(a.train.y, mf.ReluNorm(1.0)(a.train.X))
    c = C.build(C.load(TINY, ["seed=4"]))
    assert not np.array_equal(a.network.theta, c.network.theta)


def test_overrides():
    cfg = C.load(TINY, ["solver.dt=0.5", "model.widths=[4, 5, 6]", "model.bottleneck=[2, 3]",
                        "data.distribution=ball", "data.radius=2", 'model.init."1.v"={law="constant", value=2.0}',
                        "model.freeze=[\"1.u\"]"])
    assert cfg["solver"]["dt"] == 0.5 and cfg["model"]["widths"] == [4, 5, 6]
    assert cfg["data"] == {"distribution": "ball", "n_train": 64, "n_test": 32, "radius": 2.0}
    net = C.build(cfg).network
    assert np.all(net.blocks[0].v == 2.0) and net.blocks[0].train == {"c", "v"}
    assert net.dims == (3, 2, 3, 1)


BAD = [
    ("", "model: required"),
    ("seed = -1\n[model]\nd=3\nwidths=[4]\n[solver]\nsteps=1", "seed: expected an integer >= 0"),
    ("colour = 1\n" + TINY, "colour: unknown key"),
    (TINY.replace("d = 3", "d = 3\nwidth = 4"), "model.width: unknown key"),
    (TINY.replace("d = 3", "d = 3.5"), "model.d: expected an integer"),
    (TINY.replace("d = 3", "d = true"), "model.d: expected an integer"),
    (TINY.replace("d = 3", "d = 0"), "model.d: expected an integer >= 1"),
    (TINY.replace("widths = [16, 12]", "widths = []"), "model.widths: expected at least one"),
    (TINY.replace("widths = [16, 12]", "widths = [16, 0]"), "model.widths[1]"),
    (TINY.replace("widths = [16, 12]", "widths = [16, \"a\"]"), "model.widths[1]: expected a list of integers"),
    (TINY.replace("d = 3", "d = 3\nactivations = [\"relu\"]"), "model.activations: expected 2 names"),
    (TINY.replace("d = 3", "d = 3\nactivations = [\"relu\", \"gelu\"]"), "model.activations[1]"),
    (TINY.replace("d = 3", "d = 3\nbottleneck = [1, 2]"), "model.bottleneck: expected 1 values"),
    (TINY.replace("d = 3", "d = 3\noutput = \"softmax\""), "model.output: expected one of"),
    (TINY.replace("d = 3", "d = 3\nfreeze = [\"3.u\"]"), "model.freeze pattern '3.u' matches no group"),
    (TINY.replace("d = 3", "d = 3\ninit = {\"1.w\" = {law = \"zero\"}}"), "model.init.1.w"),
    (TINY.replace("d = 3", "d = 3\ninit = {\"1.u\" = {law = \"cauchy\"}}"), "model.init.1.u.law"),
    (TINY.replace("d = 3", "d = 3\ninit = {\"1.u\" = {law = \"zero\", std = 1.0}}"), "model.init.1.u.std: unknown"),
    (TINY.replace("n_train = 64", "n_train = 0"), "data.n_train: expected an integer >= 1"),
    (TINY.replace("n_train = 64", "n_train = 64\nalpha = 2.0"), "data.alpha: unknown key"),
    (TINY.replace("n_train = 64", "n_train = 64\ndistribution = \"cauchy\""), "data.distribution: expected one of"),
    (TINY.replace("n_train = 64", "n_train = 64\ndistribution = \"radial\""), "data.norm: required"),
    (TINY.replace("n_train = 64", "n_train = 64\ndistribution = \"radial\"\nnorm = {dist = \"norm\"}"),
     "data.norm: the norm law must live on"),
    (TINY.replace("n_train = 64", "n_train = 64\ndistribution = \"radial\"\nnorm = {dist = \"nope\"}"),
     "data.norm.dist"),
    (TINY.replace("n_train = 64", "n_train = 64\ndistribution = \"safran-lee-d\"\nalpha = 0.5"),
     "data.alpha: expected a number >= 1"),
    (TINY + "[target]\nkind = \"ball\"\nr = 1.0\n", "target.r: unknown key"),
    (TINY + "[target]\nkind = \"ball\"\nlam = -1.0\n", "target.lam: expected a number > 0"),
    (TINY.replace("steps = 40", "steps = 40\nmethod = \"rk7\""), "solver.method: expected one of"),
    (TINY.replace("steps = 40", "steps = 40\ndt = 0"), "solver.dt: expected a number > 0"),
    (TINY.replace("steps = 40", "dt = 0.1"), "solver.steps: required"),
    (TINY.replace("steps = 40", "steps = 40\nloss = \"hinge\""), "solver.loss: expected one of"),
    (TINY + "[[stages]]\nfreeze = [\"4\"]\n", "stages[0].freeze pattern '4' matches no group"),
    (TINY + "[[stages]]\nsteps = 2\nduration = 1.0\n", "stages[0].duration/steps"),
    (TINY + "[[stages]]\n[[stages]]\nsteps = 2\n", "stages[0]: needs duration or steps"),
    (TINY + "[[stages]]\ntime_scales = {\"1\" = -1.0}\n", "stages[0].time_scales.1: expected a number >= 0"),
    (TINY + "[[stages]]\nprojections = [{kind = \"ball\", groups = [\"1.u\"]}]\n",
     "stages[0].projections[0].radius: required"),
    (TINY + "[[stages]]\nprojections = [{kind = \"box\", groups = [\"1.u\"], lo = 1.0, hi = 0.0}]\n",
     "stages[0].projections[0].lo/hi"),
    (TINY + "[[stages]]\nlangevin = {tau = 1.0, beta = 2}\n", "stages[0].langevin.beta: unknown"),
    (TINY.replace("steps = 40", "steps = 40\nmethod = \"rk45\"") + "[[stages]]\nlangevin = {tau = 1.0}\n",
     "stages[0].langevin.tau: noise needs a fixed-step method"),
    (TINY + "[record]\nseries_every = 0\n", "record.series_every: expected an integer >= 1"),
    (TINY + "[record]\nseries_every = 4\ntest_every = 6\n", "record.test_every: expected a multiple"),
    (TINY + "[record]\ncompression = \"zstd\"\n", "record.compression: expected one of"),
    ("model = 3", "model: expected a table"),
    ("[model\nd=3", "invalid TOML"),
]


@pytest.mark.parametrize("text,msg", BAD)
def test_every_validation_error_names_the_key(text, msg):
    with pytest.raises(C.ConfigError) as ei:
        C.load(text)
    assert msg in str(ei.value)
    assert "\n" not in str(ei.value)


def test_bad_overrides():
    with pytest.raises(C.ConfigError, match="expected key=value"):
        C.load(TINY, ["solver.dt"])
    with pytest.raises(C.ConfigError, match="model.d: expected an integer"):
        C.load(TINY, ["model.d=three"])
    with pytest.raises(C.ConfigError, match="is not a table"):
        C.load(TINY, ["solver.steps.x=1"])


# -- fuzzing: any input is a result or the documented error ---------------------------
KEYS = {
    "": ["seed", "model", "data", "target", "solver", "stages", "record", "extra"],
    "model": ["d", "widths", "bottleneck", "activations", "output", "scaling", "bias", "out_bias",
              "freeze", "dtype", "init", "zz"],
    "data": ["distribution", "n_train", "n_test", "std", "radius", "alpha", "norm"],
    "target": ["kind", "r", "lam", "profile", "freq", "width", "teacher_width",
               "teacher_activation", "teacher_seed"],
    "solver": ["method", "dt", "steps", "t_end", "loss", "loss_tol", "rtol", "atol"],
    "record": ["series_every", "snapshot_every", "checkpoint_every", "test_every", "compression"],
}
WORDS = ["relu", "erf", "ball", "gaussian", "radial", "euler", "rk45", "1.u", "2", "clip01",
         "uniform", "norm", "zero", "sphere", "teacher", "mf", "x"]
scalars = st.one_of(st.integers(-3, 70), st.floats(allow_nan=True, allow_infinity=True),
                    st.booleans(), st.sampled_from(WORDS))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(WORDS + ["law", "dist", "kind", "tau", "groups", "loc", "scale"]),
                    inner, max_size=3)), max_leaves=8)


def _section(name):
    return st.dictionaries(st.sampled_from(KEYS[name]), values, max_size=6)


configs = st.fixed_dictionaries({}, optional={
    "seed": values, "model": _section("model"), "data": _section("data"),
    "target": _section("target"), "solver": _section("solver"), "record": _section("record"),
    "stages": st.lists(st.dictionaries(st.sampled_from(
        ["duration", "steps", "freeze", "time_scales", "projections", "langevin", "name", "q"]),
        values, max_size=4), max_size=3)})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_random_configurations_give_a_result_or_a_config_error(raw):
    try:
        text = C.dumps_raw(raw)
    except (TypeError, ValueError):
        return
    try:
        cfg = C.load(text)
    except C.ConfigError as e:
        assert "\n" not in str(e)
        return
    assert C.load(C.dumps(cfg)) == cfg


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text_gives_a_result_or_a_config_error(text):
    try:
        C.load(text)
    except C.ConfigError:
        pass


def test_presets_show_prints_the_toml_that_runs(capsys):
    """`meanfield presets --show NAME` prints the preset's text, which loads to the same
    configuration; an unknown name is a one-line usage error."""
    from meanfield import cli
    from meanfield.config import load

    for name in preset_names():
        assert cli.main(["presets", "--show", name]) == 0
        out = capsys.readouterr().out
        assert out == preset_text(name) and load(out) == load(preset_text(name))
    assert cli.main(["presets", "--show", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'nope'" in err and len(err.strip().splitlines()) == 1
    assert cli.main(["presets", "ball-depth2"]) == 0   # what a new user types first
    assert capsys.readouterr().out == preset_text("ball-depth2")
    assert cli.main(["presets", "ball-depth2", "--show", "ball-depth1"]) == 2
    assert "two names" in capsys.readouterr().err
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "presets NAME" in out
    for name in preset_names():   # each with its size and measured run time
        i = out.index(name)
        assert re.search(r"\d+ parameters \(widths \[.*\]\), N = \d+, .*; runtime \d+ s",
                         out[i:].splitlines()[1]), name
