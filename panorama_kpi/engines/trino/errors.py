"""The one error of the semantics layer: a construct DuckDB cannot answer as Trino does."""

from __future__ import annotations

from panorama_kpi.errors import EngineError


class Unsupported(EngineError):
    """Raised at translation time, before anything runs, so no answer is ever wrong."""

    def __init__(self, construct: str, hint: str = "") -> None:
        message = f"{construct} is not supported by the local engine"
        super().__init__(f"{message}: {hint}" if hint else message)
        self.construct = construct
