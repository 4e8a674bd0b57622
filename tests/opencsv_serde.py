"""A Python model of how Athena reads a text file through Hive's ``OpenCSVSerde``.

Test-only reference reader: ported from the logic of Hadoop's ``LineRecordReader``,
Hive's ``OpenCSVSerde.deserialize`` and opencsv 2.3's ``CSVReader`` / ``CSVParser``
(not copied from them). Athena engine v3 reads such tables with Trino's own
``CsvDeserializer`` and ``TextLineReader``, written to be bug-for-bug compatible with
them; they end records and parse fields by the same rules. Behaviours modelled, in
reading order:

Hadoop line reader (``LineReader.readDefaultLine``)
    A record ends at ``\\n``, ``\\r`` or ``\\r\\n``, whether or not it sits inside
    quotes; no other character ends a record (not U+2028, U+0085, VT, FF...). A
    terminator at the very end of the file does not open an extra, empty record.
    A UTF-8 byte-order mark at the start of the file is skipped. Each record's bytes
    are decoded as UTF-8, malformed bytes becoming U+FFFD (``Text.toString``).

Hive (``skip.header.line.count``)
    The first ``skip_header`` records of the file are dropped.

``OpenCSVSerde.deserialize``
    Each record gets a fresh ``CSVReader(reader, ',', '"', '\\\\')`` whose parser uses
    opencsv's defaults ``strictQuotes=false``, ``ignoreLeadingWhiteSpace=true``. The
    SerDe keeps only the first ``readNext()`` result and returns a list sized to the
    column count: missing fields are NULL (``None``), extra fields are dropped, and a
    record for which ``readNext()`` gives nothing (an empty record, or one whose first
    field opens a quote that never closes) is all NULL.

opencsv 2.3 ``CSVReader.readNext`` / ``CSVParser.parseLineMulti``
    - The line is scanned in UTF-16 code units (Java ``char``), which only matters
      for the ``i > 2`` test below when a non-BMP character precedes a quote.
    - The escape character is always consumed. Only when inside quotes or inside a
      started field, and followed by a quote or an escape, does it append that next
      character (skipping it); otherwise the escape is silently dropped.
    - A quote followed by a quote, inside quotes or a started field, appends one quote.
    - Any other quote toggles ``inQuotes``; when the quote is not within the first
      three characters of the line, the character before it is not the separator and
      a character follows that is not the separator, the quote itself is appended
      (the "embedded quote in the middle" rule ``a,bc"d"ef,g``), except that if
      everything collected so far in the field is whitespace (Java
      ``Character.isWhitespace``) it is discarded instead (``ignoreLeadingWhiteSpace``).
      Every quote character, escaped or not, flips ``inField``.
    - A separator outside quotes ends the field and clears ``inField``.
    - Any other character is appended (``strictQuotes`` is false) and sets ``inField``.
    - At the end of the line, an unterminated quoted field becomes "pending"; as the
      SerDe's reader holds a single line, ``readNext`` returns the fields completed
      before it (or nothing at all if there were none), dropping the pending one.
"""

from __future__ import annotations

import struct
import unicodedata
from collections.abc import Iterator

SEPARATOR = ","
QUOTE = '"'
ESCAPE = "\\"

_UTF8_BOM = b"\xef\xbb\xbf"

# Java's Character.isWhitespace: space separators other than the no-break ones,
# the line/paragraph separators, and these ASCII controls.
_JAVA_WHITESPACE_CONTROLS = frozenset("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f")
_JAVA_NON_BREAKING = frozenset("\u00a0\u2007\u202f")


def java_is_whitespace(char: str) -> bool:
    if char in _JAVA_WHITESPACE_CONTROLS:
        return True
    if char in _JAVA_NON_BREAKING:
        return False
    return unicodedata.category(char) in ("Zs", "Zl", "Zp")


def _to_utf16_units(text: str) -> str:
    """The string as Java sees it: one Python character per UTF-16 code unit."""
    if not text or max(text) <= "\uffff":
        return text
    data = text.encode("utf-16-le")
    return "".join(map(chr, struct.unpack(f"<{len(data) // 2}H", data)))


def _from_utf16_units(units: str) -> str:
    return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le")


def split_records(data: bytes) -> Iterator[str]:
    """Hadoop ``LineRecordReader`` over a whole file: records without terminators."""
    data = data.removeprefix(_UTF8_BOM)
    start = 0
    pos = 0
    size = len(data)
    while pos < size:
        byte = data[pos]
        if byte == 0x0A or byte == 0x0D:  # \n or \r
            yield data[start:pos].decode("utf-8", errors="replace")
            if byte == 0x0D and pos + 1 < size and data[pos + 1] == 0x0A:
                pos += 1  # \r\n is one terminator
            pos += 1
            start = pos
        else:
            pos += 1
    if start < size:
        yield data[start:].decode("utf-8", errors="replace")


