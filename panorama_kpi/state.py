"""Per-table load records, kept in the lake itself (next to the data they describe)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

from panorama_kpi.lake.layout import META_PREFIX
from panorama_kpi.lake.storage import Storage


@dataclass
class TableState:
    #: Start (UTC) of the last load that completed; the next incremental window
    #: never starts later than this, so a failed or skipped run leaves no gap.
    last_success_start: str | None = None
    last_run_start: str | None = None
    last_error: str | None = None
    rows: int = 0
    partitions: int = 0
    bytes: int = 0
    seconds: float = 0.0
    full: bool = False

    @property
    def watermark(self) -> dt.datetime | None:
        return dt.datetime.fromisoformat(self.last_success_start) if self.last_success_start else None


def _key(datasource: str, table: str) -> str:
    return f"{META_PREFIX}/state/{datasource}/{table}.json"


def load_state(storage: Storage, datasource: str, table: str) -> TableState:
    text = storage.read_text(_key(datasource, table))
    if not text:
        return TableState()
    try:
        data: dict[str, Any] = json.loads(text)
        return TableState(**{k: v for k, v in data.items() if k in TableState.__dataclass_fields__})
    except (ValueError, TypeError):
        return TableState()  # a corrupt record only costs one full window


def save_state(storage: Storage, datasource: str, table: str, state: TableState) -> None:
    storage.write(_key(datasource, table), [json.dumps(asdict(state), indent=1, sort_keys=True) + "\n"])


def delete_state(storage: Storage, datasource: str, table: str) -> None:
    """Forget a table's loads (its objects were purged): the next load is a full one."""
    storage.delete(_key(datasource, table))
