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
from __future__ import annotations

import os
from collections.abc import Sequence

from .build import (available_memory, build, check_memory, context, estimate_memory, frozen_groups,
                    init_laws, make_data, make_distribution, make_limit, make_network, parameter_count,
                    make_schedule, make_target)
from .schema import METHODS, SEED_KEYS, ConfigError, resolve
from .toml import apply_overrides, dumps, dumps_raw, parse_toml


def load(text: str, overrides=()) -> dict:
    """Parse TOML text, apply ``--set`` overrides and resolve."""
    return resolve(apply_overrides(parse_toml(text), overrides))


def load_config(source: dict | str | os.PathLike[str], overrides: Sequence[str] = ()) -> dict:
    """A resolved configuration from a dict, a path to a TOML file (a ``PathLike``, or
    a one-line string ending in ``.toml``) or TOML text, with ``--set`` style
    ``overrides`` (``"solver.dt=0.1"``) applied.  ConfigError (one line) when invalid."""
    if isinstance(source, dict):
        return resolve(apply_overrides(source, overrides))
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source
                                           and source.endswith(".toml")):
        try:
            with open(source, "rb") as fh:
                raw = fh.read()
        except OSError as e:
            raise ConfigError(f"{source}: cannot read ({e.strerror})") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{source}: not UTF-8 text (byte {e.start}); a configuration "
                                "is a UTF-8 TOML file") from None
    else:
        text = str(source)
    return load(text, overrides)


__all__ = ["ConfigError", "available_memory", "METHODS", "SEED_KEYS", "apply_overrides", "build", "check_memory",
           "context", "estimate_memory",
           "dumps", "dumps_raw", "frozen_groups", "init_laws", "make_limit", "parameter_count", "load", "load_config", "make_data", "make_distribution",
           "make_network", "make_schedule", "make_target", "parse_toml", "resolve"]
