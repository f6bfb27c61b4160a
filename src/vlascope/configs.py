"""Typed dataclass configs from user-written values (YAML files, command-line options)."""

from __future__ import annotations

import dataclasses

from vlascope.errors import VlascopeError


def build_config(cls, values: dict, what: str):
    """`cls(**values)` for a config dataclass. An unknown key, a non-number where a number
    belongs, or a non-list where a list belongs, is a one-line error; a number written as text is converted (YAML 1.1 reads `1e-4`,
    without a dot, as a string)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise VlascopeError(f"unknown {what} option(s): {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(fields))}")
    return cls(**{k: _number(fields[k], v, what) for k, v in values.items()})


def _number(field, value, what: str):
    kind = str(field.type).replace(" ", "").removesuffix("|None")
    if kind.startswith("list[") and not isinstance(value, (list, tuple)):
        # A bare string would otherwise be read as a list of its characters.
        raise VlascopeError(f"{what} option '{field.name}' must be a list, got {value!r}")
    if kind not in ("float", "int") or value is None or isinstance(value, bool):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise VlascopeError(f"{what} option '{field.name}' must be a number, got {value!r}") from None
    if kind == "float":
        return number
    if not number.is_integer():
        raise VlascopeError(f"{what} option '{field.name}' must be a whole number, got {value!r}")
    return int(number)
