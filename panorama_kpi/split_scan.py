"""Reading a partitioned table: one query per partition, or one ordered scan split on the fly.

One query per partition (`WHERE field = ?`) is right for an incremental run (a few
partitions, found through an index). For a full load it costs one round trip and one
plan per partition, and when no index leads with the partition fields every one of
those queries scans the whole table. The other plan reads the table once, ordered by
the partition fields' exact values (the order `partition_values` lists them in), with
those values as leading fields of each line; the lines are cut into one group per
partition as they arrive and each group streams into its object, so one object is
open at a time and memory does not depend on the table.

The choice is made per table from the source's own statistics (`Source.scan_stats`):
row estimate, whether an index leads with the partition fields, and the number of
partitions (see `choose`), and logged at debug level.

Each group's first fields are the partition values as the server rendered them. When
every partition's values are strings (or NULL) a group is matched to the partition
that renders the same, whatever order the server sorted them in; otherwise to the
next partition in `partition_values`' order. A group that matches no partition, or
one matched twice, or a partition no group matched, fails the table.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from panorama_kpi.errors import SourceError
from panorama_kpi.lake.csv import encode_field
from panorama_kpi.settings import TableSettings
from panorama_kpi.sources.base import ScanStats, Source

log = logging.getLogger(__name__)

#: Through an index that costs a lookup per row, a full load with at least this many
#: partitions reads them in one sorted scan: measured on MariaDB with 200 partitions of
#: 5,000 rows, the sort costs less than the lookups and per-query costs.
MANY_PARTITIONS = 16
#: Partitions smaller than this (estimated rows) are read in one scan whatever the index:
#: per-query costs (round trips, plans, one object each) outweigh the rows.
SMALL_PARTITION = 2000


@dataclass(frozen=True)
class Choice:
    split: bool
    reason: str


def choose(stats: ScanStats | None, partitions: int, full: bool) -> Choice:
    """Which plan reads a table's partitions, and why (for the debug log)."""
    if not full:
        return Choice(False, "incremental run: only the changed partitions, one query each")
    if stats is None:
        return Choice(False, "the source has no statistics to plan a scan with")
    if partitions < 2:
        return Choice(False, f"{partitions} partition(s)")
    if not stats.indexed:
        return Choice(True, f"{partitions} partitions and no index on the partition fields")
    each = stats.rows // partitions
    if each < SMALL_PARTITION:
        return Choice(True, f"{partitions} partitions of about {each:,} rows each")
    if stats.lookup_per_row and partitions >= MANY_PARTITIONS:
        return Choice(True, f"{partitions} partitions, each row a lookup through the index")
    return Choice(False, f"{partitions} partitions of about {each:,} rows through the index")


def scan_in_one(source: Source, table: TableSettings, partitions: int, full: bool) -> bool:
    """Whether this load reads its partitions in one ordered scan; says why at debug level."""
    stats = source.scan_stats(table) if full and partitions >= 2 else None
    choice = choose(stats, partitions, full)
    log.debug(
        "%s.%s: %s (%s; source estimates %s rows)",
        source.name,
        table.name,
        "one scan ordered by the partition fields, split into objects"
        if choice.split
        else "one query per partition",
        choice.reason,
        f"{stats.rows:,}" if stats else "no",
    )
    return choice.split


#: One CSV field of the contract and the comma after it: inside the quotes a backslash
#: always escapes the next character, so the field ends at the first unescaped quote.
_FIELD = r'"(?:[^"\\]|\\.)*",'


def _prefix(line: str, keys: int) -> str:
    """The first `keys` fields of a CSV line of the contract, with the comma after them."""
    found = re.match(f"(?:{_FIELD}){{{keys}}}", line, re.DOTALL)
    if found is None:
        raise ValueError("a scanned line has fewer fields than its partition values")
    return found.group()


def _runs(chunks: Iterator[str], keys: int) -> Iterator[tuple[str, str]]:
    """(partition prefix, its lines without the prefix) for consecutive runs of lines.

    The lines arrive ordered by their prefix, so a run ends at the first line with
    another prefix (found by bisection) and a chunk with one prefix throughout, the
    usual case, is handled by one `replace` over it."""
    for chunk in chunks:
        lines = chunk.split("\n")  # whole lines: the last item is ''
        end = len(lines) - 1
        start = 0
        while start < end:
            prefix = _prefix(lines[start], keys)
            if lines[end - 1].startswith(prefix):
                stop = end
            else:
                stop = bisect.bisect_left(lines, True, start, end, key=lambda s: not s.startswith(prefix))
            text = "\n" + "\n".join(lines[start:stop]) + "\n"
            yield prefix, text.replace("\n" + prefix, "\n")[1:]
            start = stop


def groups(chunks: Iterator[str], keys: int) -> Iterator[tuple[str, Iterator[str]]]:
    """(partition prefix, chunks of its lines) per partition, in scan order. As with
    itertools.groupby, a group's chunks must be read before the next group."""
    for prefix, run in itertools.groupby(_runs(chunks, keys), key=lambda r: r[0]):
        yield prefix, (text for _, text in run)


def expected_prefix(values: Sequence[Any]) -> str | None:
    """The prefix the server renders for these partition values, when it is certain (strings,
    integers, NULL); None when the rendering of another type is not compared."""
    if not all(
        v is None or isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)) for v in values
    ):
        return None
    return ",".join(encode_field(v) for v in values) + ","


def dump_split(
    source: Source,
    table: TableSettings,
    columns: Sequence[str],
    partitions: Sequence[tuple[int, Sequence[Any]]],
    write: Callable[[int, Iterator[str]], tuple[str, int, int]],
) -> Iterator[tuple[int, str, int, int]]:
    """Scan `table` once and write each partition's object: `partitions` are (plan index,
    values) in the source's order of the values; `write(index, chunks)` writes one object
    and returns (key, bytes, rows). Yields (index, key, bytes, rows) per partition."""
    keys = len(table.partition_fields)
    # String values are matched by their rendering, whatever order the server sorted
    # them in; other values (numbers, dates: one order on both sides) by position.
    prefixes = [expected_prefix(values) for _, values in partitions]
    by_prefix = {p: item for p, item in zip(prefixes, partitions, strict=True) if p is not None}
    if len(by_prefix) < len(partitions):
        by_prefix = {}
    todo = iter(partitions)
    done: set[int] = set()
    fail = f"datasource {source.name!r}, table {table.name!r}: the ordered scan"
    stream = source.dump_ordered(table, columns)
    try:
        for prefix, chunks in groups(stream, keys):
            index, values = by_prefix.get(prefix, (-1, ())) if by_prefix else next(todo, (-1, ()))
            expected = expected_prefix(values)
            if index < 0 or index in done or (expected is not None and expected != prefix):
                raise SourceError(
                    f"{fail} found partition values the partition list does not have at that place "
                    f"({prefix[:80]!r}); run again, or report it with the table's partition field types"
                )
            done.add(index)
            key, size, rows = write(index, chunks)
            yield index, key, size, rows
    except ValueError as exc:
        raise SourceError(f"{fail} returned a line it should not have ({exc})") from None
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # stops the query if a write failed mid-partition
    missing = len(partitions) - len(done)
    if missing:
        raise SourceError(
            f"{fail} ended with {missing} partition(s) not found; run again (rows were deleted meanwhile?)"
        )
