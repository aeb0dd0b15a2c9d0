"""The shipped experiment presets: TOML files in this folder.

``names()`` lists them, ``text(name)`` is a preset's TOML text (the input of
:func:`meanfield.from_config`, :func:`meanfield.run` and :func:`meanfield.sweep`), and
``description(text)`` its ``# description:`` line.
"""
from importlib import resources


class PresetError(ValueError):
    """An unknown preset name (one-line message)."""


def names() -> list:
    """The names of the shipped presets, sorted."""
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir()
                  if p.name.endswith(".toml"))


def text(name: str) -> str:
    """The TOML text of preset ``name`` (PresetError when there is none)."""
    if name not in names():
        raise PresetError(f"unknown preset {name!r}; `meanfield presets` lists them "
                          f"({', '.join(names())})")
    return resources.files(__name__).joinpath(name + ".toml").read_text()


def _comment(text: str, key: str) -> str:
    for line in text.splitlines():
        if line.startswith(f"# {key}:"):
            return line.split(":", 1)[1].strip()
    return ""


def description(text: str) -> str:
    """The ``# description:`` line of a preset's text ("" without one)."""
    return _comment(text, "description")


def runtime(text: str) -> str:
    """The ``# runtime:`` line of a preset's text: how long its run took, measured, and
    where ("" without one)."""
    return _comment(text, "runtime")
