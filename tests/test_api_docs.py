"""The API reference (docs/conf.py, docs/api/, and docs/*.md through MyST) builds with
Sphinx with every warning an error: a docstring whose markup is broken, a reference
that does not resolve, or a module that fails to import fails this test."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_api_reference_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    out = subprocess.run([sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q",
                          "-b", "html", str(ROOT / "docs"), str(tmp_path / "html")],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-4000:]
    page = (tmp_path / "html" / "api" / "sweeps.html").read_text()
    assert "meanfield.discretization.sweep" in page and "GapResult" in page
    for name in ("running", "networks", "data", "storage", "limit", "figures", "solvers"):
        assert (tmp_path / "html" / "api" / f"{name}.html").stat().st_size > 10_000, name
    assert (tmp_path / "html" / "math.html").exists() and (tmp_path / "html" / "format.html").exists()


def test_the_public_api_is_typed():
    """py.typed ships with both packages; every function and public method of what
    ``meanfield`` exports, and the figures, is annotated in every parameter and (but
    ``__init__``) its return."""
    import configparser
    import inspect

    import meanfield as mf
    from meanfield import plots

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    data = cfg["options.package_data"]
    for pkg in ("meanfield", "solvers"):
        assert (ROOT / pkg / "py.typed").is_file() and "py.typed" in data[pkg]
    front = [mf.run, mf.resume, mf.open_run, mf.from_config, mf.load_config, mf.sweep,
             mf.resume_sweep, mf.open_gap, mf.Run.to_xarray, mf.Run.to_dataframe,
             mf.Run.network, mf.Run.template, mf.GapResult.to_xarray, mf.GapResult.to_dataframe,
             plots.plot_run, plots.plot_gap, plots.loss_axes, plots.velocity_axes,
             plots.function_axes, plots.particles_figure, plots.movement_axes,
             plots.gap_width_figure, plots.gap_time_figure, plots.beta_axes, plots.bias_axes,
             plots.decomposition_figure]
    for name in mf._EXPORTS:
        obj = getattr(mf, name)
        if inspect.isfunction(obj):
            front.append(obj)
        elif inspect.isclass(obj):
            front += [v for k, v in vars(obj).items()
                      if inspect.isfunction(v) and (not k.startswith("_") or k == "__init__")]
    for fn in front:
        sig = inspect.signature(fn)
        bare = [p.name for p in sig.parameters.values()
                if p.name != "self" and p.annotation is inspect.Parameter.empty]
        bare = [b for b in bare if sig.parameters[b].kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                                 inspect.Parameter.VAR_KEYWORD)]
        returns = fn.__name__ == "__init__" or sig.return_annotation is not inspect.Signature.empty
        assert not bare and returns, (fn.__qualname__, bare)


def test_a_lazy_export_is_never_shadowed_by_its_module():
    """``mf.History`` loads the module ``meanfield.train``, which binds the name ``train``
    in the package: ``mf.train`` must stay the function (it was the module after
    History, found when this file's typing test ran before test_discretization)."""
    code = ("import types, meanfield as mf\nmf.History\n"
            "bad = [n for n in mf._EXPORTS if isinstance(getattr(mf, n), types.ModuleType)]\n"
            "print(callable(mf.train) and not isinstance(mf.train, types.ModuleType), bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert out.stdout.split() == ["True", "[]"], (out.stdout, out.stderr)
