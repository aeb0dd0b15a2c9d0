"""HDF5 run files, the reader, and the ``meanfield`` command line."""
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
import solvers
from meanfield import cli, config as C
from meanfield.runs import open_run
from meanfield.store import FORMAT_VERSION, MemoryRecorder, RunFileError

ROOT = Path(__file__).resolve().parents[1]
TINY = """
seed = 2
[model]
d = 3
widths = [16, 12]
bottleneck = [2]
activations = ["tanh", "relu"]
[data]
distribution = "ball"
radius = 2.0
n_train = 64
n_test = 32
[solver]
method = "heun"
dt = 0.2
steps = 37
[[stages]]
steps = 10
freeze = ["2"]
[[stages]]
langevin = {tau = 1e-4, lam = 0.01}
[record]
series_every = 2
test_every = 4
snapshot_every = 10
checkpoint_every = 5
"""


def write(tmp_path, text=TINY, name="tiny.toml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def run_cli(*args):
    return cli.main([str(a) for a in args])


# -- round trip: HDF5 recorder = in-memory recorder ---------------------------------------
def test_hdf5_and_memory_recorders_agree_and_read_back(tmp_path):
    out = tmp_path / "run.h5"
    assert run_cli("run", write(tmp_path), "-o", out, "-q") == 0
    cfg = C.load(TINY)
    exp = C.build(cfg)
    test_obj = mf.Objective(exp.network, exp.test)
    mem = MemoryRecorder(exp.network, cfg["record"], lambda th: test_obj.loss(th))
    obj = mf.Objective(exp.network, exp.train)
    for st in solvers.iterate(obj, exp.network.theta, every=mem.every(), **exp.solver_kwargs()):
        mem(st)
    mem.finish("complete")
    arrays = mem.arrays()
    with h5py.File(out, "r") as f:
        for key, arr in arrays.items():
            if key == "series/wall_time":
                continue
            np.testing.assert_array_equal(f[key][...], arr, err_msg=key)
        assert f["progress/counters"][0] == len(arrays["series/step"])
        np.testing.assert_array_equal(f["data/x"][...], exp.train.X)
        np.testing.assert_array_equal(f["data/y_test"][...], exp.test.y)
        assert f.attrs["format"] == "meanfield-run" and f.attrs["format_version"] == FORMAT_VERSION
        for k in ("package_version", "created", "numpy_version", "numba_version", "h5py_version"):
            assert f.attrs[k]
    steps = arrays["series/step"]
    assert list(steps[:3]) == [0, 2, 4] and steps[-1] == 37
    assert list(arrays["snapshots/step"]) == [0, 10, 20, 30, 37]  # initial row 0, final last
    test = arrays["series/test_loss"]
    assert np.isfinite(test[steps % 4 == 0]).all() and np.isnan(test[(steps % 4 != 0) & (steps != 37)]).all()
    assert np.isfinite(test[-1])
    # the reader
    with open_run(out) as r:
        assert r.status == "complete" and r.config == cfg
        assert r.n_series == len(steps) and len(r.series["loss"]) == len(steps)
        np.testing.assert_array_equal(np.asarray(r.series["loss"]), arrays["series/loss"])
        np.testing.assert_array_equal(r.series["velocity_norm"][-1], arrays["series/velocity_norm"][-1])
        net = r.network(-1)
        np.testing.assert_array_equal(net.theta, mem.snapshots["theta"][-1])
        np.testing.assert_array_equal(r.checkpoint()["theta"], mem.snapshots["theta"][-1])
        X = np.asarray(r.data["x_test"])
        np.testing.assert_allclose(net(X), net.forward_numpy(X), rtol=1e-12, atol=1e-14)
        assert np.asarray(r.series["loss"])[-1] == pytest.approx(mf.Objective(net, exp.train).loss())


def test_velocity_norms_are_block_rms():
    net = mf.rzg_three_layer(3, 5, 4, k=2, seed=0)
    vel = np.arange(net.n_params, dtype=float)
    from meanfield.store import velocity_norms

    vn = velocity_norms(net, vel)
    b1 = vel[:5 * (3 + 1 + 2)]
    assert vn[0] == pytest.approx(np.sqrt(np.sum(b1 ** 2) / 5))


# -- the reader refuses what it does not know ----------------------------------------------
def test_reader_refuses_foreign_and_future_files(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(RunFileError, match="not a meanfield run file"):
        open_run(foreign)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(RunFileError, match="not a readable HDF5 file"):
        open_run(text)
    with pytest.raises(RunFileError, match="no such file"):
        open_run(tmp_path / "missing.h5")
    out = tmp_path / "run.h5"
    assert run_cli("run", write(tmp_path), "-o", out, "-q") == 0
    with h5py.File(out, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(RunFileError, match=f"format version {FORMAT_VERSION + 1} is not supported"):
        open_run(out)
    assert run_cli("info", out) == 2
    assert run_cli("info", foreign) == 2


# -- kill -9 in the middle, then resume ------------------------------------------------------
LONG = TINY.replace("steps = 37", "steps = 6000").replace("checkpoint_every = 5", "checkpoint_every = 50") \
    .replace("snapshot_every = 10", "snapshot_every = 500")


def _spawn(args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "meanfield", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)


def _wait_for_step(proc, path, step, timeout=300):
    """Poll the live run file (read while it is written) until its series reach ``step``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        if os.path.exists(path):
            try:
                with open_run(path) as r:
                    if r.n_series and int(r.series["step"][r.n_series - 1]) >= step:
                        return
            except RunFileError:
                pass  # not created yet
        time.sleep(0.05)
    raise AssertionError(f"the run did not reach step {step} in {timeout} s")


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    cfg = write(tmp_path, LONG)
    ref, out = tmp_path / "ref.h5", tmp_path / "killed.h5"
    proc = _spawn(["run", cfg, "-o", out])
    _wait_for_step(proc, out, 1800)  # 30 % of the run
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with open_run(out) as r:  # the killed file reads consistently
        assert r.status == "interrupted"
        steps = np.asarray(r.series["step"])
        assert 0 < steps[-1] < 6000 and len(steps) == r.n_series
        assert np.all(np.diff(steps) == 2) and steps[0] == 0
        assert np.isfinite(np.asarray(r.series["loss"])).all()
        assert r.n_snapshots >= 1 and int(r.snapshots["step"][0]) == 0
        ck = r.checkpoint()
        assert ck["step"] % 50 == 0 and 0 <= ck["step"] <= steps[-1] + 50
        r.network(0)  # snapshots read back
    assert run_cli("run", "--resume", out, "-q") == 0
    assert run_cli("run", cfg, "-o", ref, "-q") == 0
    with open_run(out) as a, open_run(ref) as b:
        assert a.status == b.status == "complete"
        assert a.network(-1).theta.tobytes() == b.network(-1).theta.tobytes()
        for k in ("step", "t", "loss", "test_loss", "velocity_norm"):
            np.testing.assert_array_equal(np.asarray(a.series[k]), np.asarray(b.series[k]), err_msg=k)
        np.testing.assert_array_equal(np.asarray(a.snapshots["step"]), np.asarray(b.snapshots["step"]))
        w = np.asarray(a.series["wall_time"])
        assert np.all(np.diff(w) >= 0)
    assert run_cli("run", "--resume", out) == 2  # already complete


# -- command line ----------------------------------------------------------------------------
def test_cli_smoke_every_subcommand(tmp_path, capsys):
    assert run_cli("presets") == 0
    listed = capsys.readouterr().out
    for name in ("relu-norm-3layer", "relu-norm-2layer", "ball-depth2", "ball-depth1", "teacher-2layer"):
        assert name in listed
    out = tmp_path / "p.h5"
    small = ["--set", "model.widths=[32]", "--set", "solver.steps=12", "--set", "data.n_train=50",
             "--set", "data.n_test=20", "--set", "record.snapshot_every=5"]
    assert run_cli("run", "--preset", "ball-depth1", "-o", out, "-q", *small) == 0
    assert "complete" in capsys.readouterr().out
    assert run_cli("info", out, "--config") == 0
    info = capsys.readouterr().out
    assert "status: complete" in info and "widths=[32]" in info and "[model]" in info
    plots = tmp_path / "figs"
    assert run_cli("plot", out, "-o", plots, "--snapshots", "0,1,-1") == 0
    files = sorted(os.listdir(plots))
    assert files == ["function.png", "loss.png", "movement.png", "particles-block1.png",
                     "velocity.png"]
    for f in files:
        assert (plots / f).stat().st_size > 5000
        assert (plots / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for preset in ("relu-norm-3layer", "relu-norm-2layer", "ball-depth2", "teacher-2layer"):
        o = tmp_path / f"{preset}.h5"
        assert run_cli("run", "--preset", preset, "-o", o, "-q", "--set", "solver.steps=3",
                       "--set", "data.n_train=40", "--set", "data.n_test=10") == 0
        with open_run(o) as r:
            assert r.status == "complete" and r.n_snapshots == 2


def test_console_script_and_module_entry_points(tmp_path):
    exe = Path(sys.executable).with_name("meanfield")
    for cmd in ([str(exe)] if exe.exists() else []) + [[sys.executable, "-m", "meanfield"]]:
        cmd = cmd if isinstance(cmd, list) else [cmd]
        out = subprocess.run(cmd + ["--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "run" in out.stdout and "presets" in out.stdout
        bad = subprocess.run(cmd + ["run", "--preset", "nope"], capture_output=True, text=True, cwd=tmp_path)
        assert bad.returncode == 2
        assert bad.stderr.strip().count("\n") == 0 and "unknown preset 'nope'" in bad.stderr
        assert not (tmp_path / "meanfield-run.h5").exists()


def test_bad_input_exits_2_and_touches_nothing(tmp_path, capsys):
    out = tmp_path / "keep.h5"
    assert run_cli("run", write(tmp_path), "-o", out, "-q") == 0
    before = out.read_bytes()
    capsys.readouterr()
    cases = [
        ["run", write(tmp_path), "-o", out],                                  # exists, no --force
        ["run", write(tmp_path), "-o", out, "--force", "--set", "model.d=0"],  # invalid, even with --force
        ["run", write(tmp_path, TINY + "bogus = 1\n", "bad.toml"), "-o", out, "--force"],
        ["run", tmp_path / "missing.toml", "-o", tmp_path / "new.h5"],
        ["run", "--preset", "nope", "-o", tmp_path / "new.h5"],
        ["run", write(tmp_path), "--preset", "ball-depth1", "-o", tmp_path / "new.h5"],
        ["run", write(tmp_path), "-o", tmp_path / "no" / "dir" / "x.h5"],
        ["run", "--resume", tmp_path / "missing.h5"],
        ["run", "--resume", out, "-o", tmp_path / "x.h5"],
        ["plot", out, "--snapshots", "0,99"],
        ["info", tmp_path / "missing.h5"],
    ]
    for args in cases:
        assert run_cli(*args) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("meanfield: error:") and "\n" not in err, (args, err)
    assert out.read_bytes() == before
    assert not (tmp_path / "new.h5").exists()
    with pytest.raises(SystemExit) as ei:  # argparse's own errors are exit 2 too
        run_cli("run", "--no-such-flag")
    assert ei.value.code == 2


def test_force_overwrites_and_set_overrides(tmp_path):
    out = tmp_path / "r.h5"
    assert run_cli("run", write(tmp_path), "-o", out, "-q") == 0
    assert run_cli("run", write(tmp_path), "-o", out, "-q", "--force", "--set", "solver.steps=4",
                   "--set", "seed=9") == 0
    with open_run(out) as r:
        assert r.config["solver"]["steps"] == 4 and r.config["seed"] == {"init": 9, "data": 9, "noise": 9}
        assert int(r.series["step"][-1]) == 4


def test_divergence_is_recorded(tmp_path, capsys):
    text = TINY.replace('activations = ["tanh", "relu"]', 'activations = ["quadratic", "quadratic"]') \
        .replace("dt = 0.2", "dt = 50.0")
    out = tmp_path / "div.h5"
    assert run_cli("run", write(tmp_path, text), "-o", out, "-q") == 1
    assert "diverged" in capsys.readouterr().out
    with open_run(out) as r:
        assert r.status == "diverged" and "non-finite" in r.message
        assert np.isfinite(np.asarray(r.series["loss"])).all()


@pytest.mark.parametrize("comp", ["gzip", "lzf"])
def test_compressed_snapshots_round_trip(tmp_path, comp):
    plain, packed = tmp_path / "plain.h5", tmp_path / f"{comp}.h5"
    assert run_cli("run", write(tmp_path), "-o", plain, "-q") == 0
    assert run_cli("run", write(tmp_path), "-o", packed, "-q", "--set", f"record.compression={comp}") == 0
    with h5py.File(packed, "r") as f:
        assert f["snapshots/blocks/1/u"].compression == comp
    with open_run(plain) as a, open_run(packed) as b:
        for i in range(a.n_snapshots):
            assert a.theta(i).tobytes() == b.theta(i).tobytes()


def test_figures_keep_the_process_backend_and_make_their_folder(tmp_path):
    """plot_run and plot_gap draw without pyplot: the backend a notebook chose stays, and
    the output folder is created."""
    run = tmp_path / "r.h5"
    mf.run(C.load(TINY, ["solver.steps=20"]), run)
    gap = ROOT / "tests" / "data" / "gap-v1.h5"
    code = ("import sys, matplotlib\nmatplotlib.use('svg')\n"
            "import meanfield as mf\nfrom meanfield import plots\n"
            f"with mf.open_run({str(run)!r}) as r:\n"
            f"    a = plots.plot_run(r, {str(tmp_path / 'new' / 'run')!r})\n"
            f"b = plots.plot_gap(mf.open_gap({str(gap)!r}), {str(tmp_path / 'new' / 'gap')!r})\n"
            "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules, len(a), len(b))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    backend, pyplot_loaded, n_run, n_gap = out.stdout.split()
    assert backend == "svg" and pyplot_loaded == "False"
    assert int(n_run) >= 3 and int(n_gap) >= 3
    assert len(list((tmp_path / "new" / "run").glob("*.png"))) == int(n_run)


def test_figures_draw_into_given_axes_name_their_run_and_warn_nothing(tmp_path, capsys):
    """Each figure function draws into the Axes or Figure it is given and returns it; every
    title names the run; no warning is raised (warnings are errors here); a frozen first
    block's zero coupling gap is left out with a footnote, not an empty panel; the t = 0
    histogram has its own range; --format pdf and svg write those formats."""
    import warnings

    from matplotlib.figure import Figure

    from meanfield import plots
    from meanfield.discretization import open_gap

    run = tmp_path / "frozen.h5"
    small = ["solver.steps=20", "data.n_train=64", "data.n_test=32", "model.widths=[32, 16]",
             "record.snapshot_every=10", 'model.freeze=["1.u", "1.c", "1.v"]']
    exp = mf.from_config(mf.presets.text("relu-norm-3layer"), small)
    mf.run(exp, run)
    gap = tmp_path / "g.h5"
    assert cli.main(["gap", "--preset", "relu-norm-3layer", *[a for o in small for a in ("--set", o)],
                     "--widths", "8,16", "--seeds", "3", "--reference-width", "32",
                     "-o", str(gap), "-q"]) == 0
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with mf.open_run(run) as r:
            fig = Figure()
            ax = fig.subplots()
            for draw in (plots.loss_axes, plots.velocity_axes, plots.function_axes,
                         plots.movement_axes):
                ax.clear()
                assert draw(r, ax=ax) is ax
                assert "frozen.h5, d = 8, widths 32×16" in ax.get_title()
            pf = plots.particles_figure(r, 2)
            assert "frozen.h5" in pf.get_suptitle()
            hist_ranges = [(a.patches[0].get_x(), a.patches[-1].get_x() + a.patches[-1].get_width())
                           for a in pf.axes if a.get_title().startswith("v₁ at")]
            for i, lims in zip((0, -1), hist_ranges):   # each time on the range of its own law
                assert lims == pytest.approx(plots._limits(np.asarray(r.snapshots["2.v"][i])))
            with pytest.raises(ValueError, match="blocks 1 to 2"):
                plots.particles_figure(r, 3)
        res = open_gap(gap)
        gf = plots.gap_width_figure(res)
        titles = [a.get_title() for a in gf.axes if a.get_title()]
        assert "coupling gap, block 1" not in titles and "function gap ‖f_m − f_M‖" in titles
        assert "coupling gap, block 1" in gf.get_supxlabel()
        assert all(a.has_data() for a in gf.axes if a.get_title())
        ax = Figure().subplots()
        assert plots.beta_axes(res, ax=ax) is ax and "g.h5" in ax.get_title()
        ax = Figure().subplots()
        assert plots.bias_axes(res, ax=ax) is ax and "3 seeds" in ax.get_title()
        assert ax.has_data() and ax.get_yscale() == "log"
        for fn in (plots.gap_time_figure, plots.decomposition_figure):
            f = Figure()
            assert fn(res, fig=f) is f and "g.h5" in f.get_suptitle()
    for fmt, magic in (("pdf", b"%PDF"), ("svg", b"<?xml")):
        folder = tmp_path / fmt
        assert cli.main(["plot", str(run), "-o", str(folder), "--format", fmt]) == 0
        assert cli.main(["plot", str(gap), "-o", str(folder), "--format", fmt]) == 0
        written = sorted(p.name for p in folder.iterdir())
        assert {"loss", "velocity", "movement", "gap-vs-width", "beta", "bias"} <= {w.rsplit(".", 1)[0] for w in written}
        assert all(w.endswith("." + fmt) for w in written)
        assert all((folder / w).read_bytes()[:len(magic)] == magic for w in written)
    capsys.readouterr()
    with pytest.raises(ValueError, match="format"):
        with mf.open_run(run) as r:
            plots.plot_run(r, str(tmp_path / "x"), format="jpg")


def test_a_schedule_that_ends_before_the_steps_says_so(tmp_path, capsys):
    """A last stage with a length ends the run before solver.steps: the run is complete,
    its message (printed, and in the file) says why, and the progress bar's total is the
    steps that really run."""
    from meanfield.config import load_config
    from meanfield.runs import from_config

    over = ["solver.steps=40", "data.n_train=16", "data.n_test=8", "model.widths=[8]",
            "stages=[{duration=0.5}]", "solver.dt=0.05"]
    exp = from_config(mf.presets.text("teacher-2layer"), over)
    assert exp.planned_steps() == 10
    out = tmp_path / "r.h5"
    res = mf.run(exp, out)
    assert res.status == "complete" and res.state.step == 10
    assert res.message == ("the schedule ended at step 10, t = 0.5 (its last stage has a "
                           "length), before solver.steps = 40")
    with mf.open_run(out) as r:
        assert r.status == "complete" and "the schedule ended at step 10" in r.message
    # without the stage nothing is said
    res = mf.run(from_config(mf.presets.text("teacher-2layer"), over[:-2]))
    assert res.message == "" and res.state.step == 40
    assert from_config(mf.presets.text("teacher-2layer"), over[:-2]).planned_steps() == 40
    t_end = load_config(mf.presets.text("teacher-2layer"), [*over[:-2], "solver.dt=0.05",
                                                           "solver.t_end=0.75"])
    assert from_config(t_end).planned_steps() == 15   # t_end / dt, below solver.steps


def test_progress_shows_by_default_only_when_interactive(monkeypatch, capsys):
    """mf.train, mf.run and mf.sweep show a progress bar by default (progress=None) when
    standard error is a terminal or the process is a Jupyter kernel, and only then."""
    import types

    import solvers
    from meanfield import experiment as E

    net = mf.two_layer(4, 8)
    X = np.random.default_rng(0).normal(size=(16, 4))
    data = mf.Dataset(X, X[:, 0])
    assert not E.interactive()   # pytest captures standard error
    mf.train(net, data, dt=0.1, stop=solvers.Stop(steps=3))
    assert "step" not in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert E.interactive()
    mf.train(net, data, dt=0.1, stop=solvers.Stop(steps=3))
    assert "3/3" in capsys.readouterr().err
    mf.train(net, data, dt=0.1, stop=solvers.Stop(steps=3), progress=False)
    assert capsys.readouterr().err == ""
