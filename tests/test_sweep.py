"""Width sweeps: rates at t = 0, the gap file, Dask, kill and resume, bad options."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import meanfield as mf
from meanfield import cli
from meanfield.presets import names as preset_names, text as preset_text
from meanfield.discretization import GapFileError, SweepError, open_gap, resume_sweep, sweep

ROOT = Path(__file__).resolve().parents[1]

SMALL = dict(widths=[8, 16, 32], seeds=3, reference_width=128, every=25, distance_size=16,
             n_boot=50, overrides=["solver.steps=50", "data.n_train=64", "data.n_test=32"])


def _arrays(path) -> dict:
    """Every dataset of a gap file, and every attribute but the dates (object references,
    the dimension scales' links, as the names of the objects they point to)."""
    out = {}
    with h5py.File(path, "r") as f:
        def named(v):
            if isinstance(v, h5py.Reference):
                return f[v].name
            if isinstance(v, (np.ndarray, np.void)) and (v.dtype == object or v.dtype.names):
                items = v.tolist() if isinstance(v, np.ndarray) else tuple(v)
                return str(_deep(items, named))
            return v

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
            for k, v in obj.attrs.items():
                out[f"{name}@{k}"] = named(v)
        f.visititems(visit)
        for k, v in f.attrs.items():
            if k not in ("created", "updated"):
                out[f"@{k}"] = v
    return out


def _deep(x, fn):
    if isinstance(x, (list, tuple)):
        return [_deep(y, fn) for y in x]
    if isinstance(x, np.ndarray):
        return [_deep(y, fn) for y in x.tolist()]
    return fn(x)


def _same_files(a, b):
    A, B = _arrays(a), _arrays(b)
    assert sorted(A) == sorted(B)
    for k in A:
        x, y = np.asarray(A[k]), np.asarray(B[k])
        assert x.shape == y.shape and x.dtype == y.dtype, k
        if x.dtype.kind == "f":
            assert np.array_equal(x, y, equal_nan=True), k
        else:
            assert np.array_equal(x, y), k


@pytest.mark.parametrize("preset", preset_names())
def test_function_gap_at_t0_scales_with_beta_one_half(preset):
    """At t = 0 a subsample member's squared function gap is σ²(1/m − 1/M) in
    expectation: fitted against the effective width, β = 1/2 (± 0.1) for every preset."""
    r = sweep(preset_text(preset), widths=[16, 32, 64, 128, 256, 512, 1024], seeds=16,
              reference_width=8192, every=1, distance_size=16, n_boot=200,
              overrides=["solver.steps=0", "data.n_train=16", "data.n_test=256"])
    f = r.rates["function"]
    assert len(r.t) == 1 and r.t[0] == 0.0
    assert abs(f["beta"][0] - 0.5) <= 0.1, (preset, f["beta"][0])
    assert f["beta_lo"][0] <= f["beta"][0] <= f["beta_hi"][0]
    assert f["x"] == "effective width (1/m - 1/M)^-1"
    # at t = 0 a subsample member sits on its reference particles: coupling gap 0
    assert np.all(r.coupling[:, :, 0] == 0.0)


def test_sweep_file_holds_the_required_names_and_reads_back(tmp_path):
    path = tmp_path / "g.h5"
    res = sweep(preset_text("relu-norm-3layer"), path=path, **SMALL)
    W, S, T, L = 3, 3, 3, 2
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "meanfield-gap" and f.attrs["format_version"] == 2
        assert f.attrs["status"] == "complete"
        assert f["gap/widths"][()].tolist() == [8, 16, 32]
        assert f["gap/seeds"].shape == (S,) and f["gap/t"].shape == (T,)
        assert f["gap/function"].shape == (W, S, T)
        for k in ("beta", "beta_lo", "beta_hi"):
            assert f[f"gap/rate/function/{k}"].shape == (T,)
            assert f[f"gap/rate/bias/{k}"].shape == (T,)
        assert f["gap/feature"].shape == (W, S, T, L)
        assert f["gap/w2_floor"].shape == (W, T, L)
        assert f["reference/theta"].shape[0] == T
        for w, m in enumerate([8, 16, 32]):
            assert f[f"members/{w}/theta"].shape == (S, res.template().n_params * m // 128)
        assert json.loads(f.attrs["options"])["coupling"] == "subsample"
        assert f["gap/t"][-1] == pytest.approx(50 * 0.5)
    back = open_gap(path)
    assert back.complete and back.rates.keys() == res.rates.keys()
    for k in res.data:
        if k != "decomposition":
            assert np.array_equal(back.data[k], res.data[k], equal_nan=True), k
    for term in res.decomposition:
        assert np.array_equal(back.decomposition[term], res.decomposition[term], equal_nan=True)
    # the final particles of every member are stored: its function gap at the end is
    # recomputed offline from the file alone
    ref = back.template().with_theta(back.reference.theta[-1])
    for w, widths in enumerate(back.options.widths):
        from meanfield.discretization import member

        tmpl = member(back.template(), widths, seed=1).network
        net = tmpl.with_theta(back.theta[w][1])
        g = np.sqrt(np.mean((net(back.x_test) - ref(back.x_test)) ** 2))
        assert g == back.function[w, 1, -1]
    # the decomposition's bound holds for every member at every time
    assert np.all(back.decomposition["holds"] == 1.0)


def test_independent_coupling(tmp_path):
    res = sweep(preset_text("teacher-2layer"), coupling="independent", **SMALL)
    assert np.all(np.isnan(res.coupling))
    assert res.rates["function"]["x"] == "effective width (1/m + 1/M)^-1"
    assert "coupling/1" not in res.rates
    # independent members do not start on the reference's particles
    assert np.all(res.function[:, :, 0] > 0)


def test_in_process_local_cluster_and_scheduler_are_bit_identical(tmp_path):
    """The same file in this process, on a LocalCluster of 2 workers (1 Numba thread
    each) and on a running cluster reached by its scheduler address."""
    distributed = pytest.importorskip("dask.distributed")
    a, b, c = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"
    sweep(preset_text("relu-norm-3layer"), path=a, **SMALL)
    from meanfield.parallel import available_cores

    sweep(preset_text("relu-norm-3layer"), path=b, workers=min(2, available_cores()), **SMALL)
    _same_files(a, b)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        sweep(preset_text("relu-norm-3layer"), path=c, scheduler=cluster.scheduler_address, **SMALL)
    _same_files(a, c)
    with pytest.raises(SweepError, match="expected an address like tcp://HOST:PORT"):
        sweep(preset_text("relu-norm-3layer"), scheduler="localhost", **SMALL)


def _spawn(args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "meanfield", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigkill_mid_sweep_then_resume_equals_an_uninterrupted_sweep(tmp_path):
    args = ["gap", "--preset", "teacher-2layer", "--widths", "8,16,...,256", "--seeds", "3",
            "--reference-width", "1024", "--every", "200", "--distance-size", "16",
            "--bootstrap", "50", "--set", "solver.steps=1000", "--set", "data.n_train=128",
            "--set", "data.n_test=32", "-q"]
    whole, killed = tmp_path / "whole.h5", tmp_path / "killed.h5"
    assert cli.main(args + ["-o", str(whole)]) == 0
    proc = _spawn(args + ["-o", killed])
    deadline = time.time() + 300
    done = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            with h5py.File(killed, "r") as f:
                done = int(f["gap/done"][()].sum())
        except (OSError, KeyError):
            pass
        if done >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the sweep ended before it could be killed"
    r = open_gap(killed)
    assert 2 <= r.done.sum() < 6 and r.file_status == "running" and not r.rates
    finished = {w: r.theta[w].copy() for w in np.flatnonzero(r.done)}
    res = resume_sweep(killed)
    for w, th in finished.items():   # finished members were read, not recomputed
        assert np.array_equal(res.theta[w], th)
    _same_files(whole, killed)
    with pytest.raises(SweepError, match="already complete"):
        resume_sweep(killed)


def test_bad_options_are_one_line_errors_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "g.h5"
    base = ["gap", "--preset", "teacher-2layer", "-o", str(out), "-q"]
    cases = [
        (["--seeds", "3"], "--widths is required"),
        (["--widths", "16,32", "--reference-width", "32"], "not below the reference"),
        (["--widths", "16,x"], "is not a width"),
        (["--widths", "16,32,...,100"], "not on the grid"),
        (["--widths", "16"], "at least two widths"),
        (["--widths", "16,32", "--seeds", "1"], "seeds: expected an integer >= 2"),
        (["--widths", "16,32", "--distance-size", "200"], "more than half the reference"),
        (["--widths", "16,32", "--set", "solver.method=rk45"], "fixed-step method"),
        (["--widths", "16,32", "--set", "solver.loss_tol=0.1"], "loss_tol"),
        (["--widths", "16,32", "--set", "data.n_test=0"], "data.n_test"),
        (["--widths", "16,32", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"],
         "not both"),
        (["--widths", "16:8,32:16"], "has 2 entries; the network has 1 blocks"),
        (["--widths", "16,32", "--workers", "100000"], "more worker processes than the"),
        (["--widths", "16,32", "--set", "model.d=0"], "model.d"),
    ]
    for extra, msg in cases:
        assert cli.main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, (extra, err)
        assert not out.exists()
        assert not [p for p in os.listdir(tmp_path) if not p.startswith(".")]
    # an existing file is not overwritten without --force
    out.write_bytes(b"precious")
    assert cli.main(base + ["--widths", "16,32"]) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == b"precious"
    assert cli.main(["gap", "--resume", str(out), "--widths", "16,32"]) == 2
    assert "--resume takes the gap file only" in capsys.readouterr().err
    assert cli.main(["gap", "--resume", str(out)]) == 2
    assert "not a readable HDF5 file" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"


def test_foreign_and_future_gap_files_are_refused(tmp_path):
    path = tmp_path / "g.h5"
    sweep(preset_text("teacher-2layer"), path=path, **SMALL)
    run = tmp_path / "run.h5"
    mf.run(preset_text("teacher-2layer"), run, overrides=["solver.steps=2", "data.n_train=16",
                                                          "data.n_test=8"])
    with pytest.raises(GapFileError, match="not a meanfield gap file.*a run file"):
        open_gap(run)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(GapFileError, match="version 99 is not supported"):
        open_gap(path)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 1
        f.attrs["config"] = str(f.attrs["config"]) + "\n# edited\n"
    with pytest.raises(GapFileError, match="does not match its checksum"):
        open_gap(path)


def test_info_and_plot_of_a_gap_file(tmp_path, capsys):
    path = tmp_path / "g.h5"
    assert cli.main(["gap", "--preset", "relu-norm-3layer", "--widths", "8,16,32", "--seeds", "3",
                     "--reference-width", "128", "--every", "25", "--distance-size", "16",
                     "--bootstrap", "50", "--set", "solver.steps=50", "--set", "data.n_train=64",
                     "--set", "data.n_test=32", "-o", str(path), "-q"]) == 0
    out = capsys.readouterr().out
    assert "complete" in out and "beta =" in out
    assert cli.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "meanfield gap file, format version 2" in out and "rate of the function gap" in out
    assert cli.main(["plot", str(path), "-o", str(tmp_path / "figs")]) == 0
    files = sorted(os.listdir(tmp_path / "figs"))
    assert files == ["beta.png", "bias.png", "decomposition.png", "gap-vs-time.png",
                     "gap-vs-width.png"]
    assert all(os.path.getsize(tmp_path / "figs" / f) > 10_000 for f in files)


def test_a_diverging_reference_is_recorded_not_a_crash(tmp_path):
    """The reference diverges at once (dt far too large): the members stop being compared
    after the reference's last finite state, and the sweep ends with status diverged."""
    path = tmp_path / "g.h5"
    r = sweep(preset_text("teacher-2layer"), widths=[8, 16, 32], seeds=2, reference_width=128,
              every=5, distance_size=16, n_boot=20, path=path,
              overrides=["solver.steps=60", "solver.dt=40", "data.n_train=64", "data.n_test=32"])
    assert r.reference.status == "diverged" and r.file_status == "diverged"
    assert open_gap(path).file_status == "diverged" and r.done.all()
    assert np.all(np.isfinite(r.function[:, :, 0]))
