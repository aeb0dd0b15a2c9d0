"""The exact limit as the reference of a width sweep (``reference="limit"``,
``meanfield gap --reference limit``): the reference is the limit integrated through the
configuration's schedule, the members fluctuate around it at t = 0 as the closed form
says, the gap file keeps its rules, and what the limit cannot reduce is refused before
anything trains."""
import os

import h5py
import numpy as np
import pytest

import meanfield as mf
import solvers
from meanfield import cli
from meanfield import config as C
from meanfield.discretization import SweepError, open_gap, sweep
from meanfield.presets import text as preset_text

TOML = """
seed = 3
[model]
d = 4
widths = [64]
activations = ["relu"]
out_bias = true
[data]
distribution = "radial"
norm = {dist = "uniform", loc = 0.5, scale = 1.5}
n_train = 128
n_test = 64
[target]
kind = "relu-norm"
r = 1.0
[solver]
method = "euler"
dt = 0.25
steps = 8
[record]
snapshot_every = 4
"""

RULES = dict(reference="limit", limit_nodes=6, limit_norm_nodes=12)


def test_the_reference_is_the_limit_integrated_through_the_schedule(tmp_path):
    path = tmp_path / "g.h5"
    res = sweep(TOML, widths=[16, 32], seeds=2, n_boot=20, path=path, samples="fresh", **RULES)
    cfg = C.load_config(TOML)
    lim = C.make_limit(cfg, nodes=6, norm_nodes=12)
    st = solvers.solve(lim, lim.y0, method="euler", dt=0.25, stop=solvers.Stop(steps=8))
    ref = res.reference
    assert ref.step.tolist() == [0, 4, 8] and res.options.coupling == "independent"
    assert np.array_equal(ref.theta[-1], st.y) and np.array_equal(ref.weights, lim.w)
    norms = np.linalg.norm(res.x_test, axis=1)
    assert np.array_equal(ref.outputs[-1], lim.profile(st.y, norms))
    assert ref.loss_test[-1] == lim.loss(st.y) and ref.loss_train[-1] == ref.loss_test[-1]
    # the block's output is f without the output bias, which moved
    b = st.y[3 * lim.n]
    assert b != 0 and np.allclose(ref.features[0][-1, :, 0], ref.outputs[-1] - b, rtol=0, atol=1e-15)
    # the error estimate: the same flow with half the nodes per rule (3 and 6 here)
    coarse = C.make_limit(cfg, nodes=3, norm_nodes=6)
    sc = solvers.solve(coarse, coarse.y0, method="euler", dt=0.25, stop=solvers.Stop(steps=8))
    d = lim.profile(st.y) - coarse.profile(sc.y, lim.rho)
    assert ref.error[-1] == pytest.approx(np.sqrt(np.dot(lim.wrho, d * d)), rel=1e-12)
    assert 0 < ref.error[-1] < 0.05
    # the members' distances are in (|u|, c, v): three trained coordinates
    assert np.all(np.isfinite(res.w2)) and np.all(res.w2 > 0)
    assert np.all(np.isfinite(res.w2_floor))
    # the file keeps the rules, and what the limit's arrays are
    back = open_gap(path)
    assert back.options == res.options and back.options.samples == "fresh"
    for k in ("theta", "outputs", "loss_test", "weights", "error"):
        assert np.array_equal(getattr(back.reference, k), getattr(ref, k))
    text = back.summary()
    # 6 nodes of r, 6 on each side of c = 0, 6 of v
    assert "reference the limit (432 nodes" in text and "fresh samples every step" in text
    assert "the limit's error" in text and "against the width m" in text
    assert "jackknife t interval" in text and "note: with 2 seeds the intervals are too short" in text


def test_members_fluctuate_around_the_limit_as_the_closed_form_says():
    """At t = 0 a width-m member is m independent draws of the initial law and the limit
    is f = 0 (v has mean 0 and is independent of u, c), so on the test sample
    E ‖f_m − F‖² = (1/m) mean_x E[v² ReLU(u·x + c)²] = (1/m) mean_x (‖x‖²/d + 1)/2
    (u·x + c ~ N(0, ‖x‖²/d + 1)).  Checked within 4 standard errors over 2 × 100
    members (m ‖f_m‖²/V is skewed, with a standard deviation of about 1.4: 1.10 ± 0.10
    and 1.04 ± 0.08 were measured over 200 members of widths 16 and 64)."""
    res = sweep(TOML, widths=[16, 64], seeds=100, n_boot=20, distance_size=16,
                overrides=["solver.steps=1", "record.snapshot_every=1"], **RULES)
    assert np.max(np.abs(res.reference.outputs[0])) < 1e-15
    x = res.x_test
    V = np.mean((np.sum(x * x, axis=1) / 4 + 1) / 2)
    ratio = (res.widths[:, None] * res.function[:, :, 0] ** 2 / V).ravel()
    se = ratio.std(ddof=1) / np.sqrt(ratio.size)
    assert se < 0.15
    assert abs(ratio.mean() - 1) < 4 * se


