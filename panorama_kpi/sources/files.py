"""panorama-elt's file sources: one CSV file (one table) and Excel workbooks (a table per sheet).

Rows are read with a header line naming the columns; filtering by partition and
time window happens in Python, since files have no query language.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from panorama_kpi.errors import SourceError
from panorama_kpi.lake.csv import encode_rows, render
from panorama_kpi.settings import Field, TableSettings
from panorama_kpi.sources.base import PartitionFilter, Source, TableKind


class _RowFileSource(Source):
    """Shared logic: a file holding tables as header + rows."""

    settings_keys = {"location": str}

    @property
    def path(self) -> Path:
        location = self.option("location")
        if not location:
            raise SourceError(f"datasource {self.name!r}: 'location' is not set; point it at the file")
        return Path(location)

    def _require_file(self) -> Path:
        path = self.path
        if not path.is_file():
            raise SourceError(f"datasource {self.name!r}: file {str(path)!r} not found; fix 'location'")
        return path

    def _read(self, table: str) -> tuple[list[str], Iterator[Sequence[Any]]]:
        raise NotImplementedError

    def describe(self, table: str) -> list[Field]:
        header, rows = self._read(table)
        close = getattr(rows, "close", None)
        if close:
            close()
        return [Field(name, "varchar") for name in header]

    def _indexes(self, table: str, header: list[str], names: Sequence[str]) -> list[int]:
        missing = [n for n in names if n not in header]
        if missing:
            raise SourceError(
                f"datasource {self.name!r}, table {table!r}: field {missing[0]!r} is not in the file's header "
                f"({', '.join(header[:8])}{'...' if len(header) > 8 else ''}); run set-tables-fields or fix the settings"
            )
        return [header.index(n) for n in names]

    def _filtered(
        self, table: TableSettings, where: PartitionFilter | None, since: dt.datetime | None
    ) -> tuple[list[str], Iterator[Sequence[Any]]]:
        header, rows = self._read(table.name)
        conds = []
        if where:
            idx = self._indexes(table.name, header, list(where))
            conds = [(i, None if v is None else render(v)) for i, v in zip(idx, where.values(), strict=True)]
        ts_index = -1
        since_text = ""
        if since is not None and table.timestamp_field:
            ts_index = self._indexes(table.name, header, [table.timestamp_field])[0]
            since_text = render(since) or ""

        def keep(row: Sequence[Any]) -> bool:
            for i, expected in conds:
                value = row[i] if i < len(row) else None
                if (None if value in (None, "") else render(value)) != expected:
                    return False
            if ts_index >= 0:
                value = row[ts_index] if ts_index < len(row) else None
                return value not in (None, "") and (render(value) or "") >= since_text
            return True

        return header, (row for row in rows if keep(row))

    def partition_values(self, table: TableSettings, since: dt.datetime | None) -> Iterator[tuple[Any, ...]]:
        header, rows = self._filtered(table, None, since)
        idx = self._indexes(table.name, header, table.partition_fields)
        seen = {tuple(None if r[i] in (None, "") else r[i] for i in idx) for r in rows}
        return iter(sorted(seen, key=lambda t: tuple((v is None, str(v)) for v in t)))

    def dump(
        self, table: TableSettings, columns: Sequence[str], where: PartitionFilter | None = None
    ) -> Iterator[str]:
        header, rows = self._filtered(table, where, None)
        idx = self._indexes(table.name, header, columns)

        def pick(row: Sequence[Any]) -> list[Any]:
            return [row[i] if i < len(row) else None for i in idx]

        return encode_rows(pick(r) for r in rows)


class CSVFileSource(_RowFileSource):
    """One CSV file with a header line; its single table is named in the settings."""

    type_name = "csv"
    settings_keys = {"location": str, "delimiter": str, "encoding": str}

    def check(self) -> str:
        path = self._require_file()
        return f"CSV file {path} ({path.stat().st_size} bytes)"

    def list_tables(self) -> dict[str, TableKind]:
        tables = [t.name for t in self.settings.tables]
        return dict.fromkeys(tables[:1] or [os.path.splitext(os.path.basename(self.path))[0]], "table")

    def _read(self, table: str) -> tuple[list[str], Iterator[Sequence[Any]]]:
        path = self._require_file()
        handle = path.open(newline="", encoding=self.option("encoding", "utf-8-sig"))
        reader = csv.reader(handle, delimiter=self.option("delimiter", ","))
        header = next(reader, [])

        def rows() -> Iterator[list[str]]:
            with handle:
                # A CSV file has no NULL: an empty cell is an empty string.
                yield from reader

        return header, rows()


class ExcelSource(_RowFileSource):
    """An .xlsx workbook: every sheet is a table, its first row names the columns."""

    type_name = "xls"

    def _workbook(self) -> Any:
        import openpyxl

        path = self._require_file()
        try:
            return openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a bad file
            raise SourceError(
                f"datasource {self.name!r}: cannot open workbook {str(path)!r}: {exc}"
            ) from None

    def check(self) -> str:
        book = self._workbook()
        try:
            return f"Excel workbook {self.path} ({len(book.sheetnames)} sheets)"
        finally:
            book.close()

    def list_tables(self) -> dict[str, TableKind]:
        book = self._workbook()
        try:
            return dict.fromkeys(book.sheetnames, "table")
        finally:
            book.close()

    def _read(self, table: str) -> tuple[list[str], Iterator[Sequence[Any]]]:
        book = self._workbook()
        if table not in book.sheetnames:
            book.close()
            raise SourceError(
                f"datasource {self.name!r}: sheet {table!r} not found in {str(self.path)!r} "
                f"(sheets: {', '.join(book.sheetnames)}); run set-tables or fix the name"
            )
        it = book[table].iter_rows(values_only=True)
        header = [("" if v is None else str(v)) for v in next(it, ())]

        def rows() -> Iterator[Sequence[Any]]:
            try:
                for row in it:
                    if any(v is not None for v in row):
                        yield row
            finally:
                book.close()

        return header, rows()
