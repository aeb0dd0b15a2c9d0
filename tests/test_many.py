"""Many networks at once: keyed randomness (widths nest, noise keyed per member and
group), batched kernels (equal bit for bit to separate evaluations, for any thread count
and either schedule), the experiment API, live run files and version-1 files."""
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import meanfield as mf
import solvers
from meanfield import config as C
from meanfield.presets import names as preset_names, text as preset_text
from meanfield.runs import open_run
from meanfield.store import RunFileError
from solvers import Langevin, Stage, Stop

ROOT = Path(__file__).resolve().parents[1]


# -- the prefix property of initialisation ----------------------------------------------------
@pytest.mark.parametrize("preset", preset_names())
def test_width_m_network_is_the_first_m_particles_of_width_M(preset):
    cfg = C.load(preset_text(preset))
    L = len(cfg["model"]["widths"])
    big = C.make_network(cfg, widths=[40] * L)
    for widths in ([7] * L, [1] * L, list(range(3, 3 + L))):
        small = C.make_network(cfg, widths=widths)
        for l, (bs, bb) in enumerate(zip(small.blocks, big.blocks)):
            m = bs.m
            for p in "ucv":
                a, b = getattr(bs, p), getattr(bb, p)[:m]
                assert a.tobytes() == b.tobytes(), (preset, l, p)


def test_prefix_property_of_the_python_constructors_and_seeds_differ():
    for make in (lambda m, s: mf.rzg_three_layer(6, m, m, k=2, seed=s),
                 lambda m, s: mf.stack(5, [m, m, m], [3, 2], seed=s),
                 lambda m, s: mf.sl_depth2(8, m, seed=s), lambda m, s: mf.two_layer(4, m, seed=s)):
        big, small = make(64, 5), make(9, 5)
        for bs, bb in zip(small.blocks, big.blocks):
            for p in "ucv":
                assert np.array_equal(getattr(bs, p), getattr(bb, p)[:bs.m])
        other = make(9, 6)
        assert not np.array_equal(other.theta, small.theta)
    # the laws are still the documented ones: Sphere rows have norm 1, Gaussian std 1/sqrt(d)
    net = mf.rzg_three_layer(8, 4000, 10, seed=0)
    np.testing.assert_allclose(np.linalg.norm(net.blocks[0].u, axis=1), 1.0, rtol=1e-14)
    v = net.blocks[0].v.ravel()
    assert abs(v.mean()) < 4 / np.sqrt(v.size) and abs(v.var() - 1) < 4 * np.sqrt(2 / v.size)


def test_three_seeds_are_separate_streams():
    text = preset_text("teacher-2layer")
    base = C.build(C.load(text, ["seed=4", "model.widths=[16]", "data.n_train=32", "data.n_test=8"]))
    init = C.build(C.load(text, ["seed=4", "seed.init=9", "model.widths=[16]", "data.n_train=32",
                                 "data.n_test=8"]))
    data = C.build(C.load(text, ["seed={init = 4, data = 5, noise = 4}", "model.widths=[16]",
                                 "data.n_train=32", "data.n_test=8"]))
    assert init.config["seed"] == {"init": 9, "data": 4, "noise": 4}
    assert np.array_equal(base.train.X, init.train.X) and np.array_equal(base.train.y, init.train.y)
    assert not np.array_equal(base.network.theta, init.network.theta)
    assert np.array_equal(base.network.theta, data.network.theta)
    assert not np.array_equal(base.train.X, data.train.X)
    assert base.seed == 4 and data.seed == 4
    with pytest.raises(C.ConfigError, match="seed: expected an integer <= 18446744073709551615"):
        C.load(text, [f"seed={2 ** 64}"])
    with pytest.raises(C.ConfigError, match="seed.salt: unknown key"):
        C.load(text, ["seed={salt = 1}"])


# -- Langevin noise keyed by (seed, member, group, particle, coordinate) -----------------------
def _members(d=4, n=70):
    X = np.random.default_rng(0).standard_normal((n, d))
    ds = mf.Dataset(X, np.maximum(1 - np.linalg.norm(X, axis=1), 0))
    nets = [mf.rzg_three_layer(d, m, m, k=2, activations=("tanh", "relu"), seed=s)
            for m, s in ((8, 0), (12, 1), (5, 2), (12, 3))]
    return nets, ds


