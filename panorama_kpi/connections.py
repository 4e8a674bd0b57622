"""test-connections: each datasource and the lake, one result each."""

from __future__ import annotations

from collections.abc import Iterator

from panorama_kpi.errors import PanoramaError
from panorama_kpi.lakes import open_engine, open_storage
from panorama_kpi.settings import Settings
from panorama_kpi.sources import open_source


def check_all(settings: Settings) -> Iterator[tuple[str, bool, str]]:
    """(name, ok, message) for every datasource, the lake storage and the engine."""
    for ds in settings.datasources:
        try:
            with open_source(ds) as source:
                yield f"datasource {ds.name}", True, source.check()
        except PanoramaError as exc:
            yield f"datasource {ds.name}", False, str(exc)
    try:
        yield "lake", True, open_storage(settings).check()
    except PanoramaError as exc:
        yield "lake", False, str(exc)
    try:
        engine = open_engine(settings)
        try:
            yield "engine", True, engine.check()
        finally:
            engine.close()
    except PanoramaError as exc:
        yield "engine", False, str(exc)
