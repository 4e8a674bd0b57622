"""set-tables / set-tables-fields: read table and field lists from the sources and
write them into the settings file, keeping the rest of it (comments included).

ruamel.yaml does the round trip: PyYAML drops comments, and a settings file is
mostly comments for the people who maintain it.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from panorama_kpi.errors import PanoramaError, SettingsError, SourceError
from panorama_kpi.selection import split_names
from panorama_kpi.settings import Settings
from panorama_kpi.sources import open_source

Report = Callable[[str], None]


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML()
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=2, offset=0)
    y.width = 4096
    return y


def _load_doc(path: Path) -> Any:
    return _yaml().load(path.read_text(encoding="utf-8"))


def _save_doc(path: Path, doc: Any) -> None:
    path = path.resolve()  # a symlinked settings file is rewritten where it points, the link kept
    buf = io.StringIO()
    _yaml().dump(doc, buf)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(buf.getvalue())
    if path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o777)
    os.replace(tmp, path)


def _ds_node(doc: Any, name: str) -> Any:
    for node in doc.get("datasources") or []:
        if node.get("name") == name:
            tables = node.get("tables")
            if not isinstance(tables, list):  # absent, or panorama-elt's single mapping
                from ruamel.yaml.comments import CommentedSeq

                seq = CommentedSeq()
                if tables is not None:
                    seq.append(tables)
                node["tables"] = seq
            return node
    raise SettingsError(f"no datasource named {name!r} in the settings file")


def set_tables(
    settings: Settings,
    datasource: str | None,
    tables: str | None,
    report: Report,
    include_views: bool = False,
) -> int:
    """Add the source's tables (or the named ones) to each datasource's `tables:` list.

    Views and materialized views are added only with `include_views` (or by name):
    each dump re-runs a view's query, and its rows repeat those of its base tables.
    The report names the ones left out and how to add them.
    """
    from ruamel.yaml.comments import CommentedMap

    doc = _load_doc(settings.path)
    wanted = split_names(tables)
    added = 0
    for ds in [settings.datasource(datasource)] if datasource else settings.datasources:
        with open_source(ds) as source:
            available = source.list_tables()
        missing = [t for t in wanted if t not in available]
        if missing:
            raise SourceError(f"datasource {ds.name!r}: table {missing[0]!r} not found in the source")
        node = _ds_node(doc, ds.name)
        present = {t.get("name") for t in node["tables"]}
        candidates = [name for name in wanted or available if name not in present]
        new = [n for n in candidates if wanted or include_views or available[n] == "table"]
        left_out = [n for n in candidates if n not in new]
        for name in new:
            entry = CommentedMap()
            entry["name"] = name
            node["tables"].append(entry)
        added += len(new)
        line = f"{ds.name}: {len(node['tables'])} table(s) configured, {len(new)} added"
        views_added = _by_kind(new, available, list_names=False)
        if views_added:
            line += f" (of which {views_added})"
        if left_out:
            line += f"; not added: {_by_kind(left_out, available)} (add them with --include-views)"
        report(line)
    _save_doc(settings.path, doc)
    return added


def _by_kind(names: list[str], kinds: Mapping[str, str], list_names: bool = True) -> str:
    """'2 view(s) (a, b), 1 materialized view(s) (m)' for the views among `names`."""
    parts = []
    for kind in ("view", "materialized view"):
        these = [n for n in names if kinds[n] == kind]
        if these:
            shown = ", ".join(these[:8]) + (f", +{len(these) - 8} more" if len(these) > 8 else "")
            parts.append(f"{len(these)} {kind}(s)" + (f" ({shown})" if list_names else ""))
    return ", ".join(parts)


def set_tables_fields(
    settings: Settings, selected: list[Any], report: Report, sample: int | None = None
) -> int:
    """Replace `fields:` of each selected table with what the source describes
    (`sample`: how many documents a schema-less source reads to infer it). A table
    that cannot be described (a mapping conflict, a missing collection, an unreachable
    server) is reported and the others are still written; then one SourceError names
    the failures."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    doc = _load_doc(settings.path)
    done = 0
    failed: list[str] = []
    by_ds: dict[str, list[Any]] = {}
    for ds, table in selected:
        by_ds.setdefault(ds.name, []).append((ds, table))
    for name, pairs in by_ds.items():
        ds = pairs[0][0]
        node = _ds_node(doc, name)
        with open_source(ds) as source:
            if sample:
                source.sample_size = sample
            try:  # one connection test, so an unreachable source fails its tables at once
                source.check()
            except PanoramaError as exc:
                for _ds, table in pairs:
                    failed.append(f"{ds.name}.{table.name}")
                    report(f"FAILED {ds.name}.{table.name}: {exc}")
                continue
            for _ds, table in pairs:
                try:
                    fields = source.describe(table.name)
                except PanoramaError as exc:
                    failed.append(f"{ds.name}.{table.name}")
                    report(f"FAILED {ds.name}.{table.name}: {exc}")
                    continue
                seq = CommentedSeq()
                for f in fields:
                    item = CommentedMap()
                    item["name"] = f.name
                    item["type"] = f.type
                    if f.path and f.path != f.name:
                        item["path"] = f.path
                    seq.append(item)
                for entry in node["tables"]:
                    if entry.get("name") == table.name:
                        entry["fields"] = seq
                report(f"{ds.name}.{table.name}: {len(fields)} field(s)")
                done += 1
    _save_doc(settings.path, doc)
    if failed:
        raise SourceError(
            f"{len(failed)} of {len(selected)} table(s) failed: {', '.join(failed)} (see above); "
            "the others' fields were written"
        )
    return done
