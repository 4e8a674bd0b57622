"""`init`: a minimal, commented settings file to start from.

A local lake (no cloud account needed), one datasource whose secrets are ${VAR}
references, and no tables yet: `set-tables` and `set-tables-fields` fill those in.
"""

from __future__ import annotations

import os
from pathlib import Path

from panorama_kpi.errors import SettingsError

_HEADER = """\
# panorama-kpi settings. Every key is described in settings.template.yaml and the README.
# Any string may read the environment: ${NAME} or ${NAME:-default}; keep secrets there.
#
# Next steps:
#   panorama.py set-tables                   # list the source's tables in this file
#   panorama.py set-tables-fields --all      # and their fields
#   panorama.py create-datalake-tables --all
#   panorama.py create-datalake-views --all
#   panorama.py extract-and-load --all --force
datalake:
  type: local          # a directory and an embedded DuckDB catalog; `aws` for S3 + Glue/Athena
  path: ./lake
  base_prefix: @PREFIX@      # first folder of every object and prefix of catalog names
  datalake_database: panorama
datasources:
"""

_SERVER = """\
- type: {type}
  name: {name}
  host: ${{{env}_HOST:-127.0.0.1}}
  port: {port}
  database: ${{{env}_DATABASE:-{name}}}
  username: ${{{env}_USER}}
  password: ${{{env}_PASSWORD}}   # never write the password itself here
{extra}  tables:   # set-tables fills this in
"""

#: Source type -> the datasource block `init` writes for it.
DATASOURCES: dict[str, str] = {
    "mysql": _SERVER.format(type="mysql", name="app", env="MYSQL", port=3306, extra=""),
    "postgresql": _SERVER.format(
        type="postgresql",
        name="app",
        env="PG",
        port=5432,
        extra="  schema: public\n  # sslmode: require\n",
    ),
    "sqlite": """\
- type: sqlite
  name: app
  database: ${SQLITE_DATABASE:-./app.sqlite3}   # path to the database file (opened read-only)
  tables:   # set-tables fills this in
""",
    "csv": """\
- type: csv
  name: files
  location: ./data.csv    # one file = one table; its header line names the columns
  # delimiter: ","
  # encoding: utf-8-sig
  tables:   # set-tables fills this in
""",
    "xls": """\
- type: xls
  name: workbook
  location: ./workbook.xlsx   # one table per sheet; the first row names the columns
  tables:   # set-tables fills this in
""",
}


def settings_text(source_type: str, prefix: str = "app") -> str:
    try:
        block = DATASOURCES[source_type]
    except KeyError:
        valid = ", ".join(DATASOURCES)
        raise SettingsError(f"init: no template for type {source_type!r}; choose one of {valid}") from None
    return _HEADER.replace("@PREFIX@", prefix) + block


def write_settings(path: str | os.PathLike[str], source_type: str) -> Path:
    """Create the file; an existing one is never overwritten."""
    target = Path(path)
    text = settings_text(source_type)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SettingsError(
            f"init: {str(target)!r} already exists; choose another file with --output, or remove it"
        ) from None
    except OSError as exc:
        raise SettingsError(f"init: cannot create {str(target)!r}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return target
