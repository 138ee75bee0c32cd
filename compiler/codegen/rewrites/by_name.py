"""`UNION [ALL] BY NAME`: columns matched by name, in DuckDB's order of the output.

Postgres has no BY NAME, and BigQuery's wants the same names on both sides; both sides become
selects of the output columns, NULL where a side lacks one.
"""

from __future__ import annotations

from collections.abc import Sequence

from flowc.compiler.codegen.annotate import OUTPUTS
from flowc.compiler.codegen.rewrites.context import Context
from flowc.compiler.codegen.rewrites.outputs import name_outputs, output_names, select_from
from flowc.compiler.codegen.rewrites.trees import bottom_up, column_ref
from sqlglot import exp


def union_by_name(tree: exp.Query, context: Context) -> None:
    """DuckDB's `UNION [ALL] BY NAME` matches columns by name, the output has the left
    side's columns and then the right side's new ones, NULL where a side lacks a column:
    both sides become selects of the output columns in that order."""
    for union in bottom_up(tree, exp.SetOperation):
        if not union.args.get("by_name"):
            continue
        left, right = output_names(union.this), output_names(union.expression)
        left_named = name_outputs(union.this, left, context) if left is not None else None
        right_named = name_outputs(union.expression, right, context) if right is not None else None
        if left_named is None or right_named is None:
            continue  # Postgres: codegen refuses it; BigQuery's own BY NAME wants equal names
        keys = {n.lower() for n in left_named}
        output = left_named + [n for n in right_named if n.lower() not in keys]
        union.set("this", _by_name_side(union.this, left_named, output, context))
        union.set("expression", _by_name_side(union.expression, right_named, output, context))
        union.set("by_name", None)
        union.meta[OUTPUTS] = tuple(output)


def _by_name_side(
    side: exp.Expr, names: Sequence[str], output: Sequence[str], context: Context
) -> exp.Expr:
    if [n.lower() for n in names] == [n.lower() for n in output]:
        return side
    alias = context.fresh("_side")
    have = {n.lower(): n for n in names}
    items: list[exp.Expr] = []
    for name in output:
        if name.lower() in have:
            items.append(column_ref(have[name.lower()], alias))
        else:
            items.append(exp.alias_(exp.Null(), name, quoted=False))
    query = side.this if isinstance(side, exp.Subquery) else side
    select = select_from(items, query, alias)
    select.meta[OUTPUTS] = tuple(output)
    return select
