"""What the document sources (Elasticsearch, MongoDB) share: reading a field by its
dotted path, checking a value against the declared type, and turning documents
into rows for `encode_rows`.

Values are rendered in Python from the decoded documents, so the lake text is the
same whatever the server version. A value that does not fit its declared type is
kept as its own text (nothing is lost) and counted, because the typed view's
TRY_CAST would show it as NULL.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from panorama_kpi.lake.csv import render
from panorama_kpi.settings import Field, TableSettings
from panorama_kpi.sources.base import Source

log = logging.getLogger(__name__)

#: Value kinds a declared type maps to, and the typed-view type of each.
VIEW_TYPES = {
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "text": "VARCHAR",
    "json": "JSON",
}

#: Typed-view element type of a declared array `T[]`, by the kind of T. Elements Trino
#: casts from JSON exactly (numbers, booleans, JSON itself) keep their type; dates and
#: text are their text, as PostgreSQL arrays are (see engines/athena_sql.athena_type).
ELEMENT_TYPES = {"int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN", "json": "JSON"}

_MISSING = object()
_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_FRACTION_RE = re.compile(r"(\.\d{6})\d+")


def lookup(doc: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path, None when absent.

    A key may itself contain dots (Elasticsearch keeps `{"user.id": 1}` as sent),
    so each prefix of the remaining path is tried; through an array of objects
    the path collects each element's value, as Elasticsearch reads it.
    """
    value = _walk(doc, path.split("."))
    return None if value is _MISSING else value


def _walk(node: Any, parts: list[str]) -> Any:
    if isinstance(node, list):
        found = [v for v in (_walk(item, parts) for item in node) if v is not _MISSING]
        return found if found else _MISSING
    if not isinstance(node, Mapping):
        return _MISSING
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in node:
            if i == len(parts):
                return node[key]
            found = _walk(node[key], parts[i:])
            if found is not _MISSING:
                return found
    return _MISSING


def array_element(declared: str) -> str | None:
    """The element type of a declared array (`keyword[]` -> `keyword`), else None."""
    text = declared.strip()
    return text[:-2].strip() if text.endswith("[]") else None


