"""Names the lake layout can hold, and tables that would share objects.

Every name becomes part of an object key, a file-name pattern or a catalog name:
`<base_prefix>/<table>/<base k>=<v>/<field k>=<v>/<table>.csv`. A `/` in a partition
field opens a folder the readers never look in (its rows vanish), an `=` or a line
break breaks Hive's `k=v` parsing, a table named like the tool's own folder would mix
with its files. Such names are refused when the settings load, naming the key.

Two datasources that load a table of the same name into one lake would overwrite
each other's objects; unless `datalake_s3_table` (the folder, as in panorama-elt) or
`datalake_table_name` tell them apart, that is refused too. Catalog names must be
unique as well (case-insensitively: Glue and DuckDB fold identifiers).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

from panorama_kpi.errors import SettingsError
from panorama_kpi.lake.layout import META_PREFIX

if TYPE_CHECKING:
    from panorama_kpi.settings import Settings

#: Folder of the KPI history under the site's base prefix (a table cannot use it).
KPI_HISTORY_FOLDER = "kpi_history"
#: Characters no name in a key may hold: path separators, Hive's `=`, control characters.
_KEY_UNSAFE = re.compile(r"[/\\=\x00-\x1f\x7f]")
#: Partition column names are also written into file-name patterns and DDL.
_COLUMN_UNSAFE = re.compile(r"[/\\=*?\[\]{}`\"'\x00-\x1f\x7f]")


def _problem(name: str, unsafe: re.Pattern[str]) -> str | None:
    if not name or name != name.strip():
        return "is empty or has leading/trailing spaces"
    if name in (".", ".."):
        return "is a relative path"
    bad = unsafe.search(name)
    if bad:
        return f"contains {bad.group(0)!r}, which the lake's object keys cannot hold"
    return None


def check(name: str, where: str, unsafe: re.Pattern[str] = _KEY_UNSAFE) -> None:
    problem = _problem(name, unsafe)
    if problem:
        raise SettingsError(f"{where}: {name!r} {problem}; rename it")


def check_base_prefix(prefix: str) -> None:
    if not prefix:
        return
    check(prefix, "datalake.base_prefix", _COLUMN_UNSAFE)
    if prefix.lower().startswith(META_PREFIX):
        raise SettingsError(
            f"datalake.base_prefix: {prefix!r} is reserved for panorama-kpi's own files; choose another prefix"
        )


def check_partition_column(name: str, where: str) -> None:
    check(name, where, _COLUMN_UNSAFE)


def check_folder(name: str, where: str) -> None:
    check(name, where)
    if name.lower().startswith(META_PREFIX):
        raise SettingsError(f"{where}: {name!r} is reserved for panorama-kpi's own files; rename the table")
    if name.lower() == KPI_HISTORY_FOLDER:
        raise SettingsError(
            f"{where}: {name!r} is the KPI history's folder; set the table's datalake_s3_table to another folder"
        )


def duplicates(names: list[str]) -> list[str]:
    counts = Counter(n.lower() for n in names)
    return sorted({n for n in names if counts[n.lower()] > 1})


def prefixed(prefix: str, kind: str, table: str) -> str:
    """A catalog name: `<prefix>_<kind>_<table>` (panorama-elt's), or `<kind>_<table>`."""
    return f"{prefix}_{kind}_{table}" if prefix else f"{kind}_{table}"


def _view_for(prefix: str, raw_name: str) -> str:
    """The typed view's name beside a datalake_table_name: `<p>_raw_x` -> `<p>_table_x`."""
    raw_prefix = prefixed(prefix, "raw", "")
    if raw_name.startswith(raw_prefix):
        return prefixed(prefix, "table", raw_name[len(raw_prefix) :])
    return f"{raw_name}_view"


def check_settings(settings: Settings) -> None:
    """Every name fits the layout, and no two tables share objects or catalog names."""
    lake = settings.datalake
    check_base_prefix(lake.base_prefix)
    for i, bp in enumerate(lake.base_partitions):
        check_partition_column(bp.name, f"datalake.base_partitions[{i}].name")
    tables = [(ds, t) for ds in settings.datasources for t in ds.tables]
    shared = {n for n, count in Counter(t.name for _ds, t in tables).items() if count > 1}
    for ds, t in tables:
        where = f"datasources[{ds.name}].tables[{t.name}]"
        if t.name in shared and t.datalake_table_name:  # the catalog name keeps them apart:
            t.datalake_s3_table = t.datalake_s3_table or t.datalake_table_name  # its own folder
            t.datalake_table_view = t.datalake_table_view or _view_for(
                lake.base_prefix, t.datalake_table_name
            )
        check_folder(t.folder, f"{where}.{'datalake_s3_table' if t.datalake_s3_table else 'name'}")
        for pf in t.partition_fields:
            check_partition_column(pf, f"{where}.partitions.partition_fields")
    by_folder: dict[str, list[str]] = {}
    for ds, t in tables:
        by_folder.setdefault(t.folder.lower(), []).append(f"datasources[{ds.name}].tables[{t.name}]")
    for owners in by_folder.values():
        if len(owners) > 1:
            raise SettingsError(
                f"{' and '.join(owners)} would write the same objects in the lake; give each a distinct "
                "datalake_table_name (or datalake_s3_table)"
            )
    catalog = [settings.raw_table_name(t) for _ds, t in tables] + [settings.view_name(t) for _ds, t in tables]
    for name in duplicates(catalog):
        raise SettingsError(
            f"catalog name {name!r} is used by two tables or views; set datalake_table_name/datalake_table_view"
        )