def test_what_the_limit_cannot_reduce_is_refused_before_training(capsys):
    with pytest.raises(SweepError, match="--reference limit: model.widths: the limit solver "
                                         "reduces networks of one or two blocks"):
        sweep(preset_text("relu-norm-3layer"), widths=[8, 16], **RULES,
              overrides=["model.widths=[64, 64, 64]", "model.bottleneck=[1, 1]",
                         "model.activations=['relu', 'relu', 'relu']"])
    with pytest.raises(SweepError, match="model.scaling: the limit solver needs 'mf'"):
        sweep(preset_text("ball-depth2"), widths=[8, 16], overrides=["model.scaling='ntk'"], **RULES)
    with pytest.raises(SweepError, match="data.distribution: the data law SafranLeeD has a "
                                         "heavy-tailed norm"):
        sweep(preset_text("ball-depth1"), widths=[8, 16], **RULES,
              overrides=["data.distribution='safran-lee-d'"])
    with pytest.raises(SweepError, match="coupling: members of the limit are independent draws"):
        sweep(TOML, widths=[8, 16], coupling="subsample", **RULES)
    with pytest.raises(SweepError, match="reference width: the limit has no width"):
        sweep(TOML, widths=[8, 16], reference_width=128, **RULES)
    with pytest.raises(SweepError, match="reference: expected one of network, limit"):
        sweep(TOML, widths=[8, 16], reference="infinity")
    with pytest.raises(SweepError, match="limit nodes: expected an integer >= 2"):
        sweep(TOML, widths=[8, 16], reference="limit", limit_nodes=1)
    with pytest.raises(SweepError, match="stages\\[0\\].langevin: the limit solver has no noise"):
        sweep(TOML, widths=[8, 16], overrides=["stages=[{langevin={tau=0.1}}]"], **RULES)
    assert cli.main(["gap", "--preset", "teacher-2layer", "--reference", "limit",
                     "--widths", "8,16", "-q"]) == 2
    err = capsys.readouterr().err
    assert "target.kind: the limit needs a radial target" in err and len(err.strip().splitlines()) == 1


def test_a_three_layer_sweep_against_the_limit(tmp_path):
    """Two blocks: the reference's features are h = H(‖x‖) and f − b₀, its clouds are
    per block, and the gap file checks the limit's state against its rules."""
    path = tmp_path / "g3.h5"
    over = ["model.d=4", "solver.steps=4", "record.snapshot_every=2", "data.n_train=64",
            "data.n_test=32", 'model.init."1.v"={law="gaussian", mean=0.5, std=1.0}']
    res = sweep(preset_text("relu-norm-3layer"), widths=[8, 16], seeds=2, n_boot=20,
                distance_size=8, path=path, overrides=over, **RULES)
    cfg = C.load_config(preset_text("relu-norm-3layer"), over)
    lim = C.make_limit(cfg, nodes=6, norm_nodes=12)
    st = solvers.solve(lim, lim.y0, method="euler", dt=0.5, stop=solvers.Stop(steps=4))
    ref = res.reference
    H, F = lim.features(st.y, np.linalg.norm(res.x_test, axis=1))
    assert np.array_equal(ref.features[0][-1], H) and np.array_equal(ref.outputs[-1], F)
    assert res.decomposition is None and np.all(np.isfinite(res.w2))
    assert res.w2.shape == (2, 2, 3, 2) and np.all(np.isfinite(res.w2_floor))
    back = open_gap(path)
    assert np.array_equal(back.reference.theta, ref.theta) and back.reference.weights.size == lim.n1 + lim.n2
    import h5py
    with h5py.File(path, "r+") as f:   # a state that does not fit the stored rules
        del f["reference/weights"]
        f["reference/weights"] = np.ones(5)
    with pytest.raises(mf.discretization.GapFileError, match="/reference/weights has shape"):
        open_gap(path)


