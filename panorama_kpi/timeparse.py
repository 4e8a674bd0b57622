"""Times and durations: the machine's UTC time, and times written on the command line."""

from __future__ import annotations

import datetime as dt
import re

from panorama_kpi.errors import SettingsError
from panorama_kpi.settings_text import parse_interval

_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week"}


def utcnow() -> dt.datetime:
    """This machine's time, naive UTC: how the lake writes every timestamp."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def parse_since(text: str, option: str = "--since") -> dt.datetime:
    """'2026-11-01', '2026-11-01 00:00' or '2026-11-01T00:00:00' (UTC) -> naive UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SettingsError(
            f"{option}: {text!r} is not a date/time; write 'YYYY-MM-DD HH:MM' (UTC)"
        ) from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def parse_age(text: str, where: str = "--max-age") -> dt.timedelta:
    """'2h', '90m', '1d', or panorama's '2 hour'."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text.lower())
    if m:
        return parse_interval(f"{m.group(1)} {_UNITS[m.group(2)]}", where)
    return parse_interval(text, where)
