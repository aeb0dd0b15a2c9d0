"""Labelled exports (meanfield/analysis.py): the values are the file's, the labels and
units are there, rows past the counters are not, and the core works without pandas."""
import pathlib
import subprocess
import sys

import h5py
import numpy as np
import pytest

import meanfield as mf

pd = pytest.importorskip("pandas")
xr = pytest.importorskip("xarray")
ROOT = pathlib.Path(__file__).resolve().parents[1]
GAP = ROOT / "tests" / "data" / "gap-v1.h5"
TINY = """
seed = 4
[model]
d = 3
widths = [8, 6]
bottleneck = [2]
[data]
distribution = "gaussian"
n_train = 16
n_test = 8
[solver]
dt = 0.1
steps = 20
[record]
series_every = 2
snapshot_every = 10
"""


@pytest.fixture
def run_file(tmp_path):
    path = tmp_path / "r.h5"
    mf.run(TINY, path)
    with h5py.File(path, "r+") as f:   # a row past the counters (a killed writer's partial row)
        n = int(f["progress/counters"][0])
        f["series/loss"].resize(n + 1, axis=0)
        f["series/loss"][n] = 123.0
        for k in ("step", "t", "test_loss", "wall_time"):
            f[f"series/{k}"].resize(n + 1, axis=0)
        f["series/velocity_norm"].resize(n + 1, axis=0)
    return path


def test_a_run_as_a_dataframe(run_file):
    with mf.open_run(run_file) as r:
        df = r.to_dataframe()
        assert df.index.name == "step" and len(df) == r.n_series == 11
        assert list(df.columns) == ["t", "loss", "test_loss", "wall_time", "velocity_norm_1",
                                    "velocity_norm_2"]
        assert np.array_equal(df["loss"].to_numpy(), np.asarray(r.series["loss"]))
        assert np.array_equal(df.index.to_numpy(), np.arange(0, 21, 2))
        assert 123.0 not in df["loss"].to_numpy()
        assert np.array_equal(df["velocity_norm_2"].to_numpy(), np.asarray(r.series["velocity_norm"])[:, 1])


def test_a_run_as_an_xarray_dataset(run_file):
    with mf.open_run(run_file) as r:
        ds = r.to_xarray()
        theta = r.theta(-1)
        net = r.network(-1)
    assert dict(ds.sizes) == {"step": 11, "block": 2, "snapshot": 3, "particle_1": 8,
                              "coordinate_in_1": 3, "coordinate_out_1": 2, "particle_2": 6,
                              "coordinate_in_2": 2, "coordinate_out_2": 1}
    assert list(ds["t"].values) == pytest.approx([0.2 * i for i in range(11)])
    for name, var in ds.data_vars.items():
        assert var.attrs["long_name"] and var.attrs["units"], name
    assert np.array_equal(ds["u_1"].values[-1], net.blocks[0].u)
    assert np.array_equal(ds["c_2"].values[-1], net.blocks[1].c)
    assert np.array_equal(ds["v_2"].values[-1], net.blocks[1].v)
    assert theta.size == sum(ds[f"{p}_{l}"].values[-1].size for l in (1, 2) for p in "ucv")
    assert ds.attrs["seed_init"] == 4 and ds.attrs["status"] == "complete"
    with mf.open_run(run_file) as r:
        assert set(r.to_xarray(snapshots=False).sizes) == {"step", "block"}