def test_independent_samples_give_every_member_its_own_stream(tmp_path):
    """``samples="independent"``: member k trains on the stream keyed by
    ``streams.sweep_samples_seed(seed.data, k)``, whatever the width, exactly as it
    would alone; with ``"fresh"`` every member trains on the one shared stream.  The
    option survives the file and a resume."""
    from meanfield import streams
    from meanfield.discretization import resume_sweep
    from meanfield.experiment import drive
    from meanfield.objective import Objective, Stream

    path = tmp_path / "own.h5"
    res = sweep(TOML, widths=[16, 32], seeds=2, n_boot=20, path=path, samples="independent",
                **RULES)
    shared = sweep(TOML, widths=[16, 32], seeds=2, n_boot=20, samples="fresh", **RULES)
    cfg = C.load_config(TOML)
    exp = mf.from_config(cfg)

    def alone(width, k, own):
        c = C.load_config(TOML)
        c["seed"]["init"] = streams.independent_init_seed(cfg["seed"]["init"], k)
        net = C.make_network(c, widths=[width])
        data = Stream(C.make_distribution(cfg).sample, exp.target, 128,
                      seed=streams.sweep_samples_seed(cfg["seed"]["data"], k if own else None))
        final, status, _ = drive(Objective(net, data, loss=exp.loss), net.theta,
                                 **exp.solver_kwargs())
        assert status == "complete"
        return final.y

    for w, width in enumerate((16, 32)):
        for k in range(2):
            assert np.array_equal(res.theta[w][k], alone(width, k, True))
            assert np.array_equal(shared.theta[w][k], alone(width, k, False))
    # the streams differ between members and from the shared one
    keys = {streams.sweep_samples_seed(3, None), streams.sweep_samples_seed(3, 0),
            streams.sweep_samples_seed(3, 1)}
    assert len(keys) == 3
    assert not np.array_equal(res.theta[0][0], shared.theta[0][0])
    back = open_gap(path)
    assert back.options.samples == "independent"
    # the debiased bias rate is kept in the file (NaN: two seeds resolve nothing)
    for k in ("beta", "C"):
        assert np.array_equal(back.rates["bias_debiased"][k], res.rates["bias_debiased"][k],
                              equal_nan=True)
    assert "bias without the seeds' noise: not resolved" in back.summary()
    assert "each member its own" in back.summary()
    # a sweep cut after its first width resumes to the same second width, bit for bit
    with h5py.File(path, "r+") as f:
        f["gap/done"][1] = 0
    again = resume_sweep(path)
    assert np.array_equal(again.theta[1], res.theta[1]) and again.options.samples == "independent"
    with pytest.raises(SweepError, match="samples: expected one of fixed, fresh, independent"):
        sweep(TOML, widths=[16, 32], samples="own", **RULES)
    with pytest.raises(SystemExit) as e:
        cli.main(["gap", "--preset", "relu-norm-2layer", "--samples", "own", "-q"])
    assert e.value.code == 2


