"""Clauses DuckDB reads its own way: `GROUP BY ALL`, `ORDER BY ALL`, `LIMIT n%`.

`ALL` becomes the positions it means (every engine reads positions as the select items); a
limit by a share of the rows has no equivalent and is refused.
"""

from __future__ import annotations

from collections.abc import Iterator

from flowc.compiler.codegen.annotate import OUTPUTS
from flowc.compiler.codegen.rewrites.context import Context
from flowc.compiler.codegen.rewrites.outputs import is_star, output_names
from flowc.compiler.codegen.rewrites.trees import bottom_up
from sqlglot import exp


def group_by_all(tree: exp.Query, context: Context) -> None:
    """`GROUP BY ALL` groups by every select item without an aggregate (or a window) that
    is not a constant, a star's columns included; none left: no grouping at all (DuckDB's
    reading). Positions, which every engine reads as the select items (a star's columns
    counted one by one)."""
    for select in bottom_up(tree, exp.Select):
        group = select.args.get("group")
        if not isinstance(group, exp.Group) or not group.args.get("all"):
            continue
        widths = _widths(select)
        if widths is None:
            continue  # codegen refuses it on Postgres; BigQuery has GROUP BY ALL
        keys: list[exp.Expr] = []
        position = 0
        for item, width in zip(select.expressions, widths, strict=True):
            if not _aggregates(item) and not _constant(item):
                keys += [exp.Literal.number(position + i) for i in range(1, width + 1)]
            position += width
        select.set("group", exp.Group(expressions=keys) if keys else None)


def _widths(select: exp.Select) -> list[int] | None:
    """How many columns each select item outputs (a star: its columns'), if known."""
    stars = [is_star(item) for item in select.expressions]
    if not any(stars):
        return [1] * len(stars)
    names = select.meta.get(OUTPUTS)
    if names is None or sum(stars) != 1:
        return None
    return [len(names) - len(stars) + 1 if star else 1 for star in stars]


def _aggregates(item: exp.Expr) -> bool:
    """Whether an item holds an aggregate or a window function of its own select."""
    return any(isinstance(node, exp.AggFunc | exp.Window) for node in _in_select(item))


def _in_select(item: exp.Expr) -> Iterator[exp.Expr]:
    """The nodes of `item` outside its subqueries."""
    stack = [item]
    while stack:
        node = stack.pop()
        yield node
        for child in node.iter_expressions():
            if not isinstance(child, exp.Query | exp.Subquery):
                stack.append(child)


def _constant(item: exp.Expr) -> bool:
    inner = item.this if isinstance(item, exp.Alias) else item
    return not any(isinstance(n, exp.Column) for n in _in_select(inner)) and not any(
        isinstance(n, exp.Func) for n in _in_select(inner)
    )


def order_by_all(tree: exp.Query, context: Context) -> None:
    """`ORDER BY ALL` sorts by every output column, left to right."""
    for order in bottom_up(tree, exp.Order):
        keys = order.expressions
        if len(keys) != 1 or not _is_all(keys[0].this):
            continue
        query = order.parent
        names = output_names(query) if isinstance(query, exp.Query) else None
        if names is None:
            continue  # codegen refuses it
        only = keys[0]
        order.set(
            "expressions",
            [
                exp.Ordered(
                    this=exp.Literal.number(i),
                    desc=only.args.get("desc"),
                    nulls_first=only.args.get("nulls_first"),
                )
                for i in range(1, len(names) + 1)
            ],
        )


def _is_all(part: exp.Expr | None) -> bool:
    return isinstance(part, exp.Var | exp.Column) and part.name.upper() == "ALL"


def limit_percent(tree: exp.Query, context: Context) -> None:
    """`LIMIT 10%`: neither Postgres nor BigQuery limits by a share of the rows."""
    for node in bottom_up(tree, exp.Limit):
        options = node.args.get("limit_options")
        if isinstance(options, exp.LimitOptions) and options.args.get("percent"):
            context.refuse(
                node,
                "`LIMIT ... %`",
                "number the rows (`ROW_NUMBER() OVER (...)`) and keep a share by count",
                words=r"\bLIMIT\b",
            )
