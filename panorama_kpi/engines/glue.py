"""Raw tables and partitions in the Glue Data Catalog, through the Glue API.

The API, not Athena DDL: one BatchCreatePartition registers up to 100 partitions
(AWS's limit), where `ALTER TABLE ADD PARTITION` costs a query each. Tables are
created or updated in place; when the column list changes, the partitions'
own storage descriptors follow (BatchUpdatePartition), or Athena fails with
HIVE_PARTITION_SCHEMA_MISMATCH.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from panorama_kpi.aws import Aws, aws_call, error_code
from panorama_kpi.engines.athena_sql import SERDE, SERDE_PARAMETERS, TABLE_PARAMETERS
from panorama_kpi.errors import EngineError
from panorama_kpi.lake.layout import encode_segment
from panorama_kpi.views import RawTable

#: AWS limits per call.
CREATE_BATCH = 100  # BatchCreatePartition
UPDATE_BATCH = 100  # BatchUpdatePartition
DELETE_BATCH = 25  # BatchDeletePartition
PAGE_SIZE = 1000  # GetPartitions MaxResults

INPUT_FORMAT = "org.apache.hadoop.mapred.TextInputFormat"
OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class GlueCatalog:
    """Names sent to Glue are lowercased: Glue stores them so, and Athena resolves them so."""

    def __init__(self, aws: Aws, database: str, location: Callable[[str], str]) -> None:
        self.aws = aws
        self.database = database.lower()  # Glue keeps names lowercase
        self.location = location  # object key prefix -> s3:// URI

    @property
    def glue(self) -> Any:
        return self.aws.client("glue")

    def arn(self, table: str | None = None) -> str:
        base = f"arn:aws:glue:{self.aws.region}:<account>"
        return (
            f"{base}:database/{self.database}" if table is None else f"{base}:table/{self.database}/{table}"
        )

    def _call(self, what: str, table: str | None = None) -> contextlib.AbstractContextManager[None]:
        return aws_call("glue", what, self.arn(table), EngineError)

    # ------------------------------------------------------------ definitions

    def storage_descriptor(self, table: RawTable, prefix: str) -> dict[str, Any]:
        return {
            "Columns": _columns(table.columns),
            "Location": self.location(prefix),
            "InputFormat": INPUT_FORMAT,
            "OutputFormat": OUTPUT_FORMAT,
            "Compressed": table.compression != "none",
            "SerdeInfo": {"SerializationLibrary": SERDE, "Parameters": dict(SERDE_PARAMETERS)},
        }

    def table_input(self, table: RawTable) -> dict[str, Any]:
        return {
            "Name": table.name.lower(),
            "TableType": "EXTERNAL_TABLE",
            "Parameters": dict(TABLE_PARAMETERS),
            "PartitionKeys": _columns(table.partition_columns),
            "StorageDescriptor": self.storage_descriptor(table, table.prefix),
        }

    def partition_input(self, table: RawTable, values: Sequence[str]) -> dict[str, Any]:
        prefix = table.prefix + "".join(
            encode_segment(k, v) + "/" for k, v in zip(table.partition_columns, values, strict=True)
        )
        return {"Values": list(values), "StorageDescriptor": self.storage_descriptor(table, prefix)}

    # ------------------------------------------------------------ tables

    def check_database(self) -> None:
        from botocore.exceptions import ClientError

        with self._call(f"cannot read Glue database {self.database!r}"):
            try:
                self.glue.get_database(Name=self.database)
            except ClientError as exc:
                if error_code(exc) != "EntityNotFoundException":
                    raise
                raise EngineError(
                    f"Glue database {self.database!r} does not exist in {self.aws.region}: create it "
                    f"(aws glue create-database --database-input Name={self.database}) or fix "
                    "datalake.datalake_database / aws_region"
                ) from None

    def get_table(self, name: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        with self._call(f"cannot read Glue table {self.database}.{name}", name):
            try:
                return dict(self.glue.get_table(DatabaseName=self.database, Name=name.lower())["Table"])
            except ClientError as exc:
                if error_code(exc) != "EntityNotFoundException":
                    raise
                return None

    def create_or_update(self, table: RawTable) -> str:
        """Create the table, or bring an existing one to this definition; says which it did."""
        wanted = self.table_input(table)
        current = self.get_table(table.name)
        what = f"cannot register Glue table {self.database}.{table.name}"
        if current is None:
            self.check_database()  # a missing database reads as a missing table: say which
            with self._call(what, table.name):
                self.glue.create_table(DatabaseName=self.database, TableInput=wanted)
            return "created"
        if current.get("TableType") == "VIRTUAL_VIEW":
            raise EngineError(
                f"{self.database}.{table.name} is a view in Glue, not a table: drop it or rename the table"
            )
        if _keys(current.get("PartitionKeys")) != _keys(wanted["PartitionKeys"]):
            # Other partition keys mean another layout: the old partitions' values cannot be kept.
            self.delete_table(table.name)
            with self._call(what, table.name):
                self.glue.create_table(DatabaseName=self.database, TableInput=wanted)
            return "recreated (partition columns changed: reload it with extract-and-load --force)"
        if _same(current, wanted):
            return "unchanged"
        with self._call(what, table.name):
            self.glue.update_table(DatabaseName=self.database, TableInput=wanted)
        updated = self._update_partitions(table)
        return f"updated in place ({updated} partition(s) given the new columns)"

    def _update_partitions(self, table: RawTable) -> int:
        """Give every partition whose columns differ the table's storage descriptor (its own location)."""
        columns = _columns(table.columns)
        entries = []
        for partition in self.partitions(table.name):
            sd = partition.get("StorageDescriptor", {})
            if sd.get("Columns") != columns or sd.get("SerdeInfo", {}).get("Parameters") != SERDE_PARAMETERS:
                values = partition["Values"]
                entries.append(
                    {"PartitionValueList": values, "PartitionInput": self.partition_input(table, values)}
                )
        for batch in _chunks(entries, UPDATE_BATCH):
            with self._call(f"cannot update partitions of {self.database}.{table.name}", table.name):
                answer = self.glue.batch_update_partition(
                    DatabaseName=self.database, TableName=table.name.lower(), Entries=list(batch)
                )
            _check_errors(answer, f"updating partitions of {self.database}.{table.name}", ())
        return len(entries)

    def delete_table(self, name: str) -> bool:
        """Delete a table or view; False if it was not there."""
        from botocore.exceptions import ClientError

        with self._call(f"cannot delete Glue table {self.database}.{name}", name):
            try:
                self.glue.delete_table(DatabaseName=self.database, Name=name.lower())
            except ClientError as exc:
                if error_code(exc) == "EntityNotFoundException":
                    return False
                raise
        return True

    # ------------------------------------------------------------ partitions

    def partitions(self, table: str) -> Iterator[dict[str, Any]]:
        with self._call(f"cannot list partitions of {self.database}.{table}", table):
            pages = self.glue.get_paginator("get_partitions").paginate(
                DatabaseName=self.database, TableName=table.lower(), PaginationConfig={"PageSize": PAGE_SIZE}
            )
            for page in pages:
                yield from page.get("Partitions", ())

    def create_partitions(self, table: RawTable, values: Sequence[Sequence[str]]) -> None:
        """BatchCreatePartition, 100 at a time; partitions that already exist are skipped."""
        self._batches(
            table,
            values,
            "register",
            lambda batch: self.glue.batch_create_partition(
                DatabaseName=self.database,
                TableName=table.name.lower(),
                PartitionInputList=[self.partition_input(table, v) for v in batch],
            ),
            CREATE_BATCH,
            "AlreadyExistsException",
            create_missing=True,
        )

    def delete_partitions(self, table: RawTable, values: Sequence[Sequence[str]]) -> None:
        """BatchDeletePartition, 25 at a time; partitions already gone are ignored."""
        self._batches(
            table,
            values,
            "remove",
            lambda batch: self.glue.batch_delete_partition(
                DatabaseName=self.database,
                TableName=table.name.lower(),
                PartitionsToDelete=[{"Values": list(v)} for v in batch],
            ),
            DELETE_BATCH,
            "EntityNotFoundException",
        )

    def _batches(
        self,
        table: RawTable,
        values: Sequence[Sequence[str]],
        verb: str,
        call: Callable[[Sequence[list[str]]], dict[str, Any]],
        size: int,
        harmless: str,
        create_missing: bool = False,
    ) -> None:
        """One call per `size` distinct partitions; per-partition errors other than `harmless` fail.

        With `create_missing` a table missing from Glue is created first (as the local
        engine does, so loading does not depend on create-datalake-tables having run);
        otherwise a missing table has no partitions to act on.
        """
        from botocore.exceptions import ClientError

        what = f"cannot {verb} partitions of {self.database}.{table.name}"
        for batch in _chunks(_unique(values), size):
            with self._call(what, table.name):
                try:
                    answer = call(batch)
                except ClientError as exc:
                    if error_code(exc) != "EntityNotFoundException":
                        raise
                    if not create_missing:
                        return  # no table: no partitions to remove
                    if self.get_table(table.name) is not None:
                        raise  # the table is there: something else is missing
                    self.create_or_update(table)  # (says so if the database is what is missing)
                    answer = call(batch)
            _check_errors(answer, what, (harmless,))


