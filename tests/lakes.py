"""Test lakes of every type behind one interface, with ways to look at their catalog
that do not go through the engine under test."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from panorama_kpi.engines.base import Engine
from panorama_kpi.lake.storage import Storage
from panorama_kpi.lakes import open_engine, open_storage
from panorama_kpi.settings import BasePartition, DatalakeSettings, Settings
from panorama_kpi.views import RawTable


@dataclass
class Lake:
    settings: Settings
    storage: Storage
    engine: Engine
    #: partition values (tuples) registered for a raw table
    partitions: Callable[[RawTable], set[tuple[str, ...]]]
    #: column names of a raw table, partition columns last
    columns: Callable[[RawTable], list[str]]
    #: rows of a SELECT with parameters; the expected rows serve lakes whose engine cannot compute them
    select: Callable[[str, Sequence[Any], list[tuple[Any, ...]]], list[tuple[Any, ...]]]
    extra: dict[str, Any] = field(default_factory=dict)


def lake_settings(kind: str, tmp_path: Path, **options: Any) -> Settings:
    datalake = DatalakeSettings(
        type=kind,
        path=str(tmp_path / "lake"),
        base_prefix="x",
        base_partitions=[BasePartition("site", "s1")],
        panorama_raw_data_bucket="panorama-test-lake" if kind == "aws" else None,
        datalake_database="panorama",
        **options,
    )
    return Settings(tmp_path / "settings.yaml", datalake, [])


def _local(settings: Settings) -> Lake:
    engine = open_engine(settings)

    def partitions(raw: RawTable) -> set[tuple[str, ...]]:
        cols = ", ".join(f'"{c}"' for c in raw.partition_columns)
        return set(engine.query(f'SELECT DISTINCT {cols} FROM "{raw.name}"')[1])

    def columns(raw: RawTable) -> list[str]:
        return engine.query(f'SELECT * FROM "{raw.name}" LIMIT 0')[0]

    def select(sql: str, params: Sequence[Any], _expected: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return list(engine.query(sql, params)[1])

    return Lake(settings, open_storage(settings), engine, partitions, columns, select)


@contextlib.contextmanager
def make_lake(kind: str, tmp_path: Path, request: pytest.FixtureRequest, **options: Any) -> Iterator[Lake]:
    settings = lake_settings(kind, tmp_path, **options)
    if kind == "local":
        lake = _local(settings)
    else:
        from tests.aws import aws_lake

        lake = aws_lake(settings, request)
    try:
        yield lake
    finally:
        lake.engine.close()
