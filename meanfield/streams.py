"""Every random stream of meanfield, keyed in one place.

A result is reproducible bit for bit because every random number comes from a stream
whose key is a function of seeds and positions only (never of threads, order of
execution or process).  This module is where those keys are made; each function below
names one stream, its key and its users.  Two kinds of generators are used:

- **counter-based normals** (:func:`solvers.keyed_normals`, :func:`solvers.counter_normal`):
  the n-th number of the stream of a 64-bit key is a function of (key, n) alone, so a
  prefix of a wider network's particles is a narrower network's, and the Langevin noise
  of a resumed run is the uninterrupted run's.  Keys are :func:`solvers.stream_key` of a
  *domain tag* and integers: :data:`INIT` (initial particles, :func:`init_key`) and
  ``solvers.noise.NOISE_DOMAIN`` (Langevin noise, keyed in :mod:`solvers.run` by the
  noise seed, the group's key and the step);
- **NumPy generators** (PCG64 seeded through ``SeedSequence``) for everything drawn in
  bulk: data samples, subsamples, distance clouds and projections, bootstrap resamples.

Why the streams are independent.  Streams of different domain tags never share a key
(``stream_key`` mixes the tag into the key; the tags are distinct).  NumPy streams are
seeded by entropy lists, and two different lists give unrelated streams, with one rule
to respect: ``SeedSequence`` pads a list to four words with zeros, so lists that differ
only by trailing zeros up to length four are the *same* stream (``[s]``, ``[s, 0]``
and ``[s, 0, 0]`` are one stream; measured).  The lists below are:

========================  ===================================  ==========================
stream                    entropy                               used by
========================  ===================================  ==========================
data                      ``[seed.data, 1]``                    :func:`data`
fresh samples             ``[seed, step]``                      :class:`~meanfield.Stream`
subsample coupling        ``[member seed, block, m]``           :func:`subsample`
independent members       ``[seed.init, INDEPENDENT, member]``  :func:`independent_init_seed`
a sweep's fresh samples   ``[H(seed.data, FRESH), step]``       :func:`sweep_samples_seed`
a member's own samples    ``[H(seed.data, FRESH, member + 1),   :func:`sweep_samples_seed`
                          step]``
reference distance cloud  ``[DISTANCES, 0, block]``             :func:`reference_cloud`
member distance cloud     ``[DISTANCES, 1, w, member, block]``  :func:`member_cloud`
limit distance cloud      ``[DISTANCES, 2, block]``             :func:`limit_cloud`
sliced-W₂ projections     ``DISTANCES + block − 1``             :func:`projections_seed`
bootstrap of gap time j   ``j`` (``fit_rate(seed=j)``)          :func:`generator`
========================  ===================================  ==========================

Within one file they never coincide: the data list ends in 1, blocks and widths are at
least 1, and the distance lists start with the tag :data:`DISTANCES`, which is not a
seed of the shipped presets.  Across uses the caveats are stated, not hidden: a
user-chosen seed can equal another stream's list (``Stream(seed=s)`` at step 1 is the
data stream of ``seed.data = s``; the bootstrap of gap time j is ``default_rng(j)``,
which is also ``Stream(seed=j)`` at step 0);
such coincidences cannot correlate a sweep's members with its reference, whose streams
are the ones in the table.  The values are those of meanfield 0.2 files, kept so that
every stored run and gap file can be recomputed.
"""
from __future__ import annotations

import numpy as np

INIT = 0x494E4954           # "INIT": the initial particles' counter-based streams
INDEPENDENT = 0x696E_6470   # "indp": init seeds of independent members
FRESH = 0x6672_7368         # "frsh": the fresh samples of a sweep's training
DISTANCES = 0x6D66_6761     # "mfga": distance subsamples and projections
PARAM_INDEX = {"u": 0, "c": 1, "v": 2}


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    return int(seed)


def init_key(seed: int, block: int, param: str) -> int:
    """The counter-based stream key of parameter ``param`` ("u", "c" or "v") of block
    ``block`` (1-based) for an initialisation seed (the n-th particle's coordinates are
    the stream's numbers n·k … n·k + k − 1, so widths nest)."""
    from solvers import stream_key   # deferred: it loads Numba, and this module stays light

    return stream_key(INIT, _check_seed(seed), int(block), PARAM_INDEX[param])


def generator(seed) -> np.random.Generator:
    """A NumPy generator from a user's seed (an int, a sequence of ints, a
    ``SeedSequence``), or the Generator itself."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def data(seed: int) -> np.random.Generator:
    """The data stream of ``seed.data``: the training sample, then the test sample."""
    return np.random.default_rng([int(seed), 1])


def fresh_samples(seed: int, step: int) -> np.random.Generator:
    """The sample of step ``step`` of a :class:`~meanfield.Stream` of fresh samples."""
    return np.random.default_rng([int(seed), int(step)])


def subsample(seed: int, block: int, m: int) -> np.random.Generator:
    """The subsample of ``m`` particles of block ``block`` (1-based) for member seed
    ``seed`` (subsample coupling)."""
    return np.random.default_rng([int(seed), int(block), int(m)])


def independent_init_seed(init: int, member: int) -> int:
    """The init seed of independent member ``member`` of a sweep whose reference has
    init seed ``init`` (streams unrelated to the reference's)."""
    return int(np.random.SeedSequence([int(init), INDEPENDENT, int(member)]).generate_state(1)[0])


def sweep_samples_seed(data: int, member: int | None = None) -> int:
    """The seed of the :class:`~meanfield.Stream` of fresh samples that a sweep trains
    on, for ``seed.data = data``: with ``samples = "fresh"`` (``member`` None) one stream
    for the reference and every member (the same sample at a step); with ``samples =
    "independent"`` member ``member``'s own stream (0-based; the member of that seed at
    every width, like its initial particles).  Unrelated to the fixed data stream
    (``Stream(seed=data)`` at step 1 would be the data stream itself) and to each other:
    the member's list ends in ``member + 1`` ≥ 1, so it is never the shared list padded
    with a zero."""
    key = [int(data), FRESH] + ([] if member is None else [int(member) + 1])
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def reference_cloud(block: int) -> np.random.Generator:
    """The permutation that picks the reference's distance cloud of block ``block``
    (1-based) and its noise-floor partner."""
    return np.random.default_rng([DISTANCES, 0, int(block)])


def member_cloud(w: int, member: int, block: int) -> np.random.Generator:
    """The permutation that picks the distance cloud of member ``member`` of width index
    ``w`` in block ``block`` (1-based), when the member is wider than the cloud."""
    return np.random.default_rng([DISTANCES, 1, int(w), int(member), int(block)])


def limit_cloud(block: int) -> np.random.Generator:
    """The draws (by the quadrature weights) that pick the limit's distance cloud of block
    ``block`` (1-based) and its noise-floor partner, when the limit is a sweep's
    reference."""
    return np.random.default_rng([DISTANCES, 2, int(block)])


def projections_seed(block: int) -> int:
    """The seed of the sliced-W₂ directions of block ``block`` (1-based)."""
    return DISTANCES + int(block) - 1

