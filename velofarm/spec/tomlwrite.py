"""A small TOML writer for the files velofarm generates (the standard library only reads TOML)."""

from __future__ import annotations

import math
import re
from typing import Any

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)  # Python's shortest repr is valid TOML: 0.5, 1e-05
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _string(text: str) -> str:
    """A TOML basic string: escape only quotes, backslashes and control characters.

    (JSON's escaping is not enough: it writes characters outside the BMP as surrogate pairs,
    which TOML refuses.)"""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, f"\\u{ord(ch):04x}"))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    return key if BARE_KEY.fullmatch(key) else _string(key)


def dumps(data: dict[str, Any]) -> str:
    """TOML text for nested tables of strings, numbers, booleans and lists."""
    lines: list[str] = []
    _table(data, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(data: dict[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) or not _is_table(v, path + [k])}
    tables = {k: v for k, v in data.items() if k not in scalars}
    if path and (scalars or not tables):
        lines.append("")
        lines.append("[" + ".".join(_key(p) for p in path) + "]")
    for k, v in scalars.items():
        lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in tables.items():
        _table(v, path + [k], lines)


def _is_table(value: dict[str, Any], path: list[str]) -> bool:
    # Small string-to-string maps (env) stay inline; everything else becomes a [table].
    return not (path[-1] == "env" and all(isinstance(v, str) for v in value.values()))
