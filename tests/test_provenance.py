"""Provenance: a run file records the seeds that actually made the run (never a false 0)
and the versions its bit-for-bit claims depend on, for runs from TOML and from Python."""
import platform
import subprocess
import sys
import pathlib

import h5py
import numpy as np
import scipy

import meanfield as mf
import solvers
from meanfield import cli
from meanfield.store import fileformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = """
seed = { init = 5, data = 6, noise = 7 }
[model]
d = 3
widths = [8]
[data]
distribution = "gaussian"
n_train = 16
n_test = 8
[target]
kind = "relu-norm"
[solver]
dt = 0.1
steps = 2
"""


def _experiment(network, train, test=None):
    return mf.Experiment(network, train, test, stop=solvers.Stop(steps=2), dt=0.1, seed=11)


def _data(seed=None, n=16):
    X = mf.data.Gaussian(4).sample(n, 99)
    return mf.Dataset(X, mf.ReluNorm(1.0)(X), seed=seed)


def test_a_run_built_in_python_records_its_true_seeds(tmp_path, capsys):
    path = tmp_path / "py.h5"
    mf.run(_experiment(mf.sl_depth1(4, 8, seed=3), _data(seed=21), _data(seed=21, n=8)), path)
    with mf.open_run(path) as r:
        assert r.seeds == {"init": 3, "data": 21, "noise": 11}
    assert cli.main(["info", str(path)]) == 0
    assert "seeds: init 3, data 21, noise 11" in capsys.readouterr().out


def test_unknown_seeds_are_recorded_as_unknown_never_as_zero(tmp_path, capsys):
    net = mf.sl_depth1(4, 8, seed=3)
    blocks = [mf.Block(b.u.copy(), b.c.copy(), b.v.copy(), b.activation, b.bias) for b in net.blocks]
    from_arrays = mf.Network(blocks, out_bias=0.0)           # parameters from elsewhere
    assert from_arrays.seed is None and net.copy().seed == 3 and net.astype(np.float32).seed == 3
    path = tmp_path / "unknown.h5"
    mf.run(_experiment(from_arrays, _data()), path)
    with h5py.File(path, "r") as f:
        assert "seed_init" not in f.attrs and "seed_data" not in f.attrs
        assert int(f.attrs["seed_noise"]) == 11
    with mf.open_run(path) as r:
        assert r.seeds == {"init": None, "data": None, "noise": 11}
    assert cli.main(["info", str(path)]) == 0
    assert "seeds: init unknown, data unknown, noise 11" in capsys.readouterr().out
    # train and test drawn with different seeds: no single data seed
    exp = _experiment(net, _data(seed=1), _data(seed=2, n=8))
    assert exp.seeds == {"init": 3, "data": None, "noise": 11}


def test_a_run_from_toml_records_the_configured_seeds(tmp_path):
    path = tmp_path / "toml.h5"
    res = mf.run(TINY, path)
    assert res.status == "complete"
    exp = mf.from_config(TINY)
    assert exp.network.seed == 5 and exp.train.seed == 6 and exp.test.seed == 6
    with mf.open_run(path) as r:
        assert r.seeds == {"init": 5, "data": 6, "noise": 7} == r.config["seed"]


def test_the_header_records_the_versions_and_the_cpu(tmp_path):
    path = tmp_path / "v.h5"
    mf.run(TINY, path)
    import llvmlite
    import numba

    with h5py.File(path, "r") as f:
        a = {k: fileformat.text(v) for k, v in f.attrs.items() if k in fileformat.VERSION_KEYS}
    assert set(a) == set(fileformat.VERSION_KEYS)
    assert a["python_version"] == platform.python_version()
    assert (a["numpy_version"], a["scipy_version"], a["numba_version"], a["llvmlite_version"]) == \
        (np.__version__, scipy.__version__, numba.__version__, llvmlite.__version__)
    assert a["cpu"] and a["cpu"] != "generic"


def test_info_of_a_python_run_in_a_fresh_process(tmp_path):
    """The command line reads the seeds back from the file alone."""
    path = tmp_path / "p.h5"
    mf.run(_experiment(mf.two_layer(4, 8, seed=12), _data(seed=4)), path)
    out = subprocess.run([sys.executable, "-m", "meanfield", "info", str(path)], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "seeds: init 12, data 4, noise 11" in out.stdout


def test_runs_and_gap_results_have_a_useful_repr(tmp_path):
    path = tmp_path / "r.h5"
    mf.run(TINY, path)
    r = mf.open_run(path)
    assert repr(r) == f"<Run complete: {path}, format 2, d=3, widths=[8], 2 series rows, 2 snapshots>"
    r.close()
    assert repr(r) == f"<Run {path} (closed)>"
    gap = ROOT / "tests" / "data" / "gap-v1.h5"
    assert repr(mf.open_gap(gap)) == ("<GapResult complete: widths [4, 8] x 2 seeds, reference "
                                      "[16, 16], coupling subsample, 3 gap times, 2/2 widths "
                                      f"done, {gap}>")


def test_the_citation_and_changelog_name_this_version():
    """CITATION.cff's version is the package's; the license file is the one setup.cfg
    names; the changelog lists this version."""
    import re
    from pathlib import Path

    import meanfield

    root = Path(__file__).resolve().parents[1]
    cff = (root / "CITATION.cff").read_text()
    assert re.search(r'^version: "([^"]+)"$', cff, re.M).group(1) == meanfield.__version__
    assert "MIT License" in (root / "LICENSE").read_text()
    assert "license_files = LICENSE" in (root / "setup.cfg").read_text()
    assert f"## {meanfield.__version__}" in (root / "CHANGELOG.md").read_text()