class CSVParser:
    """opencsv 2.3 ``CSVParser`` (with the defaults the SerDe gets)."""

    def __init__(
        self,
        separator: str = SEPARATOR,
        quotechar: str = QUOTE,
        escape: str = ESCAPE,
        strict_quotes: bool = False,
        ignore_leading_white_space: bool = True,
    ) -> None:
        chars = [c for c in (separator, quotechar, escape) if c != "\0"]
        if len(set(chars)) != len(chars):
            raise ValueError("The separator, quote, and escape characters must be different!")
        if separator == "\0":
            raise ValueError("The separator character must be defined!")
        self.separator = separator
        self.quotechar = quotechar
        self.escape = escape
        self.strict_quotes = strict_quotes
        self.ignore_leading_white_space = ignore_leading_white_space
        self.pending: str | None = None
        # An attribute, not a local, as in opencsv: it survives from one call to the next.
        self.in_field = False

    def _escaped_quote_next(self, line: str, in_quotes: bool, i: int) -> bool:
        return in_quotes and len(line) > i + 1 and line[i + 1] == self.quotechar

    def _escapable_next(self, line: str, in_quotes: bool, i: int) -> bool:
        return in_quotes and len(line) > i + 1 and line[i + 1] in (self.quotechar, self.escape)

    def parse_line_multi(self, next_line: str) -> list[str]:
        """``parseLineMulti``: fields of one line; an open quote at the end leaves ``pending``."""
        line = _to_utf16_units(next_line)
        tokens: list[str] = []
        sb: list[str] = []
        in_quotes = False
        if self.pending is not None:
            sb.append(self.pending)
            self.pending = None
            in_quotes = True
        i = 0
        n = len(line)
        while i < n:
            c = line[i]
            if c == self.escape:
                if self._escapable_next(line, in_quotes or self.in_field, i):
                    sb.append(line[i + 1])
                    i += 1
                # else: the escape is dropped
            elif c == self.quotechar:
                if self._escaped_quote_next(line, in_quotes or self.in_field, i):
                    sb.append(line[i + 1])
                    i += 1
                else:
                    if (
                        not self.strict_quotes
                        and i > 2
                        and line[i - 1] != self.separator
                        and n > i + 1
                        and line[i + 1] != self.separator
                    ):
                        if (
                            self.ignore_leading_white_space
                            and sb
                            and all(java_is_whitespace(ch) for ch in "".join(sb))
                        ):
                            sb.clear()
                        else:
                            sb.append(c)
                    in_quotes = not in_quotes
                self.in_field = not self.in_field
            elif c == self.separator and not in_quotes:
                tokens.append(_from_utf16_units("".join(sb)))
                sb.clear()
                self.in_field = False
            elif not self.strict_quotes or in_quotes:
                sb.append(c)
                self.in_field = True
            i += 1
        if in_quotes:
            sb.append("\n")
            self.pending = "".join(sb)
        else:
            tokens.append(_from_utf16_units("".join(sb)))
        return tokens


def read_next(record: str) -> list[str] | None:
    """``new CSVReader(new CharArrayReader(record)).readNext()`` for one Hadoop record.

    A Hadoop record holds no CR or LF, so ``BufferedReader.readLine`` yields it whole
    once (or nothing for an empty record) and then reports the end of input.
    """
    lines = iter([record] if record else [])
    parser = CSVParser()
    result: list[str] | None = None
    while True:
        line = next(lines, None)
        if line is None:
            return result  # end of input, even with a field still pending
        fields = parser.parse_line_multi(line)
        if fields:
            result = fields if result is None else result + fields
        if parser.pending is None:
            return result


def deserialize(record: str, num_cols: int) -> list[str | None]:
    """``OpenCSVSerde.deserialize``: the record's strings sized to the column count."""
    read = read_next(record)
    return [read[i] if read is not None and i < len(read) else None for i in range(num_cols)]


def read_table(data: bytes | str, num_cols: int, skip_header: int = 1) -> list[list[str | None]]:
    """Rows of a whole file as Athena's raw (all-string) table shows them."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    rows: list[list[str | None]] = []
    for index, record in enumerate(split_records(data)):
        if index < skip_header:
            continue
        rows.append(deserialize(record, num_cols))
    return rows


def parse_field(text: str) -> str | None:
    """The single field a one-column record reads as (handy in tests)."""
    return deserialize(text, 1)[0]
