"""The lake: object layout, CSV contract and storage backends."""

from __future__ import annotations

from panorama_kpi.lakes import open_storage

__all__ = ["open_storage"]
