"""The run records as a table of the lake: `<base_prefix>_runs_raw` and its typed view
`<base_prefix>_runs`, created with the other tables and views on both engines."""

from __future__ import annotations

import dataclasses

from panorama_kpi.runs.records import RECORD_TYPES, RUN_PARTITIONS, RUNS_FOLDER, RunRecord
from panorama_kpi.settings import Field, Settings, TableSettings
from panorama_kpi.views import RawTable, raw_table


def runs_table(settings: Settings) -> TableSettings:
    prefix = settings.datalake.base_prefix
    fields = [Field(c, RECORD_TYPES.get(c, "varchar")) for c in RunRecord.columns()]
    return TableSettings(
        name=RUNS_FOLDER,
        fields=[*fields, *(Field(p) for p in RUN_PARTITIONS)],
        partition_fields=list(RUN_PARTITIONS),
        datalake_table_name=f"{prefix}_runs_raw" if prefix else "runs_raw",
        datalake_table_view=f"{prefix}_runs" if prefix else "runs",
    )


def runs_raw_table(settings: Settings) -> RawTable:
    return dataclasses.replace(raw_table(settings, runs_table(settings)), file_glob="*.csv")
