"""meanfield: numerical analysis of the mean-field limit of neural networks.

Networks are stacks of mean-field blocks (particle measures), trained by the
Wasserstein gradient flow of their loss, integrated by the generic particle solvers of
the :mod:`solvers` package.  See README.md for a tour and docs/math.md for the
mathematics; each module's docstring names the equations it implements.
"""
__version__ = "0.2.0"

from . import closed_forms, data, init, targets
from .activations import ACTIVATIONS, act_deriv, act_numpy, act_tile, act_value, activation_code
from .data import DISTRIBUTIONS, EldanShamir, Radial, RadialLaw, SafranLeeD, SafranLeeDPrime
from .network import Block, Network, rzg_three_layer, sl_depth1, sl_depth2, stack, two_layer
from .objective import LOSSES, Dataset, Objective, Stream
from .targets import TARGETS, BallIndicator, RadialTarget, ReluNorm, Teacher
from .store import Run, RunFileError, open_run
from .train import History, TrainResult, train
from .experiment import Experiment, RunResult, drive, resume, run
from .objective import BatchedObjective
from .registry import Param, Registry
from . import config, experiment

__all__ = [
    "__version__", "closed_forms", "data", "init", "targets",
    "ACTIVATIONS", "act_deriv", "act_numpy", "act_tile", "act_value", "activation_code",
    "DISTRIBUTIONS", "EldanShamir", "Radial", "RadialLaw", "SafranLeeD", "SafranLeeDPrime",
    "Block", "Network", "rzg_three_layer", "sl_depth1", "sl_depth2", "stack", "two_layer",
    "LOSSES", "Dataset", "Objective", "Stream",
    "TARGETS", "BallIndicator", "RadialTarget", "ReluNorm", "Teacher",
    "Run", "RunFileError", "open_run",
    "History", "TrainResult", "train",
    "Experiment", "RunResult", "drive", "resume", "run", "BatchedObjective",
    "Param", "Registry", "config", "experiment",
]