def test_a_network_moves_bit_identically_alone_and_in_an_ensemble_with_noise():
    nets, ds = _members()
    sched = [Stage(steps=3, freeze=("2.c",)), Stage(langevin=Langevin(tau=1e-3, lam=0.1))]
    kw = dict(method="heun", dt=0.05, stop=Stop(steps=9), seed=17, schedule=sched)
    members = [mf.Objective(net, ds, member=10 + i) for i, net in enumerate(nets)]
    ens = solvers.Ensemble(members)
    assert ens.batched is not None  # one kernel call for the four members
    s = solvers.solve(ens, ens.pack([n.theta for n in nets]), **kw)
    for i, (net, y) in enumerate(zip(nets, ens.unpack(s.y))):
        alone = solvers.solve(mf.Objective(net, ds, member=10 + i), net.theta, **kw)
        assert y.tobytes() == alone.y.tobytes(), i
    # the member number is part of the key: the same network as another member moves otherwise
    other = solvers.solve(mf.Objective(nets[0], ds, member=99), nets[0].theta, **kw)
    assert other.y.tobytes() != ens.unpack(s.y)[0].tobytes()
    # and so is the group: two groups of one network get different noise
    k1 = solvers.stream_key(solvers.noise.NOISE_DOMAIN, 17, 10, 0)
    k2 = solvers.stream_key(solvers.noise.NOISE_DOMAIN, 17, 10, 1)
    assert not np.array_equal(solvers.normals(k1, 3, 0, 50), solvers.normals(k2, 3, 0, 50))


# -- batched kernels ------------------------------------------------------------------------
def _batch_case(frozen=True):
    """Members of one architecture: different widths, seeds, data sets, output biases,
    scalings and frozen groups."""
    rng = np.random.default_rng(1)
    d = 5
    sets = [mf.Dataset(X, np.sin(X[:, 0])) for X in (rng.standard_normal((300, d)),
                                                      rng.standard_normal((300, d)))]
    objs = []
    for i, m in enumerate((3, 130, 17, 256, 1)):
        blocks = [mf.Block(rng.standard_normal((m, d)) / 2, rng.standard_normal(m),
                           rng.standard_normal((m, 2)), "tanh",
                           train=("v",) if (frozen and i == 2) else "ucv"),
                  mf.Block(rng.standard_normal((m + 1, 2)), rng.standard_normal(m + 1),
                           rng.standard_normal((m + 1, 1)), "relu")]
        net = mf.Network(blocks, out_bias=0.1 * i if i % 2 else None,
                         scaling="ntk" if i == 3 else "mf")
        objs.append(mf.Objective(net, sets[i % 2], member=i))
    return objs


def _scales(objs):
    """Per-member time scales: frozen groups zero, the rest different per member."""
    out = []
    for i, o in enumerate(objs):
        s = o.default_scales() * (1.0 + 0.25 * i)
        out.append(s)
    return out


def test_batched_evaluation_equals_separate_evaluations_bit_for_bit():
    objs = _batch_case()
    # the batch needs one architecture: output biases must agree, so split by that
    for group in ([o for o in objs if o.network.has_out_bias], [o for o in objs if not o.network.has_out_bias]):
        batch = mf.Objective.batch(group)
        assert batch is not None
        y = np.concatenate([o.network.theta for o in group])
        scales = np.concatenate(_scales(group))
        out = np.full_like(y, np.nan)
        losses = batch(y, out, scales, 0)
        for o, s, a, b in zip(group, _scales(group), batch.offsets[:-1], batch.offsets[1:]):
            alone = np.full(o.size, np.nan)
            loss = o(o.network.theta, alone, s, 0)
            assert out[a:b].tobytes() == alone.tobytes()
            assert loss == losses[group.index(o)]
            assert np.array_equal(batch.outputs[group.index(o)], o.outputs)
        np.testing.assert_array_equal(batch.losses(y), losses)


def test_batch_refuses_what_it_cannot_batch():
    objs = _batch_case()
    assert mf.Objective.batch([objs[0], objs[1]]) is None      # output bias in one only
    X = np.zeros((10, 5))
    other_n = mf.Objective(objs[0].network, mf.Dataset(X, np.zeros(10)))
    assert mf.Objective.batch([objs[0], other_n]) is None      # data of another size
    stream = mf.Stream(mf.data.Gaussian(5).sample, mf.ReluNorm(1.0), n=300)
    assert mf.Objective.batch([objs[0], mf.Objective(objs[0].network, stream)]) is None


