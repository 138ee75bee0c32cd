"""Aggregates and NULL-skipping choosers whose meaning differs on the target.

`count_if` of no rows, `mode`/`median`/quantiles, `any_value` and `greatest`/`least` (which on
DuckDB skip NULLs as an aggregate does).
"""

from __future__ import annotations

from flowc.compiler.codegen.rewrites.context import Context
from flowc.compiler.codegen.rewrites.trees import bottom_up, call
from sqlglot import exp


def count_if(tree: exp.Query, context: Context) -> None:
    """DuckDB's `count_if` of no rows is NULL, BigQuery's `COUNTIF` 0 (Postgres gets
    sqlglot's `SUM(CASE ...)`, which is DuckDB's)."""
    if not context.bigquery:
        return
    for node in bottom_up(tree, exp.CountIf):
        case = exp.If(
            this=node.this.copy(), true=exp.Literal.number(1), false=exp.Literal.number(0)
        )
        node.replace(exp.Sum(this=case))


def ordered_set_aggregates(tree: exp.Query, context: Context) -> None:
    """`mode(x)` is Postgres' `mode() WITHIN GROUP (ORDER BY x)`. BigQuery has no exact
    median, quantile or mode aggregate (its PERCENTILE_CONT is a window function only)."""
    for node in bottom_up(tree, exp.Mode, exp.Median, exp.PercentileCont, exp.PercentileDisc):
        in_window = isinstance(node.parent, exp.Window)
        if context.postgres and isinstance(node, exp.Mode) and not in_window:
            order = exp.Order(expressions=[exp.Ordered(this=node.this.copy(), nulls_first=False)])
            node.replace(exp.WithinGroup(this=call("MODE"), expression=order))
        elif context.bigquery and not in_window:
            what = type(node).__name__.lower().replace("percentile", "quantile_")
            context.refuse(
                node,
                f"the aggregate `{what}`",
                "APPROX_QUANTILES is BigQuery's (approximate); or aggregate on DuckDB",
            )


def any_value(tree: exp.Query, context: Context) -> None:
    """DuckDB's `any_value` skips NULLs, as Postgres' does (without saying IGNORE NULLS)."""
    if not context.postgres:
        return
    for node in bottom_up(tree, exp.IgnoreNulls):
        if isinstance(node.this, exp.AnyValue):
            node.replace(node.this.copy())


def greatest_least(tree: exp.Query, context: Context) -> None:
    """DuckDB's `greatest`/`least` skip NULLs (NULL only when every argument is); BigQuery's
    are NULL when any is: each argument stands in for the NULL ones."""
    if not context.bigquery:
        return
    for node in bottom_up(tree, exp.Greatest, exp.Least):
        args = [node.this, *node.expressions]
        if len(args) < 2:
            continue
        filled = [
            exp.Coalesce(this=a.copy(), expressions=[b.copy() for b in args if b is not a])
            for a in args
        ]
        node.replace(type(node)(this=filled[0], expressions=filled[1:]))
