"""Source types panorama-elt settings may name that this version cannot extract yet.

Their settings load (so a panorama-elt file works unchanged for every other
datasource, and their tables still get catalog DDL); extracting from them fails
with one line saying so.
"""

from __future__ import annotations

from typing import Any, NoReturn

from panorama_kpi.errors import SourceError
from panorama_kpi.sources.base import Source


class CourseStructuresSource(Source):
    """Open edX course structures (MongoDB modulestore + MySQL), arrives with the MongoDB source."""

    type_name = "openedx_course_structures"
    settings_keys = {
        **{f"mongodb_{k}": str for k in ("host", "username", "password", "database")},
        "mongodb_port": int,
        "host": str,
        "port": int,
        "username": str,
        "password": str,
        "database": str,
    }

    def _unsupported(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise SourceError(
            f"datasource {self.name!r}: type {self.type_name!r} is not supported by this version yet "
            "(it needs the MongoDB source); remove it or select other datasources with -d"
        )

    check = list_tables = describe = partition_values = dump = _unsupported
