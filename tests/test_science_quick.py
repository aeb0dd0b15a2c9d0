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
