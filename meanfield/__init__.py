"""meanfield: numerical analysis of the mean-field limit of neural networks.

Networks are stacks of mean-field blocks (particle measures), trained by the
Wasserstein gradient flow of their loss, integrated by the generic particle solvers of
the :mod:`solvers` package.  See README.md for a tour and docs/math.md for the
mathematics; each module's docstring names the equations it implements.

The public names below are loaded on first use (PEP 562), so ``import meanfield`` is
cheap: the command line installs its Ctrl-C handling before Numba and the kernels load.
"""
import sys as _sys
from importlib import import_module

if any("meanfield" in a for a in getattr(_sys, "orig_argv", ())):   # maybe the command: check
    from . import _stop

    if _stop.launched_as_command(_sys.orig_argv):
        _stop.install(early=True)   # the command's Ctrl-C handling, before anything slow loads

from . import parallel  # noqa: E402,F401  (OpenMP's spinning, bounded before Numba starts a thread)

__version__ = "0.2.0"

# public name -> the module that defines it
_EXPORTS = {
    "ACTIVATIONS": "activations", "act_deriv": "activations", "act_numpy": "activations",
    "act_tile": "activations", "act_value": "activations", "activation_code": "activations",
    "DISTRIBUTIONS": "data", "EldanShamir": "data", "Radial": "data", "RadialLaw": "data",
    "SafranLeeD": "data", "SafranLeeDPrime": "data",
    "Block": "network", "Network": "network", "rzg_three_layer": "network",
    "sl_depth1": "network", "sl_depth2": "network", "stack": "network", "two_layer": "network",
    "LOSSES": "objective", "Dataset": "objective", "Objective": "objective",
    "Stream": "objective", "BatchedObjective": "objective",
    "TARGETS": "targets", "BallIndicator": "targets", "RadialTarget": "targets",
    "ReluNorm": "targets", "Teacher": "targets",
    "Run": "store", "RunFileError": "store",
    "History": "train", "TrainResult": "train", "train": "train",
    "Experiment": "experiment", "RunResult": "experiment", "drive": "experiment",
    "open_run": "runs", "resume": "runs", "run": "runs", "from_config": "runs",
    "load_config": "config",
    "Param": "registry", "Registry": "registry",
    "sweep": "discretization", "resume_sweep": "discretization", "open_gap": "discretization",
    "sample_sweep": "discretization",
    "GapResult": "discretization",
}
_MODULES = ("closed_forms", "data", "init", "targets", "config", "experiment", "distances",
            "discretization", "limit", "network", "objective", "store", "activations",
            "registry", "train", "plots", "cli", "runs", "record", "presets", "parallel",
            "streams", "layout")

__all__ = ["__version__", *_MODULES[:9], *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        module = import_module(f".{_EXPORTS[name]}", __name__)
        value = getattr(module, name)
        # importing a submodule binds its name here: where an export has the same name
        # (``train``, the function of the module ``train``), the export wins
        if _EXPORTS[name] in _EXPORTS:
            globals()[_EXPORTS[name]] = getattr(module, _EXPORTS[name])
    elif name in _MODULES or name.startswith("_"):
        try:
            value = import_module(f".{name}", __name__)
        except ModuleNotFoundError:
            raise AttributeError(f"module 'meanfield' has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module 'meanfield' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
