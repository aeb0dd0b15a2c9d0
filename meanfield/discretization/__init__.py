"""Discretization: finite networks against a wide reference that stands in for the
mean-field limit (docs/math.md §3).

- :mod:`.coupling` — width-m members of a reference network: a subsample of its
  initial particles (the synchronous coupling of propagation-of-chaos arguments) or
  independent draws from the same initial laws;
- :mod:`.measures` — the gaps between a member and the reference: function, loss,
  per-block feature and coupling gaps (distances between particle clouds are in
  :mod:`meanfield.distances`);
- :mod:`.rates` — rates of the gaps in the width with bootstrap intervals over seeds
  (single networks and the seed-averaged function), Richardson extrapolation;
- :mod:`.decomposition` — the [RZG] loss decomposition of two-block networks;
- :mod:`.sweep` — width sweeps of an experiment configuration (in this process or on
  Dask), :mod:`.gapfile` — their result and gap file.
"""
from .coupling import COUPLINGS, Member, member
from .measures import block_clouds, coupling_gap, feature_gaps, function_gap
from .decomposition import Decomposition, decomposition, lipschitz_bound
from .sweep import SweepError, SweepOptions, make_options, resume_sweep, sweep
from .gapfile import GapFileError, GapResult, open_gap
from .rates import Extrapolation, RateFit, effective_widths, extrapolate, fit_bias_rate, fit_rate

__all__ = ["COUPLINGS", "Member", "member", "block_clouds", "coupling_gap", "feature_gaps",
           "function_gap", "Extrapolation", "RateFit", "effective_widths", "extrapolate",
           "fit_bias_rate", "fit_rate", "Decomposition", "decomposition", "lipschitz_bound",
           "SweepError", "SweepOptions", "make_options", "resume_sweep", "sweep", "GapFileError",
           "GapResult", "open_gap"]
