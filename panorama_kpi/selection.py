"""Which datasources and tables a command acts on (`--all`, `-d`, `-t`)."""

from __future__ import annotations

from panorama_kpi.errors import SettingsError
from panorama_kpi.settings import DatasourceSettings, Settings, TableSettings
from panorama_kpi.settings_text import suggest

Selected = list[tuple[DatasourceSettings, TableSettings]]


def split_names(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def select(settings: Settings, all_: bool, datasource: str | None, tables: str | None) -> Selected:
    """panorama-elt semantics: --all, or -d DATASOURCE, or -t t1,t2 (optionally within -d)."""
    if not (all_ or datasource or tables):
        raise SettingsError("choose what to act on: --all, -d/--datasource NAME or -t/--tables t1,t2")
    sources = [settings.datasource(datasource)] if datasource else settings.datasources
    pairs = [(ds, t) for ds in sources for t in ds.tables]
    names = split_names(tables)
    if not names:
        return pairs
    known = {t.name for _, t in pairs}
    for name in names:
        if name not in known:
            where = f"datasource {datasource!r}" if datasource else "the settings"
            raise SettingsError(f"table {name!r} is not configured in {where}{suggest(name, known)}")
    return [(ds, t) for ds, t in pairs if t.name in names]
