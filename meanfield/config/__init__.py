"""Experiment configurations: TOML files → validated, fully resolved experiments.

One TOML file describes a whole experiment: ``seed`` (one integer, or a table of the
``init``, ``data`` and ``noise`` seeds) and the sections ``[model]``, ``[data]``,
``[target]``, ``[solver]``, ``[[stages]]`` and ``[record]`` (docs/config.md lists every
key).  Three modules, one job each:

- :mod:`.schema` — :func:`resolve` validates and fills defaults (:class:`ConfigError`,
  one line naming the key);
- :mod:`.build` — :func:`build` makes the :class:`~meanfield.experiment.Experiment`
  through the registries of the Python API;
- :mod:`.toml` — parsing, ``--set`` overrides, :func:`dumps` of resolved configurations.
"""
from .build import (build, check_memory, context, estimate_memory, frozen_groups, make_data,
                    make_distribution, make_network, make_schedule, make_target)
from .schema import METHODS, SEED_KEYS, ConfigError, resolve
from .toml import apply_overrides, dumps, dumps_raw, parse_toml


def load(text: str, overrides=()) -> dict:
    """Parse TOML text, apply ``--set`` overrides and resolve."""
    return resolve(apply_overrides(parse_toml(text), overrides))


__all__ = ["ConfigError", "METHODS", "SEED_KEYS", "apply_overrides", "build", "check_memory",
           "context", "estimate_memory",
           "dumps", "dumps_raw", "frozen_groups", "load", "make_data", "make_distribution",
           "make_network", "make_schedule", "make_target", "parse_toml", "resolve"]
