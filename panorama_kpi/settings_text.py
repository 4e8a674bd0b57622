"""The value rules of a settings file: `${VAR}` interpolation, typed values (never
echoing a secret), panorama-elt's intervals and did-you-mean suggestions."""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
from typing import Any

from panorama_kpi.errors import SettingsError

_ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_INTERVAL_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
_SECRET_KEY = re.compile(r"password|secret|token|api_key|credential|private|uri$|dsn$", re.IGNORECASE)


def suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unset_vars(text: str) -> list[str]:
    return [
        m.group(1)
        for m in _ENV_RE.finditer(text)
        if m.group(0) != "$$" and m.group(1) not in os.environ and m.group(2) is None
    ]


def interpolate(value: Any, where: str) -> Any:
    """Replace ${NAME} and ${NAME:-default} in every string; `$$` is a literal `$`."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise SettingsError(
                f"{where}: environment variable {name} is not set (export it, or write ${{{name}:-default}})"
            )

        return _ENV_RE.sub(sub, value) if "$" in value else value
    if isinstance(value, dict):
        return {k: interpolate(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def parse_interval(text: str, where: str) -> dt.timedelta:
    """panorama-elt intervals are MySQL-style: '2 hour', '30 minute', '1 day'."""
    parts = str(text).strip().lower().split()
    if len(parts) == 2 and parts[0].isdigit():
        unit = parts[1].rstrip("s")
        if unit in _INTERVAL_UNITS:
            return dt.timedelta(seconds=int(parts[0]) * _INTERVAL_UNITS[unit])
    units = ", ".join(_INTERVAL_UNITS)
    raise SettingsError(
        f"{where}: invalid interval {text!r}; write '<number> <unit>' with unit one of {units}"
    )


def typed(value: Any, expected: type | tuple[type, ...], where: str) -> Any:
    if value is None:
        return None
    if expected is int and isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if expected is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        names = expected.__name__ if isinstance(expected, type) else "/".join(t.__name__ for t in expected)
        kind = {"str": "a string", "int": "an integer", "list": "a list", "dict": "a mapping"}.get(
            names, names
        )
        shown = "" if _SECRET_KEY.search(where.rsplit(".", 1)[-1]) else f" {value!r}"  # never echo a secret
        raise SettingsError(f"{where}: expected {kind}, got {type(value).__name__}{shown}")
    return value