def _columns(names: Sequence[str]) -> list[dict[str, str]]:
    """Glue column list: every column a string, names lowercase as Glue and Athena keep them."""
    return [{"Name": name.lower(), "Type": "string"} for name in names]


def _keys(columns: Any) -> list[str]:
    return [c["Name"] for c in columns or ()]


def _same(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    sd, want = current.get("StorageDescriptor", {}), wanted["StorageDescriptor"]
    params = current.get("Parameters", {})
    return (
        [(c["Name"], c.get("Type")) for c in sd.get("Columns", ())]
        == [(c["Name"], c["Type"]) for c in want["Columns"]]
        and sd.get("Location") == want["Location"]
        and sd.get("SerdeInfo", {}).get("SerializationLibrary") == SERDE
        and sd.get("SerdeInfo", {}).get("Parameters") == SERDE_PARAMETERS
        and bool(sd.get("Compressed")) == want["Compressed"]
        and all(params.get(k) == v for k, v in TABLE_PARAMETERS.items())
    )


def _unique(values: Sequence[Sequence[str]]) -> list[list[str]]:
    return [list(v) for v in dict.fromkeys(tuple(v) for v in values)]


def _check_errors(answer: dict[str, Any], what: str, ignore: tuple[str, ...]) -> None:
    """Batch calls answer 200 and list per-partition failures: those must not pass silently."""
    errors = [
        e for e in answer.get("Errors") or () if e.get("ErrorDetail", {}).get("ErrorCode") not in ignore
    ]
    if errors:
        detail = errors[0].get("ErrorDetail", {})
        values = errors[0].get("PartitionValues") or errors[0].get("PartitionValueList")
        raise EngineError(
            f"{what}: {len(errors)} failed, first {values}: {detail.get('ErrorCode')}: {detail.get('ErrorMessage')}"
        )
