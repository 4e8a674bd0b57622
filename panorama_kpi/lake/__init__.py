"""The lake: object layout, CSV contract and storage backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from panorama_kpi.errors import SettingsError

if TYPE_CHECKING:
    from panorama_kpi.lake.storage import Storage
    from panorama_kpi.settings import Settings


def open_storage(settings: Settings) -> Storage:
    from panorama_kpi.lake.storage import LocalStorage

    lake = settings.datalake
    if lake.type == "local":
        return LocalStorage(lake.path)
    raise SettingsError(
        f"datalake.type {lake.type!r}: S3 storage is not available in this version; "
        "use 'type: local' (commands with --dry-run still print the Athena DDL)"
    )
