"""Property tests of the document sources' parsers: dotted-path lookup, stored
dates to UTC, and the declared-type check (arrays `T[]` included)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from panorama_kpi.lake.csv import render
from panorama_kpi.sources.documents import (
    ancestors_removed,
    array_element,
    coerce,
    coerce_array,
    field_name,
    lookup,
    parse_timestamp,
)

KEY = st.text(st.characters(blacklist_characters=".", blacklist_categories=("Cs",)), min_size=1, max_size=5)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5))
NAIVE = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1))
OFFSET = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)


@given(st.lists(KEY, min_size=1, max_size=4), SCALAR)
def test_lookup_finds_nested_and_flat_dotted_keys(parts: list[str], value: Any) -> None:
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    path = ".".join(parts)
    assert lookup(nested, path) == value
    assert lookup({path: value}, path) == value  # a key holding dots, as Elasticsearch keeps it
    assert lookup(nested, path + ".missing") is None
    assert lookup({}, path) is None


@given(st.lists(KEY, min_size=2, max_size=3), st.lists(SCALAR.filter(lambda v: v is not None), max_size=4))
def test_lookup_through_arrays_collects_each_value(parts: list[str], values: list[Any]) -> None:
    head, *rest = parts
    items = []
    for v in values:
        node: Any = v
        for part in reversed(rest):
            node = {part: node}
        items.append(node)
    found = lookup({head: items}, ".".join(parts))
    assert found == (values or None)


@given(NAIVE, OFFSET, st.sampled_from(["T", " "]))
def test_iso_text_with_offset_becomes_utc(moment: dt.datetime, tz: dt.timezone, sep: str) -> None:
    aware = moment.replace(tzinfo=tz)
    text = aware.isoformat(sep)
    expected = aware.astimezone(dt.UTC).replace(tzinfo=None)
    assert parse_timestamp(text, epoch_millis=False) == expected
    assert coerce("timestamp", text) == (expected, True)
    naive_text = moment.isoformat(sep)
    assert parse_timestamp(naive_text, epoch_millis=False) == moment
    if aware.utcoffset() == dt.timedelta(0):
        assert parse_timestamp(moment.isoformat(sep) + "Z", epoch_millis=False) == moment


@given(st.integers(min_value=-(10**13), max_value=10**13))
def test_epoch_millis_number_and_digits(millis: int) -> None:
    expected = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=millis)
    assert parse_timestamp(millis, epoch_millis=True) == expected
    assert parse_timestamp(str(millis), epoch_millis=True) == expected
    assert coerce("timestamp", millis) == (millis, False)  # numbers are dates only where the source says so


@given(NAIVE, st.integers(min_value=0, max_value=999))
def test_nanosecond_fractions_are_cut_to_microseconds(moment: dt.datetime, nanos: int) -> None:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{nanos:03d}Z"
    assert parse_timestamp(text, epoch_millis=True) == moment
    assert render(parse_timestamp(text, epoch_millis=True)) == moment.isoformat(" ", "microseconds")


@given(SCALAR | st.lists(SCALAR, max_size=2) | st.dictionaries(KEY, SCALAR, max_size=2))
def test_coerce_never_changes_a_value_it_rejects(value: Any) -> None:
    for kind in ("int", "float", "bool", "timestamp", "text", "json"):
        out, ok = coerce(kind, value, epoch_millis=True)
        if not ok:
            assert out is value
        if value is None:
            assert (out, ok) == (None, True)


def test_declared_type_checks() -> None:
    assert coerce("int", 2**63 - 1) == (2**63 - 1, True)
    assert coerce("int", " -12 ") == (" -12 ", True)
    assert coerce("int", 1.5) == (1.5, False)
    assert coerce("int", True) == (True, False)
    assert coerce("float", "1e-3") == ("1e-3", True)
    assert coerce("float", "abc") == ("abc", False)
    assert coerce("bool", "true") == ("true", True)
    assert coerce("bool", 1) == (1, False)
    assert coerce("json", {"a": 1}) == ({"a": 1}, True)
    assert coerce("json", "text") == ("text", False)
    assert coerce("int", [1, 2]) == ([1, 2], False)
    assert coerce("timestamp", "not a date") == ("not a date", False)


def test_field_names_and_projection_paths() -> None:
    taken: set[str] = set()
    names = [field_name(p, taken) for p in ("user.id", "user_id", "user_id", "a", "é t$x")]
    assert names == ["user_id", "user_id_2", "user_id_3", "a", "__t_x"]
    assert ancestors_removed(["a", "a.b", "ab", "c.d", "c.d.e", "_id"]) == ["_id", "a", "ab", "c.d"]


@given(st.lists(SCALAR, max_size=4) | SCALAR | st.dictionaries(KEY, SCALAR, max_size=2), st.booleans())
def test_coerce_array_keeps_what_it_rejects_and_fits_every_element(value: Any, wrap: bool) -> None:
    for element in ("int", "float", "bool", "timestamp", "text", "json"):
        out, ok = coerce_array(element, value, epoch_millis=True, scalar_is_array=wrap)
        if value is None:
            assert (out, ok) == (None, True)
        elif not ok:
            assert out is value
        else:
            items = value if isinstance(value, list) else [value]
            assert isinstance(out, list) and len(out) == len(items)
            assert all(
                coerce(element, v, epoch_millis=True) == (o, True) for v, o in zip(items, out, strict=True)
            )


def test_declared_arrays() -> None:
    assert array_element("keyword[]") == "keyword" and array_element(" long [] ") == "long"
    assert array_element("array") is None and array_element("object") is None
    stamps = ["2024-03-01T10:00:00+02:00", 1709287200123]
    out, ok = coerce_array("timestamp", stamps, epoch_millis=True)
    assert ok and render(out) == '["2024-03-01 08:00:00.000000","2024-03-01 10:00:00.123000"]'
    assert coerce_array("int", [1, "x"]) == ([1, "x"], False)  # kept whole, as its own JSON
    assert coerce_array("int", 5) == (5, False)  # MongoDB: a scalar is not an array
    assert coerce_array("int", 5, scalar_is_array=True) == ([5], True)  # Elasticsearch: an array of one
    assert coerce_array("int", []) == ([], True)
