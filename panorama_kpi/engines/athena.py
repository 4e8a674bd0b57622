"""The AWS engine: raw tables and partitions in the Glue catalog, views and queries on Athena.

Views are the Athena-dialect text the DuckDB engine runs locally, executed in the
configured workgroup. Queries are polled with exponential backoff up to
`athena_query_timeout` (then stopped); a failed query reports its id, state and
Athena's own message. Throttling is retried by botocore's adaptive mode.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from panorama_kpi.aws import Aws, aws_call
from panorama_kpi.engines.athena_sql import create_table_ddl, param_literal
from panorama_kpi.engines.base import Echo, Engine, Partition, check_partitions
from panorama_kpi.engines.glue import GlueCatalog
from panorama_kpi.errors import EngineError
from panorama_kpi.views import RawTable

if TYPE_CHECKING:
    from panorama_kpi.settings import DatalakeSettings

Rows = Iterator[tuple[Any, ...]]


class AthenaEngine(Engine):
    #: Polling: first wait, growth factor and longest wait between GetQueryExecution calls.
    poll_first, poll_factor, poll_max = 0.2, 1.6, 5.0

    def __init__(self, lake: DatalakeSettings, echo: Echo | None = None, aws: Aws | None = None) -> None:
        super().__init__(echo)
        self.lake = lake
        self.database = lake.datalake_database
        self.workgroup = lake.datalake_workgroup or "primary"
        self.aws = aws or Aws(lake)
        self.glue = GlueCatalog(self.aws, self.database, self.location)

    def location(self, prefix: str) -> str:
        return f"s3://{self.lake.panorama_raw_data_bucket}/{prefix}"

    @property
    def athena(self) -> Any:
        return self.aws.client("athena")

    def _workgroup_arn(self) -> str:
        return f"arn:aws:athena:{self.aws.region}:<account>:workgroup/{self.workgroup}"

    def _call(self, what: str) -> contextlib.AbstractContextManager[None]:
        return aws_call("athena", what, self._workgroup_arn(), EngineError)

    # ------------------------------------------------------------ catalog

    def check(self) -> str:
        self.glue.check_database()
        query_id, _ = self._execute("SELECT 1")
        return (
            f"Glue database {self.database!r} in {self.aws.region}; "
            f"Athena workgroup {self.workgroup!r} ran query {query_id}"
        )

    def create_raw_table(self, table: RawTable) -> str:
        if self.echo is not None:
            self.echo(
                f"-- glue:CreateTable {self.database}.{table.name} (if it exists: glue:UpdateTable, and "
                "glue:BatchUpdatePartition for partitions whose columns differ); the equivalent DDL:\n"
                + create_table_ddl(table, self.location(table.prefix), self.database)
            )
            return "would create or update"
        return self.glue.create_or_update(table)

    def add_partitions(self, table: RawTable, partitions: Sequence[Partition]) -> None:
        self._partitions(table, partitions, "glue:BatchCreatePartition", self.glue.create_partitions)

    def remove_partitions(self, table: RawTable, partitions: Sequence[Partition]) -> None:
        self._partitions(table, partitions, "glue:BatchDeletePartition", self.glue.delete_partitions)

    def _partitions(
        self,
        table: RawTable,
        partitions: Sequence[Partition],
        call: str,
        apply: Callable[[RawTable, Sequence[Sequence[str]]], None],
    ) -> None:
        values = check_partitions(table, partitions)
        if not values or not table.partition_columns:
            return  # a table without partition keys has no partitions in Glue
        if self.echo is not None:
            self.echo(f"-- {call} {self.database}.{table.name}: {len(values)} partition(s)")
            return
        apply(table, values)

    def drop_raw_table(self, table: RawTable) -> None:
        self.drop_view(table.name)

    def create_view(self, name: str, create_view_sql: str) -> None:
        if self.echo is not None:
            self.echo(create_view_sql)
            return
        self._execute(create_view_sql)

    def drop_view(self, name: str) -> None:
        """Views are Glue tables too: one DeleteTable, no query."""
        if self.echo is not None:
            self.echo(f"-- glue:DeleteTable {self.database}.{name}")
            return
        self.glue.delete_table(name)

    # ------------------------------------------------------------ queries

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], Rows]:
        if self.echo is not None:
            self.echo(sql)
            return [], iter(())
        query_id, execution = self._execute(sql, params)
        return self._results(query_id, execution)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[str, dict[str, Any]]:
        """Start a statement and wait for it; (query id, final QueryExecution)."""
        request: dict[str, Any] = {
            "QueryString": sql,
            "QueryExecutionContext": {"Database": self.database},
            "WorkGroup": self.workgroup,
        }
        if params:
            request["ExecutionParameters"] = [param_literal(p) for p in params]
        if self.lake.athena_output_location:
            request["ResultConfiguration"] = {"OutputLocation": self.lake.athena_output_location}
        with self._call(f"cannot start an Athena query in workgroup {self.workgroup!r}"):
            query_id = str(self.athena.start_query_execution(**request)["QueryExecutionId"])
        return query_id, self._wait(query_id)

    def _wait(self, query_id: str) -> dict[str, Any]:
        timeout = self.lake.athena_query_timeout
        deadline = time.monotonic() + timeout
        delay = self.poll_first
        while True:
            with self._call(f"cannot follow Athena query {query_id}"):
                execution = dict(self.athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"])
            status = execution.get("Status", {})
            state = status.get("State", "")
            if state == "SUCCEEDED":
                return execution
            if state in ("FAILED", "CANCELLED"):
                reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get("ErrorMessage")
                raise EngineError(f"Athena query {query_id} {state}: {reason or 'no reason given'}")
            if time.monotonic() + delay > deadline:
                with contextlib.suppress(Exception):
                    self.athena.stop_query_execution(QueryExecutionId=query_id)
                raise EngineError(
                    f"Athena query {query_id} still {state} after {timeout}s; stopped it "
                    "(raise datalake.athena_query_timeout for longer queries)"
                )
            time.sleep(delay)
            delay = min(delay * self.poll_factor, self.poll_max)

    def _results(self, query_id: str, execution: dict[str, Any]) -> tuple[list[str], Rows]:
        """Column names now, rows streamed page by page (GetQueryResults, typed by pyathena's converter)."""
        from pyathena.converter import DefaultTypeConverter

        converter = DefaultTypeConverter()
        with self._call(f"cannot read the results of Athena query {query_id}"):
            pages = iter(self.athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id))
            first: dict[str, Any] = next(pages, {})
        info = first.get("ResultSet", {}).get("ResultSetMetadata", {}).get("ColumnInfo", [])
        names = [c["Name"] for c in info]
        types = [c.get("Type", "varchar") for c in info]
        select = execution.get("StatementType") == "DML"

        def rows() -> Rows:
            page: dict[str, Any] | None = first
            skip_header = select
            while page is not None:
                data = page.get("ResultSet", {}).get("Rows", [])
                if skip_header and data and [d.get("VarCharValue") for d in data[0].get("Data", [])] == names:
                    data = data[1:]
                skip_header = False
                for row in data:
                    values = [d.get("VarCharValue") for d in row.get("Data", [])]
                    yield tuple(converter.convert(t, v) for t, v in zip(types, values, strict=False))
                with self._call(f"cannot read the results of Athena query {query_id}"):
                    page = next(pages, None)

        return names, rows()