def test_a_sample_sweep_is_one_sweep_per_n(tmp_path, capsys):
    """``sample_sweep`` / ``meanfield gap --n-train``: one gap file per training-set size,
    each the sweep ``sweep`` makes with ``data.n_train = N``; everything is checked before
    the first trains; the table and the figure compare them."""
    from meanfield.discretization import sample_paths, sample_sweep, sample_table

    kw = dict(widths=[16, 32], seeds=3, n_boot=20, distance_size=16, **RULES)
    path = tmp_path / "floor.h5"
    results = sample_sweep(TOML, n_train=[256, 64], path=path, **kw)
    paths = sample_paths(path, [64, 256])
    assert [p.rsplit("/", 1)[1] for p in paths] == ["floor-N64.h5", "floor-N256.h5"]
    for n, p, r in zip((64, 256), paths, results):
        alone = sweep(TOML, overrides=[f"data.n_train={n}"], **kw)
        assert r.config["data"]["n_train"] == n and open_gap(p).config["data"]["n_train"] == n
        for w in range(2):
            assert np.array_equal(r.theta[w], alone.theta[w])
    table = sample_table(results)
    assert "N \\ m" in table and "\n64 " in table and "\n256 " in table and "at m = 32 against N" in table
    B, se = results[0].bias_squared()
    assert f"{B[1, -1]:+.2e}" in table
    # checked before anything trains: an existing file, a bad size, n_train twice
    before = os.path.getmtime(paths[0])
    with pytest.raises(SweepError, match="floor-N64.h5 exists"):
        sample_sweep(TOML, n_train=[64, 256], path=path, **kw)
    with pytest.raises(SweepError, match="n_train: expected at least two sample sizes"):
        sample_sweep(TOML, n_train=[64], **kw)
    with pytest.raises(SweepError, match="n_train: each sample size must appear once"):
        sample_sweep(TOML, n_train=[64, 64], **kw)
    with pytest.raises(SweepError, match="data.n_train: a sample sweep sets it"):
        sample_sweep(TOML, n_train=[64, 128], overrides=["data.n_train=8"], **kw)
    with pytest.raises(SweepError, match="widths: expected at least two widths"):
        sample_sweep(TOML, n_train=[64, 128], **{**kw, "widths": [16]})
    assert os.path.getmtime(paths[0]) == before and not (tmp_path / "floor-N128.h5").exists()
    # the command line: the files, the table; the figure of the files together
    toml = tmp_path / "c.toml"
    toml.write_text(TOML)
    capsys.readouterr()
    out = tmp_path / "cli.h5"
    assert cli.main(["gap", str(toml), "--reference", "limit", "--limit-nodes", "6",
                     "--limit-norm-nodes", "12", "--widths", "16,32", "--seeds", "3",
                     "--distance-size", "16", "--n-train", "64,256", "-o", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "cli-N64.h5: complete" in text and "cli-N256.h5: complete" in text and "N \\ m" in text
    figs = tmp_path / "figs"
    assert cli.main(["plot", str(tmp_path / "cli-N64.h5"), str(tmp_path / "cli-N256.h5"),
                     "-o", str(figs)]) == 0
    assert (figs / "samples.png").read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["gap", str(toml), "--widths", "16,32", "--n-train", "64,x", "-q"]) == 2
    assert "--n-train: 'x' is not an integer" in capsys.readouterr().err
    assert cli.main(["plot", str(tmp_path / "cli-N64.h5"), str(toml)]) == 2
    assert "sample sweep" in capsys.readouterr().err


def test_a_sweep_against_the_limit_on_the_homogeneous_rule(tmp_path, capsys):
    """``limit_rule="homogeneous"`` (``--limit-rule``): the reference is the limit on
    4·n² directions, its error estimate the same rule with n/2, its clouds the law's;
    the file keeps the rule and reads back; what the rule cannot take is refused."""
    path = tmp_path / "h.h5"
    toml = tmp_path / "c.toml"
    toml.write_text(TOML)
    assert cli.main(["gap", str(toml), "--reference", "limit", "--limit-rule", "homogeneous",
                     "--limit-nodes", "6", "--limit-norm-nodes", "12", "--widths", "16,32",
                     "--seeds", "3", "--distance-size", "16", "-o", str(path), "-q"]) == 0
    res = open_gap(path)
    assert res.options.limit_rule == "homogeneous"
    cfg = C.load_config(TOML)
    lim = C.make_limit(cfg, nodes=6, norm_nodes=12, rule="homogeneous")
    st = solvers.solve(lim, lim.y0, method="euler", dt=0.25, stop=solvers.Stop(steps=8))
    assert lim.n == 144 and np.array_equal(res.reference.theta[-1], st.y)
    assert np.array_equal(res.reference.outputs[-1],
                          lim.profile(st.y, np.linalg.norm(res.x_test, axis=1)))
    assert res.reference.weights.size == 144 * 8 and 0 < res.reference.error[-1] < 0.05
    assert np.all(np.isfinite(res.w2)) and "homogeneous rule" in res.summary()
    # the same sweep on the tensor rule sees the same limit to within both rules' errors
    ten = sweep(TOML, widths=[16, 32], seeds=3, n_boot=20, distance_size=16, **RULES)
    diff = np.sqrt(np.mean((ten.reference.outputs - res.reference.outputs) ** 2, axis=1))
    assert np.all(diff < 2 * (ten.reference.error + res.reference.error) + 1e-15)
    with pytest.raises(SweepError, match="limit rule: the rule of the limit's initial law needs"):
        sweep(TOML, widths=[16, 32], limit_rule="homogeneous")
    with pytest.raises(SweepError, match="a projection of the first block does not commute "
                                         "with scaling"):
        sweep(TOML, widths=[16, 32], limit_rule="homogeneous", **RULES, overrides=[
            'stages=[{projections=[{kind="ball", groups=["1.u"], radius=1.0, per="particle"}]}]'])
    with pytest.raises(SweepError, match="homogeneous rule reduces a first block with k = 1, not 2"):
        sweep(preset_text("relu-norm-3layer"), widths=[8, 16], limit_rule="homogeneous",
              overrides=["model.bottleneck=[2]"], **RULES)
    capsys.readouterr()
    assert cli.main(["gap", "--resume", str(path), "--limit-rule", "tensor"]) == 2
    assert "--resume takes the gap file only" in capsys.readouterr().err
