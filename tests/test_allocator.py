"""The allocator thresholds a dump process sets (panorama_kpi/allocator.py)."""

from __future__ import annotations

import platform

import pytest

from panorama_kpi import allocator


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_takes_the_thresholds() -> None:
    assert allocator.tune()
