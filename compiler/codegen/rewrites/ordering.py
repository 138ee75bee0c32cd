"""The order of rows and values: where NULLs sort, and text in code-point order.

BigQuery sorts NULLs first ascending inside windows and aggregates and takes no `NULLS LAST`
there; Postgres compares text by the database's collation. DuckDB's order is said explicitly.
"""

from __future__ import annotations

from flowc.compiler.codegen.rewrites.context import Context
from flowc.compiler.codegen.rewrites.trees import TEXTS, bottom_up, of_type
from sqlglot import exp


def null_order(tree: exp.Query, context: Context) -> None:
    """BigQuery puts NULLs first ascending and last descending, and takes no `NULLS
    FIRST/LAST` in the ORDER BY of an aggregate or of most windows; DuckDB puts them last
    unless told otherwise. Where the two differ there, an `x IS NULL` key sorts them."""
    if not context.bigquery:
        return
    for order in bottom_up(tree, exp.Order):
        owner = order.find_ancestor(exp.AggFunc, exp.Window, exp.Select)
        if isinstance(order.parent, exp.Window):
            owner = order.parent
        if not isinstance(owner, exp.AggFunc | exp.Window):
            continue
        keys: list[exp.Expr] = []
        for ordered in order.expressions:
            keys += _bigquery_keys(ordered, owner, context)
        order.set("expressions", keys)


def _bigquery_keys(ordered: exp.Expr, owner: exp.Expr, context: Context) -> list[exp.Expr]:
    if not isinstance(ordered, exp.Ordered):
        return [ordered]
    desc = bool(ordered.args.get("desc"))
    nulls_first = bool(ordered.args.get("nulls_first"))
    if nulls_first != desc:
        return [ordered]  # BigQuery's own order
    if isinstance(owner, exp.Window) and _value_frame(owner):
        context.refuse(
            ordered,
            "a NULL order other than BigQuery's in a RANGE frame with an offset",
            "sort NULLs as BigQuery does (first ascending, last descending), or filter them",
        )
        return [ordered]
    is_null = exp.Paren(this=exp.Is(this=ordered.this.copy(), expression=exp.Null()))
    first = exp.Ordered(this=is_null, desc=nulls_first, nulls_first=not nulls_first)
    second = ordered.copy()
    second.set("nulls_first", not desc)
    return [first, second]


def _value_frame(window: exp.Window) -> bool:
    spec = window.args.get("spec")
    if not isinstance(spec, exp.WindowSpec) or str(spec.args.get("kind", "")).upper() != "RANGE":
        return False
    bounds = (spec.args.get("start"), spec.args.get("end"))
    return any(isinstance(b, exp.Expr) and not isinstance(b, exp.Var) for b in bounds)


def text_order(tree: exp.Query, context: Context) -> None:
    """DuckDB orders text by code point; Postgres by the database's collation (`en_US`:
    `'ann' < 'Ann' < 'Émile'`). Sorting, comparing and min/max of text say `COLLATE
    "ucs_basic"` (code point order) on Postgres."""
    if not context.postgres:
        return
    ordered: list[exp.Expr] = bottom_up(tree, exp.Ordered, exp.Min, exp.Max)
    for node in [*ordered, *bottom_up(tree, exp.Greatest, exp.Least)]:
        if of_type(node.this, *TEXTS):
            node.this.replace(_collated(node.this.copy()))
    for select in bottom_up(tree, exp.Select):  # DISTINCT ON keys must match the ORDER BY's
        distinct, order = select.args.get("distinct"), select.args.get("order")
        on = distinct.args.get("on") if isinstance(distinct, exp.Distinct) else None
        if not isinstance(on, exp.Tuple) or not isinstance(order, exp.Order):
            continue
        collated = {
            o.this.this.sql(dialect="duckdb")
            for o in order.expressions
            if isinstance(o, exp.Ordered) and isinstance(o.this, exp.Collate)
        }
        for key in on.expressions:
            if key.sql(dialect="duckdb") in collated:
                key.replace(_collated(key.copy()))
    for comparison in bottom_up(tree, exp.LT, exp.LTE, exp.GT, exp.GTE, exp.Between):
        operands = [comparison.this, *(comparison.args.get(k) for k in ("expression", "low"))]
        if any(of_type(o, *TEXTS) for o in operands if o is not None):
            comparison.this.replace(_collated(comparison.this.copy()))


def _collated(node: exp.Expr) -> exp.Expr:
    collated = exp.Collate(this=node, expression=exp.Identifier(this="ucs_basic", quoted=False))
    collated.type = node.type
    return collated
