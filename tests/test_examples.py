"""The example scripts run as printed (at reduced sizes, through their environment
variables) and write their figures.  They run in this process (runpy, as `python
script.py` would), so that the kernels and libraries already loaded are not loaded again."""
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script, env", [
    ("run_to_dataframe.py", {"STEPS": "20"}),
    ("gap_to_xarray.py", {"STEPS": "4", "SEEDS": "2", "WIDTHS": "8,16"}),
])
def test_example_runs(tmp_path, monkeypatch, script, env):
    pytest.importorskip("pandas")
    pytest.importorskip("xarray")
    import matplotlib

    out = tmp_path / "out.h5"
    for k, v in {**env, "OUT": str(out)}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    backend = matplotlib.get_backend()
    matplotlib.use("Agg")   # the scripts draw with pyplot; no window in a test
    try:
        runpy.run_path(str(ROOT / "examples" / script), run_name="__main__")
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")
        matplotlib.use(backend)
    assert out.exists() and (tmp_path / "out.png").stat().st_size > 5000
