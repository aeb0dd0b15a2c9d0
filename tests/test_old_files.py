"""Files written by earlier meanfield versions still open, and today's code recomputes
their numbers bit for bit (tests/data: a version-2 run file and a version-1 gap file
written before the shared header module, with meanfield at commit 5338fbe)."""
import pathlib

import numpy as np

import meanfield as mf
from meanfield.discretization.result import ARRAYS

DATA = pathlib.Path(__file__).resolve().parent / "data"


def test_a_version_2_run_file_opens_and_is_recomputed_bit_for_bit():
    with mf.open_run(DATA / "run-v2.h5") as r:
        assert r.version == 2 and r.status == "complete"
        assert "python_version" not in r.attrs          # written before the shared header
        assert r.seeds == r.config["seed"] == {"init": 0, "data": 0, "noise": 0}
        stored = [r.theta(i) for i in range(r.n_snapshots)]
        loss = np.asarray(r.series["loss"])
        cfg = r.config
    again = mf.run(cfg)                                   # in memory, with today's code
    arrays = again.recorder.arrays()
    assert np.array_equal(arrays["series/loss"], loss)
    assert len(stored) == len(again.recorder.snapshots["theta"])
    for a, b in zip(stored, again.recorder.snapshots["theta"]):
        assert np.array_equal(a, b)


def test_a_version_1_gap_file_opens_and_is_recomputed_bit_for_bit():
    old = mf.open_gap(DATA / "gap-v1.h5")
    assert old.complete and old.file_status == "complete" and old.attrs["format_version"] == 1
    assert "cpu" not in old.attrs
    o = old.options
    assert o.interval == "percentile"   # what version-1 files computed
    new = mf.sweep(old.config, widths=[list(w) for w in o.widths], seeds=o.seeds,
                   reference_width=list(o.reference_width), coupling=o.coupling, every=o.every,
                   distance_size=o.distance_size, n_projections=o.n_projections,
                   bandwidth=o.bandwidth, n_boot=o.n_boot, level=o.level,
                   interval=o.interval)   # a version-1 file's: the percentile bootstrap
    for k in ARRAYS:
        assert np.array_equal(getattr(old, k), getattr(new, k), equal_nan=True), k
    for term, arr in old.decomposition.items():
        assert np.array_equal(arr, new.decomposition[term], equal_nan=True), term
    assert np.array_equal(old.reference.theta, new.reference.theta)
    for name, r in old.rates.items():
        for k in ("beta", "beta_lo", "beta_hi", "C"):
            assert np.array_equal(r[k], new.rates[name][k], equal_nan=True), (name, k)
    for w in range(o.W):
        assert np.array_equal(old.theta[w], new.theta[w])
