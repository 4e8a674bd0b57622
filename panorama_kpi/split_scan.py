"""Reading a partitioned table: one query per partition, or one scan cut into objects.

One query per partition (`WHERE field = ?`) is right for an incremental run (a few
partitions, found through an index). For a full load it costs one round trip and one
plan per partition, and when no index leads with the partition fields every one of
those queries scans the whole table. Two plans read the table once instead, with the
partition values as leading fields of each line:

- routed (`dump_routed`): the table in its own order, the cheapest read a server has;
  each chunk's lines are grouped by partition and appended to that partition's object,
  all of them open until the scan ends (at most MAX_OPEN: a file each).
- sorted (`dump_split`): ordered by the partition fields' exact values (the order
  `partition_values` lists them in), cut into one group per partition as the lines
  arrive; one object is open at a time, for any number of partitions, but the server
  sorts the table.

Memory does not depend on the table in either. The choice is made per table from the
source's own statistics (`Source.scan_stats`): row estimate, whether an index leads
with the partition fields, and the number of partitions (see `choose`), and logged at
debug level.

Each line's first fields are the partition values as the server rendered them. When
every partition's values are strings, integers or NULL, a line is matched to the
partition that renders the same (required by the routed scan); otherwise the sorted
scan's groups are matched to the partitions in `partition_values`' order. A group that
matches no partition, or one matched twice, or a partition no group matched, fails the
table.
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
from panorama_kpi.lake.batch import ObjectWriter
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


#: The plans, as the debug log names them.
PER_PARTITION = "one query per partition"
SORTED = "one scan ordered by the partition fields, split into objects"
ROUTED = "one scan in table order, each row routed to its partition's open object"
#: Objects a routed scan may hold open at once (a file each, and a buffer).
MAX_OPEN = 256


@dataclass(frozen=True)
class Choice:
    plan: str
    reason: str


def choose(stats: ScanStats | None, partitions: int, full: bool, max_open: int = 0) -> Choice:
    """Which plan reads a table's partitions, and why (for the debug log). `max_open`:
    how many objects the load could hold open for a routed scan (0: none)."""
    if not full:
        return Choice(PER_PARTITION, "incremental run: only the changed partitions, one query each")
    if stats is None:
        return Choice(PER_PARTITION, "the source has no statistics to plan a scan with")
    if partitions < 2:
        return Choice(PER_PARTITION, f"{partitions} partition(s)")
    # A full load reads every row: one plain scan is the cheapest read there is, whatever
    # the indexes, when every partition's object can stay open until it ends.
    if partitions <= max_open:
        return Choice(ROUTED, f"{partitions} partitions, all open at once (at most {max_open})")
    if not stats.indexed:
        return Choice(SORTED, f"{partitions} partitions and no index on the partition fields")
    each = stats.rows // partitions
    if each < SMALL_PARTITION:
        return Choice(SORTED, f"{partitions} partitions of about {each:,} rows each")
    if stats.lookup_per_row and partitions >= MANY_PARTITIONS:
        return Choice(SORTED, f"{partitions} partitions, each row a lookup through the index")
    return Choice(PER_PARTITION, f"{partitions} partitions of about {each:,} rows through the index")


def plan_scan(source: Source, table: TableSettings, partitions: int, full: bool, max_open: int = 0) -> str:
    """How this load reads its partitions (one of the plans above); says why at debug level."""
    stats = source.scan_stats(table) if full and partitions >= 2 else None
    choice = choose(stats, partitions, full, max_open)
    log.debug(
        "%s.%s: %s (%s; source estimates %s rows)",
        source.name,
        table.name,
        choice.plan,
        choice.reason,
        f"{stats.rows:,}" if stats else "no",
    )
    return choice.plan


def open_budget() -> int:
    """Objects a routed scan may hold open: MAX_OPEN, less where the process may open
    few files."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return MAX_OPEN
    return MAX_OPEN if soft == resource.RLIM_INFINITY else max(0, min(MAX_OPEN, (soft - 64) // 2))


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
    stream = source.dump_keyed(table, columns, ordered=True)
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


def _cutter(keys: int, prefixes: Sequence[str]) -> Callable[[str], str]:
    """A function giving a line's first `keys` fields (with the comma after them). When no
    partition value holds a quote (encoded `\\"`), a field ends at the first `",`: one
    `str.index` instead of a regular expression."""
    if any('\\"' in p for p in prefixes):
        return lambda line: _prefix(line, keys)
    if keys == 1:
        return lambda line: line[: line.index('",', 1) + 2]
    pattern = re.compile(f'(?:"[^"]*",){{{keys}}}')

    def cut(line: str) -> str:
        found = pattern.match(line)
        if found is None:
            raise ValueError("a scanned line has fewer fields than its partition values")
        return found.group()

    return cut


def dump_routed(
    source: Source,
    table: TableSettings,
    columns: Sequence[str],
    partitions: Sequence[tuple[int, Sequence[Any]]],
    open_object: Callable[[int], tuple[str, ObjectWriter]],
    checkpoint: Callable[[], None],
) -> Iterator[tuple[int, str, int, int]]:
    """Scan `table` once in its own order and append each row to its partition's object.

    `partitions` are (plan index, values), every value a string, integer or NULL (their
    rendering is known); `open_object(index)` opens a partition's object (its header
    written) and returns (key, writer). The lines of each chunk are grouped by partition
    in arrival order, so each object gets its rows in the order a per-partition query
    gives them (the table's order). When the scan ends every object is closed; yields
    (index, key, bytes, rows) per partition."""
    keys = len(table.partition_fields)
    by_prefix: dict[str, int] = {}
    for index, values in partitions:
        prefix = expected_prefix(values)
        assert prefix is not None, "a routed scan needs every partition's rendering"
        by_prefix[prefix] = index
    cut = _cutter(keys, list(by_prefix))
    opened: dict[str, tuple[int, str, ObjectWriter]] = {}
    rows: dict[str, int] = {}
    fail = f"datasource {source.name!r}, table {table.name!r}: the routed scan"
    stream = source.dump_keyed(table, columns, ordered=False)
    try:
        for chunk in stream:
            checkpoint()
            lines = chunk.split("\n")
            lines.pop()  # whole lines: the last item is ''
            runs: dict[str, list[str]] = {}
            for line in lines:
                prefix = cut(line)
                run = runs.get(prefix)
                if run is None:
                    runs[prefix] = [line]
                else:
                    run.append(line)
            for prefix, run in runs.items():
                target = opened.get(prefix)
                if target is None:
                    index = by_prefix.get(prefix, -1)
                    if index < 0:
                        raise SourceError(
                            f"{fail} found partition values the partition list does not have "
                            f"({prefix[:80]!r}); run again, or report it with the table's partition field types"
                        )
                    target = opened[prefix] = (index, *open_object(index))
                    rows[prefix] = 0
                target[2].write(("\n" + "\n".join(run)).replace("\n" + prefix, "\n")[1:] + "\n")
                rows[prefix] += len(run)
        missing = len(by_prefix) - len(opened)
        if missing:
            raise SourceError(
                f"{fail} ended with {missing} partition(s) not found; run again (rows were deleted meanwhile?)"
            )
        while opened:
            prefix, (index, key, writer) = opened.popitem()
            try:
                size = writer.close()
            except BaseException:
                writer.abort()
                raise
            yield index, key, size, rows[prefix]
    except ValueError as exc:
        raise SourceError(f"{fail} returned a line it should not have ({exc})") from None
    finally:
        for _index, _key, writer in opened.values():
            writer.abort()
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # stops the query if a write failed mid-scan