def parse_timestamp(value: Any, epoch_millis: bool) -> dt.datetime | None:
    """A date as stored (ISO text with or without offset, date only, epoch millis
    where the source allows them) -> naive UTC datetime; None if it is not one."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, bool):
        return None
    if epoch_millis and isinstance(value, (int, float)):
        try:
            return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=value)
        except (OverflowError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if epoch_millis and _INT_RE.match(text):
        return parse_timestamp(int(text), epoch_millis)
    try:
        parsed = dt.datetime.fromisoformat(_FRACTION_RE.sub(r"\1", text.replace("z", "Z")))
    except ValueError:
        return None
    return parse_timestamp(parsed, epoch_millis)


def coerce(kind: str, value: Any, epoch_millis: bool = False) -> tuple[Any, bool]:
    """(value to render, whether it fits `kind`). A value that does not fit is
    returned unchanged: it is written as its own text."""
    if value is None:
        return None, True
    if kind in ("text", "json"):
        return value, kind == "text" or isinstance(value, (dict, list))
    if isinstance(value, (dict, list)):
        return value, False
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value, True
        return value, isinstance(value, str) and bool(_INT_RE.match(value.strip()))
    if kind == "float":
        if isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
            return value, True
        return value, isinstance(value, str) and bool(_FLOAT_RE.match(value.strip()))
    if kind == "bool":
        if isinstance(value, bool):
            return value, True
        return value, value in ("true", "false")
    if kind == "timestamp":
        parsed = parse_timestamp(value, epoch_millis)
        return (value, False) if parsed is None else (parsed, True)
    return value, True


def coerce_array(
    element: str, value: Any, epoch_millis: bool = False, scalar_is_array: bool = False
) -> tuple[Any, bool]:
    """A field declared `T[]`: (the array with each element as its kind renders it,
    whether every element fits). A single value is an array of one where the source
    says so; a value that does not fit is returned unchanged, as `coerce` does."""
    if value is None:
        return None, True
    items = value if isinstance(value, list) else [value] if scalar_is_array else None
    if items is None:
        return value, False
    out = []
    for item in items:
        fitted, ok = coerce(element, item, epoch_millis)
        if not ok:
            return value, False
        out.append(fitted)
    return out, True


class DocumentSource(Source):
    """A source whose tables hold documents: fields are paths, and each declared
    type (in the source's own vocabulary) is a value kind."""

    @staticmethod
    def kind_of(declared: str) -> str:
        """Value kind (a key of VIEW_TYPES) of a declared type."""
        return "text"

    #: Whether a single value in a field declared `T[]` is an array of one (Elasticsearch:
    #: every field holds zero or more values); otherwise it does not fit the type.
    scalar_is_array: bool = False

    @classmethod
    def view_type(cls, declared: str) -> str | None:
        """JSON for sub-documents and untyped arrays, ARRAY(...) for a declared `T[]`;
        both decoded by `json_parse` of the lake's compact JSON in the typed view."""
        element = array_element(declared)
        if element is not None:
            return f"ARRAY({ELEMENT_TYPES.get(cls.kind_of(element), 'VARCHAR')})"
        return VIEW_TYPES[cls.kind_of(declared)]

    @staticmethod
    def paths(table: TableSettings) -> dict[str, str]:
        """Field name -> path into the document."""
        return {f.name: f.path or f.name for f in table.fields}

    @staticmethod
    def fields_named(table: TableSettings, names: Sequence[str]) -> list[Field]:
        by_name = {f.name: f for f in table.fields}
        return [by_name[n] for n in names]

    def partition_spec(self, table: TableSettings) -> list[tuple[Field, str | None]]:
        """(field read, granularity) per partition field: a partition derived from a
        timestamp reads that timestamp's field and buckets it (day or month)."""
        derived = getattr(table, "derived", {})
        out: list[tuple[Field, str | None]] = []
        for name in table.partition_fields:
            bucket = derived.get(name)
            out.append(
                (
                    self.fields_named(table, [bucket.source if bucket else name])[0],
                    bucket and bucket.granularity,
                )
            )
        return out

    def partition_combo(
        self, doc: Mapping[str, Any], spec: list[tuple[Field, str | None]], epoch_millis: bool = False
    ) -> tuple[Any, ...]:
        """A document's partition values: typed as declared, derived ones bucketed."""
        combo = []
        for f, granularity in spec:
            value = lookup(doc, f.path or f.name)
            if self.normalize_value is not None:
                value = self.normalize_value(value)
            value = coerce(self.kind_of(f.type), value, epoch_millis)[0]
            if granularity:
                stamp = parse_timestamp(value, epoch_millis)
                # its ISO text: the key's text either way, and a value the split scan matches
                value = None if stamp is None else bucket_start(stamp, granularity).isoformat()
            combo.append(render(value) if isinstance(value, (dict, list)) else value)
        return tuple(combo)

    #: Driver types -> plain values (MongoDB's BSON types); None when values are plain.
    normalize_value: Callable[[Any], Any] | None = None


class DocumentRows:
    """Documents -> rows of the given fields, counting values that do not fit their type."""

    def __init__(
        self,
        fields: Sequence[Field],
        kind_of: Callable[[str], str],
        epoch_millis: bool = False,
        normalize: Callable[[Any], Any] | None = None,
        scalar_is_array: bool = False,
    ) -> None:
        self.fields = list(fields)
        self.paths = [f.path or f.name for f in self.fields]
        self.kinds = [kind_of(f.type) for f in self.fields]
        #: Element kind of each field declared as an array (`T[]`), else None.
        self.elements = [None if (e := array_element(f.type)) is None else kind_of(e) for f in self.fields]
        self.scalar_is_array = scalar_is_array
        self.epoch_millis = epoch_millis
        self.normalize = normalize
        self.mismatches: Counter[str] = Counter()

    def rows(self, docs: Iterable[Mapping[str, Any]]) -> Iterator[list[Any]]:
        spec = list(zip(self.fields, self.paths, self.kinds, self.elements, strict=True))
        normalize, millis, wrap = self.normalize, self.epoch_millis, self.scalar_is_array
        for doc in docs:
            row: list[Any] = []
            append = row.append
            for f, path, kind, element in spec:
                # fast path: a top-level key (the common case) needs no path walk
                value = doc.get(path) if path in doc or "." not in path else lookup(doc, path)
                if normalize is not None:
                    value = normalize(value)
                if element is not None:
                    value, ok = coerce_array(element, value, millis, wrap)
                elif kind == "text" and not isinstance(value, (dict, list)):
                    append(value)
                    continue
                else:
                    value, ok = coerce(kind, value, millis)
                if not ok:
                    self.mismatches[f.name] += 1
                append(value)
            yield row

    def report(self, where: str) -> str | None:
        """One warning line naming the fields whose values were kept as text (None if none);
        the caller keeps it in the run record."""
        if not self.mismatches:
            return None
        detail = ", ".join(f"{name}: {n}" for name, n in self.mismatches.most_common())
        line = (
            f"{where}: {sum(self.mismatches.values())} value(s) not of their declared type were kept as "
            f"text ({detail}); the typed view shows them as NULL - fix the field types or the documents"
        )
        log.warning("%s", line)
        return line


def bucket_start(stamp: dt.datetime, granularity: str) -> dt.date:
    """The date (day) or first day of the month (month) of a timestamp."""
    return dt.date(stamp.year, stamp.month, 1 if granularity == "month" else stamp.day)


def bucket_end(day: dt.date, granularity: str) -> dt.datetime:
    """First timestamp after the bucket starting on `day`."""
    if granularity == "month":
        return dt.datetime(day.year + day.month // 12, day.month % 12 + 1, 1)
    return dt.datetime(day.year, day.month, day.day) + dt.timedelta(days=1)


def sort_combos(combos: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(combos, key=lambda t: tuple((v is None, str(v)) for v in t))


def field_name(path: str, taken: set[str]) -> str:
    """Lake column for a dotted path: what Athena accepts in a column name (letters,
    digits, underscores), so dots and other characters become underscores; a
    collision gets a number."""
    base = re.sub(r"[^0-9A-Za-z_]", "_", path)
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def ancestors_removed(paths: Iterable[str]) -> list[str]:
    """Paths without those inside another listed path (a projection cannot hold both)."""
    unique = sorted(set(paths))
    return [p for p in unique if not any(p.startswith(q + ".") for q in unique if q != p)]
