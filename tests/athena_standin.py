"""An Athena that computes, for end-to-end tests of commands that read query results.

moto's Athena runs no SQL: a SELECT answers what was queued. This stand-in answers
every SELECT the product starts with what DuckDB computes (or, where DuckDB fails,
a FAILED query with DuckDB's message as the reason) from what Athena itself would see: the objects under the table locations and *registered* Glue partitions
only (an object whose partition was never registered is invisible, as in Athena),
and every view statement Athena received before, replayed with its execution
parameters bound. Results are queued with Athena's column types and text renderings,
so the product's reading path (GetQueryResults, pyathena's converter) runs unchanged.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from panorama_kpi.engines.duckdb import DuckDBEngine
from panorama_kpi.errors import EngineError
from panorama_kpi.settings import Settings
from panorama_kpi.views import RawTable
from tests.aws import Recorder, bind, client, glue_tables, queue_results


def athena_text(value: Any) -> tuple[str, str | None]:
    """(Athena column type, the text GetQueryResults gives) of a DuckDB value."""
    if value is None:
        return "varchar", None
    if isinstance(value, bool):
        return "boolean", "true" if value else "false"
    if isinstance(value, int):
        return "bigint", str(value)
    if isinstance(value, float):
        return "double", repr(value)
    if isinstance(value, decimal.Decimal):
        return "decimal", str(value)
    if isinstance(value, dt.datetime):
        return "timestamp", f"{value:%Y-%m-%d %H:%M:%S.%f}"[:-3]  # Athena's milliseconds
    if isinstance(value, dt.date):
        return "date", value.isoformat()
    return "varchar", str(value)


class ComputingAthena:
    """Register with `recorder.hooks` before the product builds its clients (see `install`)."""

    def __init__(self, settings: Settings, endpoint: str, root: Path) -> None:
        lake = settings.datalake
        assert lake.panorama_raw_data_bucket
        self.bucket = lake.panorama_raw_data_bucket
        self.database = lake.datalake_database
        self.endpoint = endpoint
        self.root = root
        self.engine = DuckDBEngine(root, self.database)
        self.engine.allow_writes = True  # the replay runs the CREATE VIEWs Athena received
        self.etags: dict[str, str] = {}
        self.tables: dict[str, tuple[RawTable, frozenset[str]]] = {}
        self.pending: list[tuple[str, list[str]]] = []
        #: (statement, parameters, rows answered) of every SELECT, in order
        self.answered: list[tuple[str, list[str], list[tuple[Any, ...]]]] = []
        self.failing: str | None = None  # the reason of the query being started
        self.failed: dict[str, str] = {}  # query id -> reason

    def install(self, recorder: Recorder) -> ComputingAthena:
        recorder.hooks += [
            ("before-parameter-build.athena.StartQueryExecution", self._start),
            ("after-call.athena.StartQueryExecution", self._started),
            ("after-call.athena.GetQueryExecution", self._status),
        ]
        return self

    def close(self) -> None:
        self.engine.close()

    # ------------------------------------------------------------ what Athena sees

    def _visible(self) -> dict[str, tuple[RawTable, set[str]]]:
        """Each Glue table and the object keys Athena reads for it."""
        s3 = client("s3")
        keys = [
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
            for o in page.get("Contents", ())
        ]
        out: dict[str, tuple[RawTable, set[str]]] = {}
        for table in glue_tables(self.database):
            if table.get("TableType") != "EXTERNAL_TABLE":
                continue
            sd = table["StorageDescriptor"]
            prefix = sd["Location"].removeprefix(f"s3://{self.bucket}/")
            keys_of = table.get("PartitionKeys") or ()
            if keys_of:
                pages = client("glue").get_paginator("get_partitions")
                locations = [
                    p["StorageDescriptor"]["Location"].removeprefix(f"s3://{self.bucket}/").rstrip("/") + "/"
                    for page in pages.paginate(DatabaseName=self.database, TableName=table["Name"])
                    for p in page["Partitions"]
                ]
            else:
                locations = [prefix]
            raw = RawTable(
                name=table["Name"],
                table=prefix.rstrip("/").rpartition("/")[2],
                prefix=prefix,
                columns=tuple(c["Name"] for c in sd["Columns"]),
                partition_columns=tuple(c["Name"] for c in keys_of),
                file_glob="*",
            )
            # Athena reads every object directly under a partition's location
            out[raw.name] = (
                raw,
                {k for k in keys for loc in locations if k.startswith(loc) and "/" not in k[len(loc) :]},
            )
        return out

    def _sync(self) -> None:
        s3 = client("s3")
        visible = self._visible()
        wanted: dict[str, str] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", ()):
                if any(item["Key"] in keys for _raw, keys in visible.values()):
                    wanted[item["Key"]] = item["ETag"]
        for key in set(self.etags) - set(wanted):
            (self.root / key).unlink()
        for key, etag in wanted.items():
            if self.etags.get(key) != etag:
                path = self.root / key
                path.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(self.bucket, key, str(path))
        self.etags = wanted
        for name, (raw, keys) in visible.items():
            state = (raw, frozenset(keys))
            if self.tables.get(name) != state:
                self.engine.create_raw_table(raw)
                self.tables[name] = state

    # ------------------------------------------------------------ answering

    def _start(self, params: dict[str, Any], **_: Any) -> None:
        sql, values = params["QueryString"], list(params.get("ExecutionParameters", []))
        if sql.strip().upper() == "SELECT 1":
            return
        if not isinstance(sqlglot.parse_one(sql, read="athena"), exp.Query):
            self.pending.append((sql, values))
            return
        self._sync()
        for statement in self.pending:
            list(self.engine.query(bind(*statement))[1])
        self.pending.clear()
        try:
            columns, rows = self.engine.query(bind(sql, values))
            answer = list(rows)
        except EngineError as exc:
            self.failing = str(exc)
            return
        finally:
            self.engine.close()  # the next sync may rebuild raw tables
        types = ["varchar"] * len(columns)
        for row in answer:
            for i, value in enumerate(row):
                if value is not None and types[i] == "varchar":
                    types[i] = athena_text(value)[0]
        queue_results(self.endpoint, columns, [[athena_text(v)[1] for v in r] for r in answer], types)
        self.answered.append((sql, values, answer))

    def _started(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.failing is not None:
            self.failed[parsed["QueryExecutionId"]] = self.failing
            self.failing = None

    def _status(self, parsed: dict[str, Any], **_: Any) -> None:
        execution = parsed["QueryExecution"]
        reason = self.failed.get(execution["QueryExecutionId"])
        if reason is not None:
            execution["Status"] = {"State": "FAILED", "StateChangeReason": reason}

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """What Athena would answer now (for the test's own checks; not recorded)."""
        self._sync()
        for statement in self.pending:
            list(self.engine.query(bind(*statement))[1])
        self.pending.clear()
        try:
            return list(self.engine.query(sql, params)[1])
        finally:
            self.engine.close()
