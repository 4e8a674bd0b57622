"""Partition keys: every value, of any length, gets its own folder name that fits a file system."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from panorama_kpi.lake.layout import (
    NULL_PARTITION,
    decode_segment,
    encode_segment,
    keyed_by_digest,
    partition_text,
)

names = st.text(
    alphabet=st.characters(blacklist_characters="/\\=", blacklist_categories=("Cs", "Cc")),
    min_size=1,
    max_size=60,
)


@given(names, st.text())
def test_a_segment_fits_and_reads_back(name: str, value: str) -> None:
    segment = encode_segment(name, value)
    assert len(segment.encode("utf-8")) <= 255 and "/" not in segment
    decoded_name, decoded = decode_segment(segment)
    assert decoded_name == name
    if not keyed_by_digest(segment):
        assert decoded == value


@given(names, st.text(), st.text())
def test_distinct_values_get_distinct_segments(name: str, a: str, b: str) -> None:
    assert (encode_segment(name, a) == encode_segment(name, b)) == (a == b)


@given(st.one_of(st.none(), st.text()))
def test_null_has_its_own_text(value: str | None) -> None:
    text = partition_text(value)
    assert (text == NULL_PARTITION) == (value is None or value == NULL_PARTITION)
