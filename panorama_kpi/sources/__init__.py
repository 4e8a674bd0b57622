"""Registry of source types: settings `type` -> implementing class.

Classes are imported on first use so a missing optional driver only matters to
the datasources that need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from panorama_kpi.errors import SettingsError

if TYPE_CHECKING:
    from panorama_kpi.settings import DatasourceSettings
    from panorama_kpi.sources.base import Source

REGISTRY: dict[str, str] = {
    "mysql": "panorama_kpi.sources.mysql:MySQLSource",
    "postgresql": "panorama_kpi.sources.postgresql:PostgreSQLSource",
    "sqlite": "panorama_kpi.sources.sqlite:SQLiteSource",
    "csv": "panorama_kpi.sources.files:CSVFileSource",
    "xls": "panorama_kpi.sources.files:ExcelSource",
    "mongodb": "panorama_kpi.sources.mongodb:MongoDBSource",
    "elasticsearch": "panorama_kpi.sources.elasticsearch:ElasticsearchSource",
    "openedx_course_structures": "panorama_kpi.sources.course_structures:CourseStructuresSource",
}


def source_class(type_name: str) -> type[Source]:
    try:
        target = REGISTRY[type_name]
    except KeyError:
        valid = ", ".join(sorted(REGISTRY))
        raise SettingsError(f"unknown datasource type {type_name!r}; valid types: {valid}") from None
    module, _, attr = target.partition(":")
    cls: type[Source] = getattr(importlib.import_module(module), attr)
    return cls


def open_source(settings: DatasourceSettings) -> Source:
    return source_class(settings.type)(settings)
