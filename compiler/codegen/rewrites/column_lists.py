"""Column-alias lists: `(q) AS t (a, b)` and `WITH t (a, b) AS (q)` on BigQuery, which has none.

The query is wrapped in one that renames its outputs; a table function's one column is named
by its alias; a recursive CTE's anchor renames its items in place (wrapping would break the
recursion).
"""

from __future__ import annotations

from flowc.compiler.codegen.rewrites.context import Context
from flowc.compiler.codegen.rewrites.outputs import (
    is_star,
    leftmost,
    name_outputs,
    output_names,
    select_from,
)
from flowc.compiler.codegen.rewrites.trees import bottom_up, column_ref, ident
from sqlglot import exp


def alias_column_lists(tree: exp.Query, context: Context) -> None:
    """BigQuery has no column list in a table alias: `(q) AS t (a, b)` becomes
    `(SELECT _q.x AS a, _q.y AS b, ... FROM (q) AS _q) AS t`, and so for a CTE; the first
    columns of `q` are renamed, the others keep their names (a star's from the schema)."""
    if not context.bigquery:
        return
    for alias in bottom_up(tree, exp.TableAlias):
        columns = alias.args.get("columns") or []
        holder = alias.parent
        if columns and holder is not None and _table_function(holder):
            _name_function_column(holder, alias, context)
            continue
        if not columns or not isinstance(holder, exp.Subquery | exp.CTE):
            continue
        query = holder.this
        if isinstance(holder, exp.CTE) and _recursive(holder):
            _rename_anchor(holder, alias, context)
            continue
        names = output_names(query)
        named = name_outputs(query, names, context) if names is not None else None
        if named is None or len(columns) > len(named):
            context.refuse(
                columns[0],
                "a column-alias list over columns that cannot all be named",
                "name the columns in the query itself (`SELECT x AS a, ...`)",
            )
            alias.set("columns", None)  # refused once: sqlglot need not refuse it again
            continue
        inner = context.fresh("_q")
        renamed = [c.name for c in columns] + named[len(columns) :]
        items = [
            exp.alias_(column_ref(old, inner), new, quoted=False)
            if old != new
            else column_ref(old, inner)
            for old, new in zip(named, renamed, strict=True)
        ]
        holder.set("this", select_from(items, query, inner))
        alias.set("columns", None)


def _table_function(holder: exp.Expr | None) -> bool:
    return isinstance(holder, exp.Table) and isinstance(holder.this, exp.Func)


def _name_function_column(table: exp.Expr, alias: exp.TableAlias, context: Context) -> None:
    """`FROM range(1, 4) AS t (i)`: BigQuery names the one column of an UNNEST by its
    alias, so the function is selected from as `i` inside a subquery named `t`."""
    columns = alias.args.get("columns") or []
    if len(columns) != 1:
        context.refuse(
            columns[0], "a column-alias list of several columns on a table function", _NAME_HINT
        )
        alias.set("columns", None)
        return
    name = columns[0].name
    inner = exp.Table(this=table.this.copy(), alias=exp.TableAlias(this=ident(name)))
    select = exp.Select(expressions=[column_ref(name)]).from_(inner, copy=False)
    table.replace(exp.Subquery(this=select, alias=exp.TableAlias(this=alias.this.copy())))


def _recursive(cte: exp.CTE) -> bool:
    with_ = cte.parent
    return isinstance(with_, exp.With) and bool(with_.args.get("recursive"))


def _rename_anchor(cte: exp.CTE, alias: exp.TableAlias, context: Context) -> None:
    """A recursive CTE's outputs are named by its anchor (the union's first select): the
    alias list renames its items in place (wrapping would break the recursion)."""
    columns = alias.args.get("columns") or []
    anchor = leftmost(cte.this)
    if (
        anchor is None
        or len(anchor.expressions) < len(columns)
        or any(is_star(item) for item in anchor.expressions[: len(columns)])
    ):
        context.refuse(columns[0], "a column-alias list on this recursive CTE", _NAME_HINT)
        alias.set("columns", None)
        return
    for item, column in zip(anchor.expressions, columns, strict=False):
        inner = item.this if isinstance(item, exp.Alias) else item
        item.replace(exp.alias_(inner.copy(), column.name, quoted=False))
    alias.set("columns", None)


_NAME_HINT = "name the columns in the query itself (`SELECT x AS a, ...`)"
