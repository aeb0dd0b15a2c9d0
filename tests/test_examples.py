"""The example scripts run as printed (at reduced sizes, through their environment
variables) and write their figures."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script, env", [
    ("run_to_dataframe.py", {"STEPS": "20"}),
    ("gap_to_xarray.py", {"STEPS": "4", "SEEDS": "2", "WIDTHS": "8,16"}),
])
def test_example_runs(tmp_path, script, env):
    pytest.importorskip("pandas")
    pytest.importorskip("xarray")
    out = tmp_path / "out.h5"
    p = subprocess.run([sys.executable, str(ROOT / "examples" / script)], cwd=tmp_path,
                       env={**os.environ, **env, "OUT": str(out), "MPLBACKEND": "Agg"},
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    assert out.exists() and (tmp_path / "out.png").stat().st_size > 5000
