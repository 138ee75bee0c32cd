"""`DISTINCT ON` on BigQuery, which has none: the first row of each key, numbered by a window."""

from __future__ import annotations

from collections.abc import Sequence

from flowc.compiler.codegen.annotate import OUTPUTS
from flowc.compiler.codegen.rewrites.context import Context
from flowc.compiler.codegen.rewrites.outputs import (
    name_outputs,
    output_names,
    replace_query,
    select_from,
)
from flowc.compiler.codegen.rewrites.trees import bottom_up, column_ref
from sqlglot import exp


def distinct_on(tree: exp.Query, context: Context) -> None:
    """BigQuery has no `DISTINCT ON`: the first row of each key in the ORDER BY's order is
    the one numbered 1 (`ROW_NUMBER() OVER (PARTITION BY key ORDER BY ...)`), and the ORDER
    BY, LIMIT and OFFSET apply to those rows (sqlglot's own rewrite drops the ORDER BY and
    limits the rows before picking them)."""
    if not context.bigquery:
        return
    for select in bottom_up(tree, exp.Select):
        distinct = select.args.get("distinct")
        on = distinct.args.get("on") if isinstance(distinct, exp.Distinct) else None
        if on is None:
            continue
        names = output_names(select)
        named = name_outputs(select, names, context) if names is not None else None
        if named is None:
            context.refuse(
                on,
                "`DISTINCT ON` over columns that cannot all be named",
                "list the columns (or compute the first rows with ROW_NUMBER())",
            )
            continue
        replace_query(select, _first_rows(select, on, named, context))


def _first_rows(
    select: exp.Select, on: exp.Expr, named: Sequence[str], context: Context
) -> exp.Select:
    keys = on.expressions if isinstance(on, exp.Tuple) else [on]
    order = select.args.get("order")
    sorts = order.expressions if isinstance(order, exp.Order) else []
    number, alias = context.fresh("_rn"), context.fresh("_first")
    window = exp.Window(
        this=exp.RowNumber(),
        partition_by=[k.copy() for k in keys],
        order=exp.Order(expressions=[o.copy() for o in sorts]) if sorts else None,
    )
    inner = select.copy()
    for clause in ("distinct", "order", "limit", "offset"):
        inner.set(clause, None)
    inner.append("expressions", exp.alias_(window, number, quoted=False))
    outer: list[exp.Expr] = []
    for ordered in sorts:  # the outer ORDER BY names outputs, or keys carried out hidden
        name = _output_for(ordered.this, select, named)
        if name is None:
            name = context.fresh("_key")
            inner.append("expressions", exp.alias_(ordered.this.copy(), name, quoted=False))
        flags = {k: ordered.args.get(k) for k in ("desc", "nulls_first")}
        outer.append(exp.Ordered(this=column_ref(name, alias), **flags))
    rows = select_from([column_ref(n, alias) for n in named], inner, alias)
    first = exp.EQ(this=column_ref(number, alias), expression=exp.Literal.number(1))
    rows.set("where", exp.Where(this=first))
    rows.set("order", exp.Order(expressions=outer) if outer else None)
    for clause in ("limit", "offset"):
        rows.set(clause, select.args.get(clause))
    rows.meta[OUTPUTS] = tuple(named)
    return rows


def _output_for(expression: exp.Expr, select: exp.Select, named: Sequence[str]) -> str | None:
    """The output column an ORDER BY key names: an alias, a selected column, a selected
    expression written the same, a position."""
    if isinstance(expression, exp.Literal) and expression.is_int:
        index = int(expression.this) - 1
        return named[index] if 0 <= index < len(named) else None
    written = expression.sql(dialect="duckdb").lower()
    for item, name in zip(select.expressions, named, strict=False):
        inner = item.this if isinstance(item, exp.Alias) else item
        if inner.sql(dialect="duckdb").lower() == written:
            return name
        if (
            isinstance(expression, exp.Column)
            and not expression.table
            and expression.name.lower() == name.lower()
        ):
            return name
    return None
