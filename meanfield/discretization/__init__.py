"""Discretization: finite networks against a wide reference that stands in for the
mean-field limit (docs/math.md §3).

- :mod:`.coupling` — width-m members of a reference network: a subsample of its
  initial particles (the synchronous coupling of propagation-of-chaos arguments) or
  independent draws from the same initial laws;
- :mod:`.measures` — the gaps between a member and the reference: function, loss,
  per-block feature and coupling gaps (distances between particle clouds are in
  :mod:`meanfield.distances`);
- :mod:`.rates` — rates of the gaps in the width with intervals over seeds (single
  networks, the seed-averaged function, and its bias without the seeds' noise),
  Richardson extrapolation;
- :mod:`.decomposition` — the [RZG] loss decomposition of two-block networks;
- :mod:`.options` — a sweep's options and their checks; :mod:`.result` — its result,
  :class:`GapResult`; :mod:`.sweep` — width sweeps of an experiment configuration (in
  this process or on Dask), and sample sweeps (the same at several training-set sizes
  N); :mod:`.gapfile` — the gap file.
"""
from .coupling import COUPLINGS, Member, member
from .measures import block_clouds, coupling_gap, feature_gaps, function_gap
from .decomposition import Decomposition, decomposition, lipschitz_bound
from .options import SweepError, SweepOptions, make_options, parse_widths
from .result import GapResult, Trace
from .gapfile import GapFileError, GapWriteError, open_gap
from .sweep import resume_sweep, sample_paths, sample_sweep, sample_table, sweep
from .rates import (Extrapolation, RateFit, bias_squared, effective_widths, extrapolate,
                    fit_bias_rate, fit_debiased_bias_rate, fit_rate)

__all__ = ["COUPLINGS", "Member", "member", "block_clouds", "coupling_gap", "feature_gaps",
           "function_gap", "Extrapolation", "RateFit", "effective_widths", "extrapolate",
           "fit_bias_rate", "fit_rate", "bias_squared", "fit_debiased_bias_rate",
           "sample_paths", "sample_sweep", "sample_table", "Decomposition", "decomposition",
           "lipschitz_bound",
           "SweepError", "SweepOptions", "make_options", "parse_widths", "resume_sweep", "sweep",
           "GapFileError", "GapWriteError", "GapResult", "Trace", "open_gap"]