def test_a_sweep_as_a_dataframe_and_a_dataset():
    res = mf.open_gap(GAP)
    W, S, T = res.function.shape
    L = res.feature.shape[-1]
    df = res.to_dataframe()
    assert df.index.names == ["width", "seed", "t"] and len(df) == W * S * T
    assert df.loc[(8, 1, res.t[-1]), "function"] == res.function[1, 1, -1]
    assert df.loc[(4, 0, 0.0), "feature_2"] == res.feature[0, 0, 0, 1]
    assert df.loc[(8, 1, res.t[-1]), "bound"] == res.decomposition["bound"][1, 1, -1]
    ds = res.to_xarray()
    assert dict(ds.sizes) == {"width": W, "seed": S, "t": T, "block": L, "point": res.x_test.shape[0]}
    assert list(ds["width"].values) == [4, 8] and list(ds["step"].values) == list(res.steps)
    assert np.array_equal(ds["outputs"].values, res.outputs)
    assert np.array_equal(ds["beta_function"].values, res.rates["function"]["beta"], equal_nan=True)
    assert np.array_equal(ds["beta_lo_feature_1"].values, res.rates["feature/1"]["beta_lo"], equal_nan=True)
    B, se = res.bias_squared()
    assert np.array_equal(ds["bias_squared"].values, B)
    assert np.array_equal(ds["bias_squared_se"].values, se, equal_nan=True)   # NaN with 2 seeds
    assert ds["bias_squared"].dims == ("width", "t")
    assert float(ds["function"].sel(width=8, seed=1).isel(t=-1)) == res.function[1, 1, -1]
    for name, var in ds.data_vars.items():
        assert var.attrs["long_name"] and var.attrs["units"], name
    from meanfield.discretization.result import ARRAYS, FLOORS, PER_BLOCK, PER_SEED
    from meanfield.layout import GAP_ATTRS, GAP_DIMS

    assert set(GAP_ATTRS) == set(ARRAYS)   # every member array is labelled, none twice
    assert {k: len(GAP_DIMS[k]) for k in ARRAYS} == {   # and has the shape its group says
        **{k: 3 for k in PER_SEED + FLOORS}, **{k: 4 for k in PER_BLOCK}, "outputs": 4}


def test_the_core_works_without_pandas_and_xarray(run_file):
    code = ("import sys\nsys.modules['pandas'] = None\nsys.modules['xarray'] = None\n"
            "import meanfield as mf\n"
            f"r = mf.open_run({str(run_file)!r})\nprint(r.n_series)\n"
            "try:\n    r.to_dataframe()\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["11", "this export needs pandas: pip install 'meanfield[analysis]'"]


def test_new_files_carry_netcdf_dimensions_and_units(tmp_path):
    """A new run file and a new gap file open in xarray's h5netcdf engine (a single
    group and the whole tree) with named dimensions, their coordinates, long names and
    units, and no phony dimension anywhere (warnings are errors: h5netcdf warns when it
    has to invent dimension names)."""
    pytest.importorskip("h5netcdf")
    import warnings

    run = tmp_path / "r.h5"
    mf.run(TINY, run)
    gap = tmp_path / "g.h5"
    res = mf.sweep(TINY, widths=[4, 6], seeds=3, reference_width=8, path=gap, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with xr.open_dataset(run, group="series", engine="h5netcdf") as ds, mf.open_run(run) as r:
            assert dict(ds.sizes) == {"step": r.n_series, "block": 2}
            assert list(ds["step"].values) == list(np.asarray(r.series["step"]))
            assert ds["velocity_norm"].dims == ("step", "block")
            assert ds["loss"].attrs == {"long_name": "training loss", "units": "1"}
            assert ds["wall_time"].attrs["units"] == "s"
        with xr.open_dataset(run, group="snapshots/blocks/1", engine="h5netcdf") as ds:
            assert ds["u"].dims == ("step", "particle", "coordinate_in")
            assert ds["u"].shape[1:] == (8, 3) and ds["v"].dims[-1] == "coordinate_out"
        with xr.open_dataset(gap, group="gap", engine="h5netcdf") as ds:
            assert ds["function"].dims == ("widths", "seeds", "t")
            assert list(ds["widths"].values) == [4, 6] and list(ds["seeds"].values) == [0, 1, 2]
            assert np.array_equal(ds["t"].values, res.t)
            assert np.array_equal(ds["function"].values, res.function)
            assert ds["outputs"].dims == ("widths", "seeds", "t", "point")
            assert ds["feature"].dims == ("widths", "seeds", "t", "block")
            assert ds["function"].attrs["long_name"].startswith("RMS gap")
        for path in (run, gap):
            tree = xr.open_datatree(path, engine="h5netcdf")
            for node in tree.subtree:
                assert not any(str(d).startswith("phony_dim") for d in node.to_dataset().dims), \
                    (path, node.path)
                for name, var in node.to_dataset().data_vars.items():
                    if var.ndim:
                        assert var.attrs.get("long_name") and var.attrs.get("units"), (node.path, name)
    assert mf.open_gap(gap).function.tobytes() == res.function.tobytes()
