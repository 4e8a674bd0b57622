"""Athena (Glue catalog) statements for the lake's raw tables.

The DDL is what panorama-elt issues (same SerDe, properties and location), with
identifiers quoted and the header line skipped. Executing it against AWS arrives
with the AWS engine; `--dry-run` prints it without connecting anywhere.
"""

from __future__ import annotations

from panorama_kpi.views import RawTable


def hive_ident(name: str) -> str:
    """Hive DDL quotes identifiers with backticks."""
    return "`" + name.replace("`", "``") + "`"


def hive_literal(text: str) -> str:
    """Hive DDL string literal: backslash is an escape character there."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def s3_location(bucket: str, prefix: str) -> str:
    return f"s3://{bucket}/{prefix}"


def create_table_ddl(table: RawTable, bucket: str, database: str) -> str:
    columns = ",\n  ".join(f"{hive_ident(c)} string" for c in table.columns)
    parts = ""
    if table.partition_columns:
        parts = (
            "\nPARTITIONED BY (" + ", ".join(f"{hive_ident(c)} string" for c in table.partition_columns) + ")"
        )
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {hive_ident(database)}.{hive_ident(table.name)} (\n  {columns}\n)"
        f"{parts}\n"
        "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'\n"
        "WITH SERDEPROPERTIES ('separatorChar' = ',', 'quoteChar' = '\"', 'escapeChar' = '\\\\')\n"
        "STORED AS TEXTFILE\n"
        f"LOCATION {hive_literal(s3_location(bucket, table.prefix))}\n"
        "TBLPROPERTIES ('skip.header.line.count' = '1')"
    )


def drop_table_ddl(table: RawTable, database: str) -> str:
    return f"DROP TABLE IF EXISTS {hive_ident(database)}.{hive_ident(table.name)}"
