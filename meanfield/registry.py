"""Registries: one place where a data law, target or initial law is declared, for the
Python API and for TOML configurations alike.

A :class:`Registry` is a dict ``name -> factory`` (what the Python API uses:
``DISTRIBUTIONS["gaussian"](d, s)``) that also knows, for each name, the keys a
configuration table may give (:class:`Param`) and how to build the object from them.
Adding a data law, a target or an initial law is one :meth:`Registry.register` call:
validation (``meanfield.config.schema``), building (``meanfield.config.build``) and
the documentation of keys all read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """One configuration key of a registered entry.

    kind : "number", "integer", "string", "bool" or "table"
    default : a value, a callable ``ctx -> value`` (ctx: {"d": ..., "seed": {...}}), or
        REQUIRED
    lo, strict : lower bound (exclusive when ``strict``) of numbers and integers
    choices : allowed strings
    resolve : for tables, a callable ``(table, path) -> resolved table`` that validates
        (raising the configuration error) and fills defaults
    doc : one line for docs/config.md
    """

    kind: str
    default: Any = REQUIRED
    lo: float | None = None
    strict: bool = False
    choices: tuple = ()
    resolve: Callable | None = None
    doc: str = ""


@dataclass(frozen=True)
class Entry:
    """A registered name: its factory, its configuration keys and its builder."""

    name: str
    factory: Callable
    params: dict = field(default_factory=dict)
    build: Callable | None = None       # (ctx, **params) -> object; default factory(**params)
    check: Callable | None = None       # (ctx, params) -> None, raises ValueError

    def make(self, ctx: dict, params: dict):
        if self.build is not None:
            return self.build(ctx, **params)
        return self.factory(**params)


class Registry(dict):
    """``name -> factory``, plus an :class:`Entry` per name in :attr:`entries`."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what
        self.entries: dict = {}

    def register(self, name: str, factory: Callable, params: dict | None = None,
                 build: Callable | None = None, check: Callable | None = None) -> Callable:
        """Declare ``name``: ``factory`` for the Python API; ``params`` (key -> Param) and
        ``build(ctx, **params)`` for configuration tables; ``check(ctx, params)`` for
        consistency with the rest of the experiment (raise ValueError with a message)."""
        if name in self:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self[name] = factory
        self.entries[name] = Entry(name, factory, dict(params or {}), build, check)
        return factory
