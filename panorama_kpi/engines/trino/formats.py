"""Joda-Time patterns (Trino's `format_datetime`) as DuckDB `strftime` formats.

Only the letters whose output strftime reproduces exactly are translated; any other
pattern letter makes the statement fail loudly instead of printing something else.
"""

from __future__ import annotations

from panorama_kpi.engines.trino.errors import Unsupported

# Letter -> {run length: strftime}; a run longer than the largest key uses the largest.
_JODA: dict[str, dict[int, str]] = {
    "y": {2: "%y", 4: "%Y"},
    "Y": {4: "%Y"},
    "M": {1: "%-m", 2: "%m", 3: "%b", 4: "%B"},
    "d": {1: "%-d", 2: "%d"},
    "D": {3: "%j"},
    "H": {1: "%-H", 2: "%H"},
    "h": {1: "%-I", 2: "%I"},
    "m": {1: "%-M", 2: "%M"},
    "s": {1: "%-S", 2: "%S"},
    "S": {3: "%g", 6: "%f", 9: "%n"},
    "a": {1: "%p"},
    "E": {3: "%a", 4: "%A"},
}


def joda_to_strftime(pattern: str) -> str:
    """Translate a Joda pattern; raise Unsupported for letters strftime cannot match."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "'":
            end = pattern.find("'", i + 1)
            if end == -1:
                raise Unsupported(f"format_datetime pattern {pattern!r} with an unterminated quote")
            text = pattern[i + 1 : end] or "'"  # '' is a literal quote
            out.append(text.replace("%", "%%"))
            i = end + 1
            continue
        run = 1
        while i + run < len(pattern) and pattern[i + run] == c:
            run += 1
        if c.isascii() and c.isalpha():
            widths = _JODA.get(c)
            fmt = None
            if widths:
                fmt = widths.get(run) or (widths[max(widths)] if run > max(widths) else None)
                if c == "y" and run not in (2,):
                    fmt = "%Y" if run >= 3 or run == 1 else fmt
            if fmt is None:
                raise Unsupported(f"format_datetime pattern letter {c * run!r}")
            out.append(fmt)
        else:
            out.append((c * run).replace("%", "%%"))
        i += run
    return "".join(out)


# date_format/date_parse specifiers as sqlglot hands them over (already in Python strftime
# terms: Trino's %i is %M, %M is %B, %W is %A, %x is %G, %u is %W) -> DuckDB strftime.
_MYSQL = {c: f"%{c}" for c in "abdfHIMjBmpSAGYyT"} | {
    "-m": "%-m",
    "-d": "%-d",
    "-H": "%-H",
    "-I": "%-I",
    "%": "%%",
    "v": "%V",  # Trino %v: ISO week, used with %x
}


def mysql_to_strftime(fmt: str) -> str:
    """Translate a date_format/date_parse format; Trino's unsupported specifiers fail loudly."""
    out: list[str] = []
    i = 0
    while i < len(fmt):
        if fmt[i] != "%":
            out.append(fmt[i])
            i += 1
            continue
        spec = fmt[i + 1 : i + 3] if fmt[i + 1 : i + 2] == "-" else fmt[i + 1 : i + 2]
        if spec not in _MYSQL:
            raise Unsupported(
                "a date_format/date_parse specifier outside %a %b %c %d %e %f %H %h %I %i %j %k %l %M %m "
                "%p %r %S %s %T %v %W %x %Y %y %% (Athena rejects %D %U %u %V %w %X)"
            )
        out.append(_MYSQL[spec])
        i += 1 + len(spec)
    return "".join(out)