SCRIPT = r"""
import hashlib, numpy as np, meanfield as mf, solvers
from tests.test_many import _batch_case, _scales
objs = [o for o in _batch_case() if not o.network.has_out_bias]
batch = mf.Objective.batch(objs)
y = np.concatenate([o.network.theta for o in objs])
out = np.empty_like(y)
losses = batch(y, out, np.concatenate(_scales(objs)), 0)
ens = solvers.Ensemble(objs)
s = solvers.solve(ens, y, method="rk4", dt=0.02, stop=solvers.Stop(steps=5), seed=3,
                  schedule=[solvers.Stage(langevin=solvers.Langevin(tau=1e-4))])
import numba
print(numba.get_num_threads(), hashlib.sha256(out.tobytes()).hexdigest(),
      hashlib.sha256(losses.tobytes()).hexdigest(), hashlib.sha256(s.y.tobytes()).hexdigest())
"""


def _hashes(threads, min_work):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), MEANFIELD_PARALLEL_MIN_WORK=str(min_work))
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    n, *hashes = out.stdout.split()
    assert int(n) == threads
    return hashes


def test_batched_path_is_thread_and_schedule_independent():
    """1 thread; 2 threads with every pass parallel; 2 threads with every pass serial."""
    assert _hashes(1, 0) == _hashes(2, 0) == _hashes(2, 1 << 60)


def test_parallel_threshold_chooses_the_schedule(monkeypatch):
    net = mf.two_layer(3, 8, seed=0)
    X = np.random.default_rng(0).standard_normal((50, 3))
    ds = mf.Dataset(X, X[:, 0])
    assert mf.Objective(net, ds)._plan.parallel_work == 50 * 8 * (3 + 1 + 2)
    calls = []
    real = mf._kernels.evaluate

    def spy(*args):
        calls.append(args[12])
        return real(*args)

    monkeypatch.setattr(mf._kernels, "evaluate", spy)
    monkeypatch.setenv("MEANFIELD_PARALLEL_MIN_WORK", str(10 ** 9))
    mf.Objective(net, ds).velocity()
    monkeypatch.setenv("MEANFIELD_PARALLEL_MIN_WORK", "1")
    mf.Objective(net, ds).velocity()
    import numba
    assert calls == [False, numba.get_num_threads() > 1]


