"""`python -m benchmarks science --quick`: the reduced reproductions run and every result
points the way the papers say (3 layers beat 2 on ReLU(1 − ‖x‖) at the largest quick d;
depth 2 beats depth 1 on ball indicators; the t = 0 rate of the gap is 1/2)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_science_suite_runs_and_points_the_right_way(tmp_path):
    p = subprocess.run([sys.executable, "-m", "benchmarks", "science", "--quick", "--out", str(tmp_path),
                        "-q"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    lines = [l for l in p.stdout.splitlines() if l.startswith(("ok", "FAIL"))]
    assert p.returncode == 0, p.stdout + p.stderr[-2000:]
    assert len(lines) == 7 and all(l.startswith("ok") for l in lines), p.stdout
    for name in ("rzg.md", "sl.md", "gap.json", "rzg-profiles.png", "sl-mse-vs-d.png",
                 "gap-teacher-2layer.png"):
        assert os.path.getsize(tmp_path / name) > 500, name


def test_quick_runs_never_write_over_the_published_results(monkeypatch):
    """`science --quick` and `perf --quick` default to benchmarks/results-quick (a quick
    run once replaced 13 published files with reduced-size numbers); full runs and an
    explicit --out are unchanged."""
    import os

    from benchmarks import __main__ as B
    from benchmarks import science

    seen = []

    def fake_run(args):
        seen.append(args.out)
        return {"seconds": 0.0}

    monkeypatch.setattr(science, "run", fake_run)
    monkeypatch.setattr(science, "directions", lambda res: [])
    for argv in (["science", "--quick"], ["science"], ["science", "--quick", "--out", "x"]):
        assert B.main(argv) == 0
    assert seen == [os.path.join("benchmarks", "results-quick"),
                    os.path.join("benchmarks", "results"), "x"]


def test_quick_limit_benchmark_runs(tmp_path, monkeypatch):
    """`python -m benchmarks limit --quick` at a smaller size, in this process: both
    tables are written, every learner has an error estimate, and the 3-layer network from
    the preset's symmetric laws stays at the constant predictor (the limit's saddle)."""
    import json
    import types

    from benchmarks import limit

    monkeypatch.setattr(limit, "QUICK", {**limit.QUICK, "rzg_t": 10.0, "sl_steps": 30})
    args = types.SimpleNamespace(quick=True, parts="rzg,sl", out=str(tmp_path), quiet=True)
    res = limit.run(args)
    text = (tmp_path / "limit.md").read_text()
    assert "[RZG] at the limit" in text and "[SL] at the limit" in text
    assert json.loads((tmp_path / "limit.json").read_text())["quick"] is True
    rows = {r["model"]: r for r in res["rzg"]["rows"]}
    assert abs(rows["3-layer"]["mse"] - res["rzg"]["constant"]) < 1e-3
    assert rows["2-layer"]["mse"] < res["rzg"]["constant"]
    sl = res["sl"]["rows"][0]
    assert all(0 <= sl[k]["error"] < 0.05 for k in ("depth2", "depth1"))


def test_recording_benchmark_runs(capsys):
    """`python -m benchmarks recording` at a tiny size, through its command line: it
    creates run files with the recorder's current signature (it had called it with a
    `seed=` keyword the recorder no longer takes) and reports its ratios."""
    from benchmarks.__main__ import main

    assert main(["recording", "--d", "4", "--n", "64", "--m", "32", "--steps", "5",
                 "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "end-to-end overhead" in out and "inside the recorder" in out
