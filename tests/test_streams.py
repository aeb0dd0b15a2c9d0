"""The keyed random streams (meanfield/streams.py): the values stored files depend on, the
claims its docstring makes about independence, and that nothing else draws at random."""
import pathlib
import re

import numpy as np

from meanfield import streams
from solvers import stream_key

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _first(gen, n=4):
    return tuple(gen.integers(0, 2 ** 63, n))


def test_the_streams_keep_the_values_of_stored_files():
    """The keys of meanfield 0.2 files, spelled out once more (a change here would make
    stored runs and gap files impossible to recompute)."""
    assert _first(streams.data(5)) == _first(np.random.default_rng([5, 1]))
    assert _first(streams.fresh_samples(3, 8)) == _first(np.random.default_rng([3, 8]))
    assert _first(streams.subsample(2, 1, 16)) == _first(np.random.default_rng([2, 1, 16]))
    assert _first(streams.reference_cloud(2)) == _first(np.random.default_rng([0x6D666761, 0, 2]))
    assert _first(streams.member_cloud(1, 3, 2)) == \
        _first(np.random.default_rng([0x6D666761, 1, 1, 3, 2]))
    assert streams.projections_seed(1) == 0x6D666761 and streams.projections_seed(3) == 0x6D666763
    assert streams.independent_init_seed(0, 4) == int(
        np.random.SeedSequence([0, 0x696E6470, 4]).generate_state(1)[0])
    assert streams.init_key(7, 2, "v") == stream_key(0x494E4954, 7, 2, 2)


def test_the_streams_of_one_sweep_are_distinct():
    """Every stream a sweep of seeds 0..3, blocks 1..2, widths 8..64 and 4 members draws
    from starts differently from every other (the table of the module docstring)."""
    seen = {}
    seeds, blocks, widths, members = range(4), (1, 2), (8, 16, 32, 64), range(4)
    gens = [("data", s, streams.data(s)) for s in seeds]
    gens += [("subsample", (s, l, m), streams.subsample(s, l, m))
             for s in members for l in blocks for m in widths]
    gens += [("reference cloud", l, streams.reference_cloud(l)) for l in blocks]
    gens += [("member cloud", (w, s, l), streams.member_cloud(w, s, l))
             for w in range(len(widths)) for s in members for l in blocks]
    gens += [("projections", l, streams.generator(streams.projections_seed(l))) for l in blocks]
    gens += [("bootstrap", j, streams.generator(j)) for j in range(1, 11)]
    for name, key, g in gens:
        first = _first(g)
        assert first not in seen, f"{name} {key} starts like {seen[first]}"
        seen[first] = (name, key)
    inits = {streams.independent_init_seed(i, s) for i in seeds for s in members}
    assert len(inits) == len(seeds) * len(members)


def test_the_trailing_zero_rule_the_docstring_states():
    """SeedSequence pads entropy to four words with zeros: [s], [s, 0], [s, 0, 0] are one
    stream (which is why no stream's list ends in a zero that could meet another's)."""
    for s in (0, 1, 12345):
        assert _first(np.random.default_rng([s])) == _first(np.random.default_rng([s, 0])) == \
            _first(np.random.default_rng([s, 0, 0]))
        assert _first(np.random.default_rng([s, 1])) != _first(np.random.default_rng([s]))


def test_nothing_else_seeds_a_generator():
    """Every NumPy generator of the package is made in streams.py (solvers/ has its own
    counter-based streams)."""
    pattern = re.compile(r"default_rng\(|SeedSequence\(|RandomState\(|np\.random\.seed\(")
    offenders = []
    for path in sorted((ROOT / "meanfield").rglob("*.py")):
        if path.name == "streams.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if pattern.search(code) and "``" not in code:
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_generator_passes_a_generator_through():
    g = np.random.default_rng(0)
    assert streams.generator(g) is g
    assert np.array_equal(streams.generator(3).random(2), np.random.default_rng(3).random(2))
