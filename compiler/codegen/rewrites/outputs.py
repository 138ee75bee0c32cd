"""The output columns of a query, and giving each a name that can be referenced.

Rewrites that wrap a query (column-alias lists, DISTINCT ON, UNION BY NAME) select its
outputs by name from outside; these helpers find the names and alias unnamed items.
"""

from __future__ import annotations

from collections.abc import Sequence

from flowc.compiler.codegen.annotate import OUTPUTS
from flowc.compiler.codegen.rewrites.context import Context
from flowc.compiler.codegen.rewrites.trees import ident
from sqlglot import exp


def output_names(query: exp.Expr) -> tuple[str | None, ...] | None:
    """The output names of a query: from the typing pass (stars expanded), else from its
    select list when it has no star; None when they cannot be known."""
    while isinstance(query, exp.Subquery):
        query = query.this
    if not isinstance(query, exp.Query):
        return None
    found = query.meta.get(OUTPUTS)
    if found is not None:
        return tuple(found)
    select = leftmost(query)
    if select is None or any(is_star(item) for item in select.expressions):
        return None
    return tuple(_item_name(item) for item in select.expressions)


def leftmost(query: exp.Expr) -> exp.Select | None:
    while isinstance(query, exp.SetOperation | exp.Subquery):
        query = query.this
    return query if isinstance(query, exp.Select) else None


def is_star(item: exp.Expr) -> bool:
    return isinstance(item, exp.Star) or (isinstance(item, exp.Column) and item.is_star)


def _item_name(item: exp.Expr) -> str | None:
    if isinstance(item, exp.Alias):
        return item.alias or None
    if isinstance(item, exp.Column):
        return item.name
    return None


def select_from(items: Sequence[exp.Expr], query: exp.Expr, alias: str) -> exp.Select:
    """`SELECT items FROM (query) AS alias`."""
    subquery = exp.Subquery(this=query, alias=exp.TableAlias(this=ident(alias)))
    return exp.Select(expressions=list(items)).from_(subquery, copy=False)


def name_outputs(
    query: exp.Expr, names: Sequence[str | None], context: Context
) -> list[str] | None:
    """Names for every output of `query` that can be referenced from outside: unnamed
    items of its (leftmost) select list are given an alias; None when an output cannot be
    named (an unnamed column of a star, duplicated names)."""
    select = leftmost(query)
    found: list[str] = []
    for index, name in enumerate(names):
        if name is None:
            if select is None or index >= len(select.expressions):
                return None
            item = select.expressions[index]
            if is_star(item):
                return None
            name = context.fresh(f"_col{index}")
            item.replace(exp.alias_(item.copy(), name, quoted=False))
        found.append(name)
    if len({n.lower() for n in found}) != len(found):
        return None
    return found


def replace_query(old: exp.Expr, new: exp.Expr) -> None:
    """`old` replaced by `new`; the root of the tree is changed in place (its holder keeps
    the tree)."""
    if old.parent is not None:
        old.replace(new)
        return
    for key in list(old.args):
        old.set(key, None)
    for key, value in new.args.items():
        old.set(key, value)
    old.meta.update(new.meta)
