"""Lists: their length, and DuckDB's aggregates over a list's elements (`list_sum`, ...)."""

from __future__ import annotations

from flowc.compiler.codegen.rewrites.context import Context
from flowc.compiler.codegen.rewrites.trees import bottom_up, call, filled, is_list, literal_text
from sqlglot import exp


def list_length(tree: exp.Query, context: Context) -> None:
    """`len`/`length` of a list is its number of elements, 0 for an empty one: Postgres'
    `CARDINALITY` (its `array_length(l, 1)` is NULL for an empty array), BigQuery's
    `ARRAY_LENGTH` (sqlglot writes `LENGTH`, which measures strings)."""
    for node in bottom_up(tree, exp.Length, exp.ArraySize):
        value = node.this
        if isinstance(node, exp.Length) and not is_list(value):
            continue
        name = "CARDINALITY" if context.postgres else "ARRAY_LENGTH"
        node.replace(call(name, value.copy()))


_LIST_AGGREGATES = {
    "sum": "SUM",
    "avg": "AVG",
    "mean": "AVG",
    "min": "MIN",
    "max": "MAX",
    "count": "COUNT",
    "bool_and": "BOOL_AND",
    "bool_or": "BOOL_OR",
}


_LIST_CALLS = {"list_aggregate", "array_aggregate", "list_aggr", "array_aggr"}


def list_aggregates(tree: exp.Query, context: Context) -> None:
    """`list_aggregate(l, 'sum')`, `list_sum(l)`, ...: the aggregate over the list's
    elements, a subquery over `UNNEST(l)` on both engines (a NULL list counts NULL)."""
    for node in bottom_up(tree, exp.Anonymous):
        name = node.name.lower()
        args = node.expressions
        if name in _LIST_CALLS and len(args) == 2:
            function = literal_text(args[1])
            aggregate = _LIST_AGGREGATES.get((function or "").lower())
        elif name.startswith(("list_", "array_")) and len(args) == 1:
            aggregate = _LIST_AGGREGATES.get(name.split("_", 1)[1])
        else:
            continue
        if aggregate is None:
            continue
        template = f"(SELECT {aggregate}(_u) FROM UNNEST(__l) AS _l(_u))"
        if aggregate == "COUNT":
            template = f"CASE WHEN __l IS NULL THEN NULL ELSE {template} END"
        node.replace(filled(template, l=args[0]))