# -- the experiment API ---------------------------------------------------------------------
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
steps = 20
[record]
series_every = 2
snapshot_every = 10
checkpoint_every = 5
"""


def test_run_in_memory_equals_run_to_file_and_train(tmp_path):
    cfg = C.load(TINY)
    mem = mf.run(cfg)
    assert mem.status == "complete" and mem.path is None
    res = mf.run(TINY, tmp_path / "r.h5")
    assert res.state.y.tobytes() == mem.state.y.tobytes()
    with open_run(tmp_path / "r.h5") as r:
        assert np.array_equal(np.asarray(r.series["loss"]), np.array(mem.recorder.series["loss"]))
        assert r.network(-1).theta.tobytes() == mem.network.theta.tobytes()
    exp = mf.from_config(cfg)
    tr = mf.train(exp.network, exp.train, method="heun", dt=0.2, stop=Stop(steps=20))
    assert tr.state.y.tobytes() == mem.state.y.tobytes()


def test_a_run_made_in_python_reopens_from_the_file_alone(tmp_path):
    net = mf.sl_depth1(4, 10, activation="sigmoid", seed=3)
    X = mf.data.Ball(4, 2.0).sample(40, 1)
    exp = mf.Experiment(net, mf.Dataset(X, mf.BallIndicator(1.0)(X)), stop=Stop(steps=6),
                        dt=0.1, record={"series_every": 1, "snapshot_every": 3})
    path = tmp_path / "py.h5"
    res = mf.run(exp, path)
    with open_run(path) as r:
        assert r.config is None and r.status == "complete"
        back = r.network(-1)
        assert back.theta.tobytes() == res.network.theta.tobytes()
        assert [b.activation for b in back.blocks] == ["sigmoid"] and back.has_out_bias
        assert [g[3] for g in back.groups()] == [g[3] for g in net.groups()]
        np.testing.assert_array_equal(back(X), res.network(X))
    assert mf.cli.main(["info", str(path)]) == 0
    with pytest.raises(RunFileError, match="cannot be resumed"):
        with h5py.File(path, "r+") as f:
            f["progress/status"][()] = b"running"
        mf.resume(path)


def test_the_file_records_the_architecture(tmp_path):
    path = tmp_path / "a.h5"
    mf.run(C.load(TINY, ['model.freeze=["1.u"]', "model.out_bias=true", "solver.steps=2"]), path)
    with h5py.File(path, "r") as f:
        a = f["network"].attrs
        assert (a["n_blocks"], a["output"], a["scaling"], a["dtype"]) == (2, "identity", "mf", "float64")
        assert bool(a["out_bias"]) and bool(a["train_out_bias"])
        b1 = f["network/1"].attrs
        assert (b1["m"], b1["k_in"], b1["k_out"], b1["activation"], b1["train"]) == (16, 3, 2, "tanh", "cv")
        assert int(f.attrs["format_version"]) == 2 and int(f.attrs["seed_init"]) == 2


# -- reading a live run and a version-1 file --------------------------------------------------
LIVE = TINY.replace("steps = 20", "steps = 4000").replace("checkpoint_every = 5", "checkpoint_every = 200") \
    .replace("snapshot_every = 10", "snapshot_every = 500")


def test_a_reader_polls_a_live_run(tmp_path):
    cfg = tmp_path / "live.toml"
    cfg.write_text(LIVE)
    out = tmp_path / "live.h5"
    proc = subprocess.Popen([sys.executable, "-m", "meanfield", "run", str(cfg), "-o", str(out), "-q"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen, statuses = [], set()
    deadline = time.time() + 300
    r = None
    try:
        while proc.poll() is None and time.time() < deadline:
            if r is None and os.path.exists(out):
                r = open_run(out)   # opened once, while the run is written
            if r is not None:
                r.refresh()
                statuses.add(r.status)
                n = r.n_series
                if n:
                    steps = np.asarray(r.series["step"])
                    assert len(steps) == n and np.all(np.diff(steps) == 2) and steps[0] == 0
                    assert np.isfinite(np.asarray(r.series["loss"])).all()
                    seen.append(n)
                if r.n_snapshots:
                    r.network(-1)
            time.sleep(0.02)
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
        r.refresh()
        assert r.status == "complete" and r.n_series == 2001
    finally:
        if r is not None:
            r.close()
        if proc.poll() is None:
            proc.kill()
    assert "running" in statuses
    assert len(set(seen)) >= 3 and seen == sorted(seen)   # it grew while we read


V1 = ROOT / "tests" / "data" / "run-v1.h5"
# f(x_test) of the last snapshot, as meanfield 0.1.0 (format version 1) computed it
V1_F = [-0.006213350070055634, 0.0420277439082769, -0.024866721392073757, -0.06541069748518415,
        -0.07957818194837148, -0.04004164040418465, -0.0688891388763365, -0.0813033294391969]


def test_a_version_1_file_is_read(tmp_path):
    with open_run(V1) as r:
        assert r.version == 1 and r.status == "complete"
        assert (r.n_series, r.n_snapshots) == (4, 3) and r.seeds == {"init": 3, "data": 3, "noise": 3}
        assert r.config["model"]["widths"] == [6, 5]
        net = r.network(-1)
        assert net.has_out_bias and net.widths == (6, 5)
        np.testing.assert_allclose(net(np.asarray(r.data["x_test"])), V1_F, rtol=1e-13, atol=1e-16)
        assert r.checkpoint()["step"] == 6
    assert mf.cli.main(["info", str(V1)]) == 0
    assert mf.cli.main(["plot", str(V1), "-o", str(tmp_path / "p")]) == 0
    copy = tmp_path / "v1.h5"
    copy.write_bytes(V1.read_bytes())
    with h5py.File(copy, "r+") as f:
        f.attrs["status"] = "running"
    assert mf.cli.main(["run", "--resume", str(copy), "-q"]) == 2   # resumed by 0.1.x only


def test_progress_bar_on_stderr(tmp_path, capsys):
    """tqdm progress: the description while the kernels load, then steps, loss and rate."""
    cfg = tmp_path / "p.toml"
    cfg.write_text(TINY)
    assert mf.cli.main(["run", str(cfg), "-o", str(tmp_path / "p.h5")]) == 0
    err = capsys.readouterr().err
    assert "compiling kernels" in err and "100%" in err and "20/20" in err and "loss=" in err
    assert mf.cli.main(["run", "--resume", str(tmp_path / "p.h5")]) == 2   # complete already
