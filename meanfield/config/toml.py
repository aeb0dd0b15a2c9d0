"""TOML in and out: parsing, ``--set`` overrides, and writing resolved configurations
(the text stored in every run file, which :func:`meanfield.config.load` reads back)."""
from __future__ import annotations

import copy
import math

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

from .schema import ConfigError


def parse_toml(text: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"invalid TOML: {str(e).splitlines()[0]}") from None



def apply_overrides(raw: dict, overrides) -> dict:
    """Apply ``key=value`` strings (``solver.dt=0.1``, ``model.widths=[64, 64]``,
    ``model.init."1.v"={law="zero"}``).

    Keys are TOML dotted keys and values TOML values; a value that is not valid TOML is
    taken as a string (``data.distribution=ball``).
    """
    raw = copy.deepcopy(raw)
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, val = item.split("=", 1)
        key, val = key.strip(), val.strip()
        try:
            patch = tomllib.loads(f"{key} = {val}")
        except tomllib.TOMLDecodeError:
            esc = val.replace("\\", "\\\\").replace('"', '\\"')
            try:
                patch = tomllib.loads(f'{key} = "{esc}"')
            except tomllib.TOMLDecodeError:
                raise ConfigError(f"--set {item!r}: bad key {key!r}") from None
        _merge(raw, patch, item)
    return raw


def _merge(dst: dict, patch: dict, item: str, top: bool = True) -> None:
    for k, v in patch.items():
        if top and k == "seed" and isinstance(v, dict) and isinstance(dst.get(k), int) \
                and not isinstance(dst.get(k), bool):
            # --set seed.init=3 on `seed = s`: the other streams keep s
            dst[k] = {key: dst[k] for key in ("init", "data", "noise")}
        if isinstance(v, dict) and k in dst:
            if not isinstance(dst[k], dict):
                raise ConfigError(f"--set {item!r}: {k} is not a table")
            _merge(dst[k], v, item, False)
        else:
            dst[k] = v



def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf") if not math.isnan(v) else "nan"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_value(k)


def dumps_raw(raw: dict) -> str:
    """TOML text of any table of TOML values (sections written as inline tables)."""
    return "\n".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in raw.items()) + "\n"


def dumps(cfg: dict) -> str:
    """TOML text of a resolved configuration (round-trips through :func:`load`)."""
    lines = [f"seed = {_toml_value(cfg['seed'])}", ""]
    for sec in ("model", "data", "target", "solver", "record"):
        lines.append(f"[{sec}]")
        for k, v in cfg[sec].items():
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        lines.append("")
    for st in cfg["stages"]:
        lines.append("[[stages]]")
        for k, v in st.items():
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        lines.append("")
    return "\n".join(lines)


