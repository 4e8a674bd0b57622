"""The one error of the semantics layer: a construct DuckDB cannot answer as Trino does."""

from __future__ import annotations

import re

from panorama_kpi.errors import EngineError


class Unsupported(EngineError):
    """Raised at translation time, before anything runs, so no answer is ever wrong."""

    def __init__(self, construct: str, hint: str = "") -> None:
        message = f"{construct} is not supported by the local engine"
        super().__init__(f"{message}: {hint}" if hint else message)
        self.construct = construct


_MISSING = re.compile(r"(?:Scalar|Aggregate|Table) Function with name (\w+) does not exist")
_RAISED = re.compile(r"Could not convert string '\[Athena semantics\] (.*)' to INT32")


def error_message(exc: Exception) -> str:
    """DuckDB's error as one line in Athena's terms: Trino's own message where a macro raised it."""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    raised = _RAISED.search(first)
    if raised:
        return raised.group(1)
    missing = _MISSING.search(first)
    if missing:
        return f"function {missing.group(1)} is not supported by the local engine"
    return first
