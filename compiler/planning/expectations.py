"""`expect` checks compiled into queries: each returns no row when the data passes.

A failing check returns up to 5 sample rows, each with `_failures`, the number of failing rows
(for `unique`: of duplicated key combinations; for `row_count`: 1, with the count in
`row_count`). The queries are trees in the spec's dialect that name nodes by their names, like
a user's SQL; the planner prepares them for the target exactly as it prepares transforms.

Semantics where LANGUAGE §4.3 is silent: `check("...")` fails on rows where the expression is
false (NULL passes, as in a SQL CHECK constraint); `unique` counts NULL as a value;
`accepted_values` and `relationship` ignore NULLs.

The strings of `accepted_values` are bound, never written into the SQL text: each is a
placeholder `flowc_value_N` whose value the plan keeps beside the SQL (`Step.values`), and the
driver passes it (DuckDB and BigQuery: query parameters; psycopg2: quoted by libpq for the
connection's settings). A string literal's meaning in SQL text depends on the server (on
Postgres, `standard_conforming_strings = off` makes a backslash escape a quote); a bound value
means itself on every engine. Numbers and booleans are tokens the grammar checked, written as
such.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from flowc.compiler import ir
from flowc.compiler.analysis.arguments import argument
from flowc.compiler.analysis.schema import parse_condition
from flowc.compiler.analysis.sql_parse import SqlProblem
from flowc.compiler.vocabulary import CHECKS
from sqlglot import exp

SAMPLES = 5
FAILURES = "_failures"
VALUE = "flowc_value_"  # the placeholders of bound values: flowc_value_1, flowc_value_2, ...


class CheckQuery(NamedTuple):
    query: exp.Query
    reads: list[str]  # the other nodes it reads
    values: tuple[tuple[str, str], ...] = ()  # (placeholder, value): what its SQL binds


def check_query(expectation: ir.Expectation, relation: str, dialect: str) -> CheckQuery | None:
    """The query testing `expectation` on node `relation`, the other nodes it reads, and the
    values it binds.

    >>> from flowc.project.spans import point
    >>> ref = ir.Ref(parts=("id",), span=point("f"))
    >>> f = point("f")
    >>> call = ir.Call(name="not_null", name_span=f, args=(ref,), keywords=(), span=f)
    >>> check_query(ir.Expectation(check="not_null", call=call), "t", "duckdb").query.sql("duckdb")
    'SELECT *, COUNT(*) OVER () AS "_failures" FROM t WHERE "id" IS NULL LIMIT 5'
    """
    call, names = expectation.call, _Names(dialect)
    signature = CHECKS.get(expectation.check)
    if signature is None:
        return None
    table = exp.to_table(relation)
    if expectation.check == "not_null":
        nulls = [exp.column(names(c)).is_(exp.null()) for c in _refs(call.args)]
        condition = exp.or_(*nulls, copy=False)
        return CheckQuery(_failing(table, condition), [])
    if expectation.check == "unique":
        return CheckQuery(_duplicates(table, [names(c) for c in _refs(call.args)]), [])
    if expectation.check == "accepted_values":
        column, values = argument(call, signature, "column"), argument(call, signature, "values")
        if not isinstance(column, ir.Ref) or not isinstance(values, ir.ListValue):
            return None
        col = exp.column(names(column.parts[0]))
        bound: list[tuple[str, str]] = []
        listed = [_literal(v, bound) for v in values.items]
        condition = exp.and_(
            col.copy().is_(exp.null()).not_(),
            exp.In(this=col, expressions=listed).not_(),
            copy=False,
        )
        return CheckQuery(_failing(table, condition), [], tuple(bound))
    if expectation.check == "row_count":
        low, high = argument(call, signature, "min"), argument(call, signature, "max")
        return CheckQuery(_row_count(table, low, high), [])
    if expectation.check == "check":
        text = argument(call, signature, "condition")
        if not isinstance(text, ir.Str):
            return None
        parsed = parse_condition(text.value, dialect)
        if isinstance(parsed, SqlProblem):
            return None
        return CheckQuery(_failing(table, exp.Paren(this=parsed).not_()), [])
    if expectation.check == "relationship":
        column, other = argument(call, signature, "column"), argument(call, signature, "other")
        if not isinstance(column, ir.Ref) or not isinstance(other, ir.Ref):
            return None
        query = _relationship(table, names(column.parts[0]), other, names)
        return CheckQuery(query, [other.parts[0]])
    return None


class _Names:
    """Identifiers for names declared in the .flow file, written as the spec's dialect reads
    them (quoted, so a reserved word is a name; Postgres: folded, as declared names are)."""

    def __init__(self, dialect: str) -> None:
        self.fold = dialect == "postgres"

    def __call__(self, name: str) -> exp.Identifier:
        return exp.Identifier(this=name.lower() if self.fold else name, quoted=True)


def _refs(values: tuple[ir.Value, ...]) -> list[str]:
    return [v.parts[0] for v in values if isinstance(v, ir.Ref)]


def _count_all() -> exp.Expr:
    return exp.alias_(exp.Window(this=exp.Count(this=exp.Star())), FAILURES, quoted=True)


def _failing(table: exp.Table, condition: exp.Expr) -> exp.Select:
    return (
        exp.select(exp.Star(), _count_all())
        .from_(table, copy=False)
        .where(condition, copy=False)
        .limit(SAMPLES, copy=False)
    )


def _duplicates(table: exp.Table, columns: list[exp.Identifier]) -> exp.Select:
    count = exp.Count(this=exp.Star())
    return (
        exp.select(*(exp.column(c) for c in columns), exp.alias_(count, "_count", quoted=True))
        .select(_count_all(), copy=False)
        .from_(table, copy=False)
        .group_by(*(exp.column(c) for c in columns), copy=False)
        .having(exp.GT(this=count.copy(), expression=exp.Literal.number(1)), copy=False)
        .limit(SAMPLES, copy=False)
    )


def _row_count(table: exp.Table, low: ir.Value | None, high: ir.Value | None) -> exp.Query:
    rows = exp.column(exp.Identifier(this="_rows", quoted=True))
    bounds: list[exp.Expr] = []
    if isinstance(low, ir.Num):
        bounds.append(exp.LT(this=rows.copy(), expression=exp.Literal.number(low.text)))
    if isinstance(high, ir.Num):
        bounds.append(exp.GT(this=rows.copy(), expression=exp.Literal.number(high.text)))
    counted = exp.select(exp.alias_(exp.Count(this=exp.Star()), "_rows", quoted=True)).from_(
        table, copy=False
    )
    query = (
        exp.select(
            exp.alias_(rows, "row_count", quoted=True),
            exp.alias_(exp.Literal.number(1), FAILURES, quoted=True),
        )
        .from_(counted.subquery("_counted", copy=False), copy=False)
        .where(exp.or_(*bounds, copy=False) if bounds else exp.false(), copy=False)
    )
    return query


def _relationship(
    table: exp.Table, column: exp.Identifier, other: ir.Ref, names: _Names
) -> exp.Select:
    child = exp.column(column, table="_child")
    parent = exp.column(names(other.parts[1]), table="_parent")
    exists = exp.Exists(
        this=exp.select(exp.Literal.number(1))
        .from_(exp.to_table(other.parts[0]).as_("_parent", copy=False), copy=False)
        .where(exp.EQ(this=parent, expression=child.copy()), copy=False)
    )
    condition = exp.and_(child.is_(exp.null()).not_(), exists.not_(), copy=False)
    return (
        exp.select(exp.Star(), _count_all())
        .from_(table.as_("_child", copy=False), copy=False)
        .where(condition, copy=False)
        .limit(SAMPLES, copy=False)
    )


def _literal(value: ir.Value, bound: list[tuple[str, str]]) -> exp.Expr:
    """`value` in a check's SQL: a string is a placeholder, its value added to `bound`."""
    if isinstance(value, ir.Num):
        return exp.Literal.number(value.text)
    if isinstance(value, ir.Bool):
        return exp.Boolean(this=value.value)
    if not isinstance(value, ir.Str | ir.Ref):
        return exp.null()
    name = f"{VALUE}{len(bound) + 1}"
    bound.append((name, value.value if isinstance(value, ir.Str) else value.dotted))
    return exp.Placeholder(this=name)


def describe(call: ir.Call) -> str:
    """The check as the spec writes it, in canonical form.

    >>> from flowc.project.spans import point
    >>> ref = ir.Ref(parts=("id",), span=point("f"))
    >>> f = point("f")
    >>> describe(ir.Call(name="unique", name_span=f, args=(ref,), keywords=(), span=f))
    'unique(id)'
    """
    args = [_written(v) for v in call.args]
    args += [f"{k.name} = {_written(k.value)}" for k in call.keywords]
    return f"{call.name}({', '.join(args)})"


def _written(value: ir.Value) -> str:
    if isinstance(value, ir.Str):
        return json.dumps(value.value)
    if isinstance(value, ir.Num):
        return value.text
    if isinstance(value, ir.Bool):
        return "true" if value.value else "false"
    if isinstance(value, ir.Ref):
        return value.dotted
    if isinstance(value, ir.ListValue):
        return "[" + ", ".join(_written(v) for v in value.items) + "]"
    return value.kind
