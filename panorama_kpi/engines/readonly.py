"""What `query` may run without `--allow-ddl`: statements that only read.

`query` runs SQL a person typed; on the local engine it must not write files, drop
views or read files outside the lake (the DuckDB engine also confines its query
connections to the lake directory), and on Athena it must not change the catalog.
The statement's kind is read from its Athena-dialect parse.
"""

from __future__ import annotations

from sqlglot import exp

from panorama_kpi.engines.athena_sql import parse_statement
from panorama_kpi.errors import EngineError

#: Statement kinds that only read.
_READING = (exp.Select, exp.SetOperation, exp.Values, exp.Subquery, exp.Describe)
#: Keywords of statements sqlglot keeps as a plain command, that only read.
_READING_COMMANDS = {"EXPLAIN", "SHOW", "DESCRIBE", "DESC"}


def require_read_only(sql: str) -> None:
    """Raise EngineError unless `sql` is one statement that only reads."""
    statement = parse_statement(sql)
    if isinstance(statement, _READING):
        return
    if isinstance(statement, exp.Command) and str(statement.this).upper() in _READING_COMMANDS:
        return
    kind = statement.key.upper() if not isinstance(statement, exp.Command) else str(statement.this).upper()
    raise EngineError(
        f"query only reads (SELECT, WITH, VALUES, SHOW, DESCRIBE, EXPLAIN); {kind} changes the catalog or "
        "the files: pass --allow-ddl if you mean it"
    )
