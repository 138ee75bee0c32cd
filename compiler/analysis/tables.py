"""The table-names pass: each `table(conn, "schema.table")` names a table every engine can have.

A name in a string is read as the spec's dialect reads a table name in SQL: `ny_taxi.trips`,
`main."a b"` (quoted, any character), `"Trips"`. It has one or two parts, a schema (a BigQuery
dataset) and a table; a `table(...)` source on BigQuery may name a third, the project. No part
is empty or holds a dot. On every profile's engine for that connection, a name the engine would
refuse, or change, is an error too: Postgres cuts identifiers at 63 bytes, BigQuery datasets
are letters, digits and underscores, and BigQuery tables letters, marks, digits, connectors,
dashes and spaces (its documented limits). So what `flowc check` accepts compiles and runs.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from flowc.compiler import ir
from flowc.compiler.diagnostics import Diagnostics
from sqlglot import exp
from sqlglot.errors import SqlglotError

Types = Mapping[str, Mapping[str, str]]  # profile -> connection -> its type
_POSTGRES_BYTES = 63
_BIGQUERY_BYTES = 1024
_BIGQUERY_TABLE = frozenset({"Pc", "Pd", "Zs"})  # with letters, marks and numbers


def check_table_names(spec: ir.Spec, dialect: str, types: Types, diagnostics: Diagnostics) -> None:
    """Report every `table(...)` name of `spec` that some target cannot have."""
    for node in spec.nodes:
        call = node.from_ if isinstance(node, ir.SourceNode) else None
        if isinstance(node, ir.SinkNode):
            call = node.to
        if call is None or call.name != "table" or len(call.args) < 2:
            continue
        written, connection = call.args[1], call.args[0]
        if not isinstance(written, ir.Str):
            continue
        kinds = _connection_types(connection, types)
        problem = table_problem(
            written.value, dialect, kinds, source=isinstance(node, ir.SourceNode)
        )
        if problem is not None:
            diagnostics.report(
                "F0313", written.span, hint=problem[1], name=written.value, detail=problem[0]
            )


def table_parts(written: str, dialect: str) -> tuple[exp.Identifier, ...] | str:
    """The parts of a table name written in a string, or why it is none.

    >>> [p.name for p in table_parts('main."a b"', "duckdb")]
    ['main', 'a b']
    >>> table_parts("main.it's", "duckdb")
    'it is not a table name in duckdb SQL'
    """
    try:
        table = exp.maybe_parse(written, into=exp.Table, dialect=dialect)
    except (SqlglotError, RecursionError):
        return f"it is not a table name in {dialect} SQL"
    parts = table.parts if isinstance(table, exp.Table) else []
    if not parts or not all(isinstance(p, exp.Identifier) for p in parts):
        return f"it is not a table name in {dialect} SQL"
    return tuple(p for p in parts if isinstance(p, exp.Identifier))


def table_problem(
    written: str, dialect: str, kinds: frozenset[str], *, source: bool
) -> tuple[str, str] | None:
    """(what is wrong, a hint) with the table name `written`, else None."""
    parts = table_parts(written, dialect)
    quote = '"' if dialect != "bigquery" else "`"
    if isinstance(parts, str):
        return parts, f"write `schema.table`; quote a name with other characters: {quote}a b{quote}"
    most = 3 if source and kinds == {"bigquery"} else 2
    if len(parts) > most:
        allowed = "`project.dataset.table`" if most == 3 else "`schema.table`"
        return f"it has {len(parts)} parts", f"name a table as `table` or {allowed}"
    for part in parts:
        problem = _part_problem(part.name, kinds, schema=part is not parts[-1])
        if problem is not None:
            return problem
    return None


def _part_problem(name: str, kinds: frozenset[str], *, schema: bool) -> tuple[str, str] | None:
    if not name:
        return "a part of it is empty", "name the table: `schema.table`"
    if "." in name or "\x00" in name:
        return f"`{name}` holds a dot or a NUL", "name it without one"
    size = len(name.encode("utf-8"))
    if "postgres" in kinds and size > _POSTGRES_BYTES:
        detail = f"`{name}` is {size} bytes long; Postgres cuts names at {_POSTGRES_BYTES}"
        return detail, "use a shorter name"
    if "bigquery" not in kinds:
        return None
    if size > _BIGQUERY_BYTES:
        return f"`{name}` is longer than BigQuery allows", "use a shorter name"
    if schema and not (name.isascii() and name.replace("_", "a").isalnum()):
        detail = f"the BigQuery dataset `{name}` has characters other than letters, digits and _"
        return detail, "name the dataset with letters, digits and underscores only"
    if not schema and not all(_bigquery_table_character(c) for c in name):
        detail = f"the BigQuery table name `{name}` has characters BigQuery does not allow"
        return detail, "use letters, digits, underscores, dashes and spaces"
    return None


def _bigquery_table_character(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LMN" or category in _BIGQUERY_TABLE


def _connection_types(connection: ir.Value, types: Types) -> frozenset[str]:
    if not isinstance(connection, ir.Ref):
        return frozenset()
    return frozenset(t[connection.dotted] for t in types.values() if connection.dotted in t)
