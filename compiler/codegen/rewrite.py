"""Dialect rewrites: what a DuckDB construct means, said in the target's SQL, before codegen.

sqlglot translates function names and syntax; it does not know what a construct means when
the types or the shape of the data decide it. These rules do, after names are resolved and
the tree is typed (`compiler/codegen/annotate.py`), in place on the tree that codegen then
generates. Each rule is a plain function of (tree, context), listed once in `RULES`, in the
order they run; each rewrites what it can into SQL every later step (and sqlglot) handles,
and reports what it cannot as a `Refusal` at the construct's position (F0308). What a rule
leaves alone, codegen's own checks see next (`codegen._LACKING`).

The reference is DuckDB: a query means on Postgres and BigQuery what it means on DuckDB, with
the same rows, the same column names and, where the engines have them, the same types:

- column-alias lists (`(...) AS t (a, b)`, `WITH t (a, b) AS`): BigQuery has none; the
  query is wrapped in one that renames its outputs;
- `UNION [ALL] BY NAME`: both sides selected in the order of the output, missing columns
  NULL (DuckDB's meaning; Postgres has no BY NAME, BigQuery's wants the same names on both);
- `GROUP BY ALL`, `ORDER BY ALL`: the grouping / sorting columns listed by position;
- NULL order in the `ORDER BY` of a window or an aggregate (BigQuery sorts NULLs first
  ascending and has no `NULLS LAST` there): an `x IS NULL` key in front;
- arithmetic: DuckDB's `/` is float division on every numeric type, `//` integer division
  of integers, `%` of doubles C's `fmod`, `ROUND` of a double rounds half away from zero
  (Postgres rounds half to even and has no `round(double, int)`), `avg` is a double;
- functions whose name sqlglot keeps but whose meaning differs (`contains`, `greatest`,
  `regexp_replace`, ...), or which it writes as functions the target lacks (`make_date`,
  `len` of a list, `list_aggregate`, `regexp_full_match`, `printf`, ...);
- DuckDB-only types in casts (`HUGEINT`, unsigned integers, `UNION`).

The rules run only for a DuckDB-dialect spec on another engine (the reference is DuckDB's
meaning); a spec written in another dialect is translated by sqlglot alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TypeVar

import sqlglot
from flowc.compiler.codegen.annotate import OUTPUTS, Schemas, annotate, type_name
from sqlglot import exp


@dataclass(frozen=True)
class Refusal:
    """A construct the target cannot express: `part` locates it (its first positioned node,
    or with `words` the last match of that regex before it), `what` names it."""

    part: exp.Expr
    what: str
    hint: str
    words: str | None = None


@dataclass
class Context:
    source: str
    target: str
    refusals: list[Refusal] = field(default_factory=list)
    typed: bool = False
    taken: set[str] = field(default_factory=set)  # names in use, for fresh aliases

    @property
    def bigquery(self) -> bool:
        return self.target == "bigquery"

    @property
    def postgres(self) -> bool:
        return self.target == "postgres"

    def refuse(self, part: exp.Expr, what: str, hint: str, words: str | None = None) -> None:
        self.refusals.append(Refusal(part, what, hint, words))

    def fresh(self, base: str) -> str:
        """An alias no name of the query uses."""
        name, suffix = base, 1
        while name in self.taken:
            suffix += 1
            name = f"{base}_{suffix}"
        self.taken.add(name)
        return name


Rule = Callable[[exp.Query, Context], None]
Node = TypeVar("Node", bound=exp.Expr)


def rewrite(tree: exp.Query, source: str, target: str, schemas: Schemas) -> list[Refusal]:
    """Rewrite `tree` (written in `source`) in place so that `target` computes what `source`
    would; what cannot be said in `target` is returned.

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("SELECT ROUND(x / n, 2) AS r FROM t", read="duckdb")
    >>> rewrite(tree, "duckdb", "bigquery", {"t": [("x", "decimal(10, 2)"), ("n", "int")]})
    []
    >>> tree.sql("bigquery")
    'SELECT ROUND(CAST(x AS FLOAT64) / n, 2) AS r FROM t'
    """
    if source != "duckdb" or target == source:
        return []
    context = Context(source, target)
    context.taken = {i.name.lower() for i in tree.find_all(exp.Identifier)}
    context.typed = annotate(tree, schemas, source)
    for rule in RULES:
        rule(tree, context)
    return context.refusals


# --- helpers ----------------------------------------------------------------------------


def _bottom_up(tree: exp.Expr, *kinds: type[Node]) -> list[Node]:
    """The nodes of `kinds` in `tree`, innermost first (a rewrite of an inner one is done
    before the outer one reads it)."""
    return [n for n in tree.walk(bfs=False) if isinstance(n, kinds)][::-1]


def _is(node: exp.Expr | None, *kinds: exp.DType) -> bool:
    return node is not None and node.type is not None and node.type.is_type(*kinds)


def _known(node: exp.Expr | None) -> bool:
    return (
        node is not None
        and node.type is not None
        and not node.type.is_type(exp.DType.UNKNOWN, exp.DType.NULL)
    )


def _not_number(node: exp.Expr | None) -> bool:
    return _known(node) and not _is(node, *_NUMBERS)


_FLOATS = (exp.DType.DOUBLE, exp.DType.FLOAT)
_INTEGERS = tuple(exp.DataType.INTEGER_TYPES)
_DECIMALS = (
    exp.DType.DECIMAL,
    exp.DType.BIGDECIMAL,
    exp.DType.DECIMAL32,
    exp.DType.DECIMAL64,
    exp.DType.DECIMAL128,
    exp.DType.DECIMAL256,
)
_NUMBERS = (*_FLOATS, *_INTEGERS, *_DECIMALS)
# DuckDB's TIMESTAMP (BigQuery's DATETIME), and its TIMESTAMPTZ (BigQuery's TIMESTAMP)
_NAIVE = (exp.DType.TIMESTAMP, exp.DType.TIMESTAMPNTZ, exp.DType.DATETIME)
_AWARE = (exp.DType.TIMESTAMPTZ, exp.DType.TIMESTAMPLTZ)


def _double(node: exp.Expr) -> exp.Cast:
    cast = exp.Cast(this=node, to=exp.DataType.build("double"))
    cast.type = exp.DataType.build("double")
    return cast


def _typed(node: Node, kind: str) -> Node:
    node.type = exp.DataType.build(kind)
    return node


def _ident(name: str) -> exp.Identifier:
    return exp.Identifier(this=name, quoted=False)


def _column(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=_ident(name), table=_ident(table) if table else None)


def _outputs(query: exp.Expr) -> tuple[str | None, ...] | None:
    """The output names of a query: from the typing pass (stars expanded), else from its
    select list when it has no star; None when they cannot be known."""
    while isinstance(query, exp.Subquery):
        query = query.this
    if not isinstance(query, exp.Query):
        return None
    found = query.meta.get(OUTPUTS)
    if found is not None:
        return tuple(found)
    select = _leftmost(query)
    if select is None or any(_star(item) for item in select.expressions):
        return None
    return tuple(_item_name(item) for item in select.expressions)


def _leftmost(query: exp.Expr) -> exp.Select | None:
    while isinstance(query, exp.SetOperation | exp.Subquery):
        query = query.this
    return query if isinstance(query, exp.Select) else None


def _star(item: exp.Expr) -> bool:
    return isinstance(item, exp.Star) or (isinstance(item, exp.Column) and item.is_star)


def _item_name(item: exp.Expr) -> str | None:
    if isinstance(item, exp.Alias):
        return item.alias or None
    if isinstance(item, exp.Column):
        return item.name
    return None


def _select_from(items: Sequence[exp.Expr], query: exp.Expr, alias: str) -> exp.Select:
    """`SELECT items FROM (query) AS alias`."""
    subquery = exp.Subquery(this=query, alias=exp.TableAlias(this=_ident(alias)))
    return exp.Select(expressions=list(items)).from_(subquery, copy=False)


def _named(query: exp.Expr, names: Sequence[str | None], context: Context) -> list[str] | None:
    """Names for every output of `query` that can be referenced from outside: unnamed
    items of its (leftmost) select list are given an alias; None when an output cannot be
    named (an unnamed column of a star, duplicated names)."""
    select = _leftmost(query)
    found: list[str] = []
    for index, name in enumerate(names):
        if name is None:
            if select is None or index >= len(select.expressions):
                return None
            item = select.expressions[index]
            if _star(item):
                return None
            name = context.fresh(f"_col{index}")
            item.replace(exp.alias_(item.copy(), name, quoted=False))
        found.append(name)
    if len({n.lower() for n in found}) != len(found):
        return None
    return found


# --- column-alias lists -------------------------------------------------------------------


def alias_column_lists(tree: exp.Query, context: Context) -> None:
    """BigQuery has no column list in a table alias: `(q) AS t (a, b)` becomes
    `(SELECT _q.x AS a, _q.y AS b, ... FROM (q) AS _q) AS t`, and so for a CTE; the first
    columns of `q` are renamed, the others keep their names (a star's from the schema)."""
    if not context.bigquery:
        return
    for alias in _bottom_up(tree, exp.TableAlias):
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
        names = _outputs(query)
        named = _named(query, names, context) if names is not None else None
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
            exp.alias_(_column(old, inner), new, quoted=False)
            if old != new
            else _column(old, inner)
            for old, new in zip(named, renamed, strict=True)
        ]
        holder.set("this", _select_from(items, query, inner))
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
    inner = exp.Table(this=table.this.copy(), alias=exp.TableAlias(this=_ident(name)))
    select = exp.Select(expressions=[_column(name)]).from_(inner, copy=False)
    table.replace(exp.Subquery(this=select, alias=exp.TableAlias(this=alias.this.copy())))


def _recursive(cte: exp.CTE) -> bool:
    with_ = cte.parent
    return isinstance(with_, exp.With) and bool(with_.args.get("recursive"))


def _rename_anchor(cte: exp.CTE, alias: exp.TableAlias, context: Context) -> None:
    """A recursive CTE's outputs are named by its anchor (the union's first select): the
    alias list renames its items in place (wrapping would break the recursion)."""
    columns = alias.args.get("columns") or []
    anchor = _leftmost(cte.this)
    if (
        anchor is None
        or len(anchor.expressions) < len(columns)
        or any(_star(item) for item in anchor.expressions[: len(columns)])
    ):
        context.refuse(columns[0], "a column-alias list on this recursive CTE", _NAME_HINT)
        alias.set("columns", None)
        return
    for item, column in zip(anchor.expressions, columns, strict=False):
        inner = item.this if isinstance(item, exp.Alias) else item
        item.replace(exp.alias_(inner.copy(), column.name, quoted=False))
    alias.set("columns", None)


_NAME_HINT = "name the columns in the query itself (`SELECT x AS a, ...`)"


# --- DISTINCT ON -----------------------------------------------------------------------------


def distinct_on(tree: exp.Query, context: Context) -> None:
    """BigQuery has no `DISTINCT ON`: the first row of each key in the ORDER BY's order is
    the one numbered 1 (`ROW_NUMBER() OVER (PARTITION BY key ORDER BY ...)`), and the ORDER
    BY, LIMIT and OFFSET apply to those rows (sqlglot's own rewrite drops the ORDER BY and
    limits the rows before picking them)."""
    if not context.bigquery:
        return
    for select in _bottom_up(tree, exp.Select):
        distinct = select.args.get("distinct")
        on = distinct.args.get("on") if isinstance(distinct, exp.Distinct) else None
        if on is None:
            continue
        names = _outputs(select)
        named = _named(select, names, context) if names is not None else None
        if named is None:
            context.refuse(
                on,
                "`DISTINCT ON` over columns that cannot all be named",
                "list the columns (or compute the first rows with ROW_NUMBER())",
            )
            continue
        _replace_query(select, _first_rows(select, on, named, context))


def _replace_query(old: exp.Expr, new: exp.Expr) -> None:
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
        outer.append(exp.Ordered(this=_column(name, alias), **flags))
    rows = _select_from([_column(n, alias) for n in named], inner, alias)
    first = exp.EQ(this=_column(number, alias), expression=exp.Literal.number(1))
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


# --- UNION BY NAME ------------------------------------------------------------------------


def union_by_name(tree: exp.Query, context: Context) -> None:
    """DuckDB's `UNION [ALL] BY NAME` matches columns by name, the output has the left
    side's columns and then the right side's new ones, NULL where a side lacks a column:
    both sides become selects of the output columns in that order."""
    for union in _bottom_up(tree, exp.SetOperation):
        if not union.args.get("by_name"):
            continue
        left, right = _outputs(union.this), _outputs(union.expression)
        left_named = _named(union.this, left, context) if left is not None else None
        right_named = _named(union.expression, right, context) if right is not None else None
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
            items.append(_column(have[name.lower()], alias))
        else:
            items.append(exp.alias_(exp.Null(), name, quoted=False))
    query = side.this if isinstance(side, exp.Subquery) else side
    select = _select_from(items, query, alias)
    select.meta[OUTPUTS] = tuple(output)
    return select


# --- GROUP BY ALL, ORDER BY ALL -------------------------------------------------------------


def group_by_all(tree: exp.Query, context: Context) -> None:
    """`GROUP BY ALL` groups by every select item without an aggregate (or a window) that
    is not a constant, a star's columns included; none left: no grouping at all (DuckDB's
    reading). Positions, which every engine reads as the select items (a star's columns
    counted one by one)."""
    for select in _bottom_up(tree, exp.Select):
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
    stars = [_star(item) for item in select.expressions]
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
    for order in _bottom_up(tree, exp.Order):
        keys = order.expressions
        if len(keys) != 1 or not _is_all(keys[0].this):
            continue
        query = order.parent
        names = _outputs(query) if isinstance(query, exp.Query) else None
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


# --- NULL order in windows and aggregates -----------------------------------------------------


def null_order(tree: exp.Query, context: Context) -> None:
    """BigQuery puts NULLs first ascending and last descending, and takes no `NULLS
    FIRST/LAST` in the ORDER BY of an aggregate or of most windows; DuckDB puts them last
    unless told otherwise. Where the two differ there, an `x IS NULL` key sorts them."""
    if not context.bigquery:
        return
    for order in _bottom_up(tree, exp.Order):
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


# --- arithmetic ---------------------------------------------------------------------------


def division(tree: exp.Query, context: Context) -> None:
    """DuckDB's `/` divides as doubles (integers and decimals alike); Postgres divides
    integers as integers and BigQuery decimals as NUMERIC (nine decimal places): the
    dividend is cast to double, unless the division is a double's already."""
    for div in _bottom_up(tree, exp.Div):
        left, right = div.this, div.expression
        if _is(left, *_FLOATS) or _is(right, *_FLOATS):
            continue
        if _not_number(left) or _not_number(right):
            continue  # an interval, say: not DuckDB's number division
        if context.bigquery and _is(left, *_INTEGERS) and _is(right, *_INTEGERS):
            continue  # BigQuery divides INT64 as FLOAT64
        left.replace(_double(left.copy()))


def integer_division(tree: exp.Query, context: Context) -> None:
    """DuckDB's `//` truncates only integers: of a double or a decimal it is `/`."""
    for div in _bottom_up(tree, exp.IntDiv):
        left, right = div.this, div.expression
        if _is(left, *_INTEGERS) and _is(right, *_INTEGERS):
            if context.postgres:  # Postgres' `/` of integers truncates, and keeps the type
                div.replace(exp.Div(this=left.copy(), expression=right.copy(), typed=True))
            continue
        if _is(left, *_FLOATS, *_DECIMALS) or _is(right, *_FLOATS, *_DECIMALS):
            div.replace(
                _typed(exp.Div(this=_double(left.copy()), expression=right.copy()), "double")
            )
            continue
        context.refuse(
            div,
            "`//` of operands whose types flowc cannot tell (DuckDB truncates only integers)",
            "cast the operands: `CAST(a AS BIGINT) // b`, or divide with `/`",
        )


def modulo(tree: exp.Query, context: Context) -> None:
    """`%` of a double is C's `fmod` on DuckDB: Postgres has no `%` of doubles, BigQuery no
    `MOD` of FLOAT64. Integers and decimals agree on every engine (the sign of the
    dividend)."""
    for mod in _bottom_up(tree, exp.Mod):
        left, right = mod.this, mod.expression
        if not (_is(left, *_FLOATS) or _is(right, *_FLOATS)):
            continue
        if context.postgres:
            numeric = exp.DataType.build("decimal")
            pair = (exp.Cast(this=left.copy(), to=numeric), exp.Cast(this=right.copy(), to=numeric))
            mod.replace(_double(exp.Mod(this=pair[0], expression=pair[1])))
        else:
            quotient = exp.Anonymous(
                this="TRUNC", expressions=[exp.Div(this=left.copy(), expression=right.copy())]
            )
            product = exp.Mul(this=exp.Paren(this=right.copy()), expression=quotient)
            mod.replace(exp.Paren(this=exp.Sub(this=left.copy(), expression=product)))


def rounding(tree: exp.Query, context: Context) -> None:
    """DuckDB rounds a double's exact binary value half away from zero (`round(2.675, 2)` is
    2.67: the double is 2.67499999...). Postgres has no `round(double precision, int)`,
    rounds a double half to even and converts one to `numeric` with 15 digits; BigQuery's
    rounding of FLOAT64 is its own. So the rounding is written out in doubles: the scaled
    value's rounding error is recovered exactly (Dekker's product), and decides the halves.
    On Postgres, an operand of unknown type or digits that are no constant go through
    `numeric` (exact for integers and decimals)."""
    for node in _bottom_up(tree, exp.Round):
        value, digits = node.this, node.args.get("decimals")
        constant = digits is None or (isinstance(digits, exp.Literal) and digits.is_int)
        if _is(value, *_FLOATS) and constant:
            node.replace(_round_double(value, int(digits.this) if digits else 0))
        elif context.postgres and (not _known(value) or _is(value, *_FLOATS)):
            numeric = exp.Cast(this=value.copy(), to=exp.DataType.build("decimal"))
            rounded = exp.Round(this=numeric, decimals=digits.copy() if digits else None)
            node.replace(_double(rounded))


# `__x` the double, `__p` 10^n as a double (n <= 11: 5^n has at most 26 bits, so that the
# split halves of `:x` times `:p` are exact products and `e` is the exact error of x * p).
_ROUND_EXACT = """
CASE WHEN ABS(__x * __p) >= CAST(4503599627370496 AS DOUBLE) THEN __x
ELSE SIGN(__x * __p) * (FLOOR(ABS(__x * __p)) + CASE
  WHEN ABS(__x * __p) - FLOOR(ABS(__x * __p)) - CAST(0.5 AS DOUBLE) >= -SIGN(__x * __p) * (
    ((CAST(134217729 AS DOUBLE) * __x - (CAST(134217729 AS DOUBLE) * __x - __x)) * __p
      - __x * __p)
    + (__x - (CAST(134217729 AS DOUBLE) * __x - (CAST(134217729 AS DOUBLE) * __x - __x)))
      * __p)
  THEN 1 ELSE 0 END) / __p
END"""
_ROUND_WHOLE = """SIGN(__x) * (FLOOR(ABS(__x)) + CASE
  WHEN ABS(__x) - FLOOR(ABS(__x)) >= CAST(0.5 AS DOUBLE) THEN 1 ELSE 0 END)"""


def _round_double(value: exp.Expr, digits: int) -> exp.Expr:
    if digits == 0:
        return _double_typed(_filled(_ROUND_WHOLE, x=value))
    scale = _double(exp.Literal.number(10 ** abs(digits)))
    if 0 < digits <= 11:
        return _double_typed(_filled(_ROUND_EXACT, x=value, p=scale))
    if digits > 0:  # beyond 11 digits a double has few left to round: C's formula
        up = _typed(exp.Mul(this=exp.Paren(this=value.copy()), expression=scale), "double")
        return exp.Div(this=_double_typed(_filled(_ROUND_WHOLE, x=up)), expression=scale.copy())
    down = _typed(exp.Div(this=exp.Paren(this=value.copy()), expression=scale), "double")
    return exp.Mul(this=_double_typed(_filled(_ROUND_WHOLE, x=down)), expression=scale.copy())


def _double_typed(node: Node) -> Node:
    return _typed(node, "double")


@cache
def _template(text: str, dialect: str) -> exp.Expr:
    return sqlglot.parse_one(text, read=dialect)


def _filled(template: str, dialect: str = "duckdb", **values: exp.Expr) -> exp.Expr:
    """An expression of `dialect` with each column `__name` replaced by (a copy of)
    `values[name]`, in parentheses."""
    tree = _template(template, dialect).copy()
    for column in list(tree.find_all(exp.Column)):
        if column.name.startswith("__") and not column.table:
            column.replace(exp.Paren(this=values[column.name[2:]].copy()))
    return exp.Paren(this=tree)


def averages(tree: exp.Query, context: Context) -> None:
    """DuckDB's `avg` (and the variance family) of integers or decimals is a double;
    Postgres' is a `numeric` of any scale, BigQuery's of a NUMERIC a NUMERIC rounded to
    nine places: the average is taken as Postgres and BigQuery take it exactly (BigQuery:
    of BIGNUMERIC), then cast to double."""
    kinds = (exp.Avg, exp.Stddev, exp.StddevPop, exp.StddevSamp, exp.Variance, exp.VariancePop)
    for node in _bottom_up(tree, *kinds):
        value = node.this
        if _is(value, *_FLOATS) or _not_number(value):
            continue
        if isinstance(value, exp.Distinct) or (context.bigquery and _is(value, *_INTEGERS)):
            continue  # BigQuery's average of INT64 is a FLOAT64 already
        if context.bigquery and not _is(value, *_DECIMALS):
            value.replace(_double(value.copy()))  # unknown: whatever it is, as a double
            continue
        if context.bigquery:
            value.replace(exp.Cast(this=value.copy(), to=exp.DataType.build("bigdecimal")))
        outer: exp.Expr = node
        while isinstance(outer.parent, exp.Window | exp.Filter):
            outer = outer.parent
        outer.replace(_double(outer.copy()))


# --- functions ------------------------------------------------------------------------------


def _call(name: str, *args: exp.Expr) -> exp.Anonymous:
    """A call the target spells `name` (written as is)."""
    return exp.Anonymous(this=name, expressions=list(args))


def _text(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def _literal_text(node: exp.Expr | None) -> str | None:
    return node.this if isinstance(node, exp.Literal) and node.is_string else None


def _positive_int(node: exp.Expr | None) -> int | None:
    if isinstance(node, exp.Literal) and node.is_int and int(node.this) > 0:
        return int(node.this)
    return None


_LISTS = (exp.Array, exp.Split, exp.ArrayAgg, exp.RegexpSplit, exp.ArrayConcat, exp.GenerateSeries)


def _is_list(node: exp.Expr) -> bool:
    """Whether `node` is a list: typed so, or made by a function that makes lists."""
    return _is(node, exp.DType.ARRAY) or isinstance(node, _LISTS)


def make_date(tree: exp.Query, context: Context) -> None:
    """Postgres spells DuckDB's `make_date(y, m, d)` the same, with integers (sqlglot
    writes `DATE_FROM_PARTS`, which it lacks)."""
    if not context.postgres:
        return
    for node in _bottom_up(tree, exp.DateFromParts):
        parts = [node.args.get(k) for k in ("year", "month", "day")]
        if any(p is None for p in parts):
            continue
        args = [
            p.copy() if _is(p, exp.DType.INT) else exp.Cast(this=p.copy(), to=_INT)
            for p in parts
            if p is not None
        ]
        node.replace(_call("MAKE_DATE", *args))


_INT = exp.DataType.build("int")


def list_length(tree: exp.Query, context: Context) -> None:
    """`len`/`length` of a list is its number of elements, 0 for an empty one: Postgres'
    `CARDINALITY` (its `array_length(l, 1)` is NULL for an empty array), BigQuery's
    `ARRAY_LENGTH` (sqlglot writes `LENGTH`, which measures strings)."""
    for node in _bottom_up(tree, exp.Length, exp.ArraySize):
        value = node.this
        if isinstance(node, exp.Length) and not _is_list(value):
            continue
        name = "CARDINALITY" if context.postgres else "ARRAY_LENGTH"
        node.replace(_call(name, value.copy()))


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
    for node in _bottom_up(tree, exp.Anonymous):
        name = node.name.lower()
        args = node.expressions
        if name in _LIST_CALLS and len(args) == 2:
            function = _literal_text(args[1])
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
        node.replace(_filled(template, l=args[0]))


def full_match(tree: exp.Query, context: Context) -> None:
    """`regexp_full_match(s, p)` and DuckDB's `s SIMILAR TO p` (a regular expression
    matching the whole string; Postgres' SIMILAR TO is SQL's own pattern language): a match
    of the anchored pattern."""
    for node in _bottom_up(tree, exp.RegexpFullMatch, exp.SimilarTo):
        pattern = node.expression
        written = _literal_text(pattern)
        anchored: exp.Expr
        if written is not None:
            anchored = _text(f"^(?:{written})$")
        else:
            anchored = exp.DPipe(
                this=exp.DPipe(this=_text("^(?:"), expression=pattern.copy()),
                expression=_text(")$"),
            )
        node.replace(exp.RegexpLike(this=node.this.copy(), expression=anchored))


def contains(tree: exp.Query, context: Context) -> None:
    """DuckDB's `contains(s, sub)` is a case-sensitive substring test (BigQuery's
    `CONTAINS_SUBSTR` folds case and accents; Postgres has none); of a list, whether it
    holds the value."""
    for node in _bottom_up(tree, exp.Contains):
        value, part = node.this, node.expression
        if _is_list(value):
            node.replace(exp.ArrayContains(this=value.copy(), expression=part.copy()))
            continue
        position = exp.StrPosition(this=value.copy(), substr=part.copy())
        node.replace(exp.Paren(this=exp.GT(this=position, expression=exp.Literal.number(0))))


def null_strings(tree: exp.Query, context: Context) -> None:
    """A NULL string has no position and no parts (DuckDB's `strpos`, `string_split`): on
    BigQuery the NULL is said outright (the emulator's INSTR and SPLIT of NULL are 0 and
    [], where DuckDB and GoogleSQL agree on NULL)."""
    if not context.bigquery:
        return
    for node in _bottom_up(tree, exp.StrPosition, exp.Split):
        operands = [node.this, node.args.get("substr") or node.args.get("expression")]
        tests = [exp.Is(this=o.copy(), expression=exp.Null()) for o in operands if o is not None]
        if not tests or all(isinstance(o, exp.Literal) for o in operands if o is not None):
            continue
        guard = tests[0] if len(tests) == 1 else exp.Or(this=tests[0], expression=tests[1])
        node.replace(exp.If(this=guard, true=exp.Null(), false=node.copy()))


def ends_with(tree: exp.Query, context: Context) -> None:
    """Postgres has `starts_with` but no `ends_with`."""
    if not context.postgres:
        return
    for node in _bottom_up(tree, exp.EndsWith):
        template = "RIGHT(__s, LENGTH(__t)) = __t"
        node.replace(_filled(template, s=node.this, t=node.expression))


def greatest_least(tree: exp.Query, context: Context) -> None:
    """DuckDB's `greatest`/`least` skip NULLs (NULL only when every argument is); BigQuery's
    are NULL when any is: each argument stands in for the NULL ones."""
    if not context.bigquery:
        return
    for node in _bottom_up(tree, exp.Greatest, exp.Least):
        args = [node.this, *node.expressions]
        if len(args) < 2:
            continue
        filled = [
            exp.Coalesce(this=a.copy(), expressions=[b.copy() for b in args if b is not a])
            for a in args
        ]
        node.replace(type(node)(this=filled[0], expressions=filled[1:]))


def count_if(tree: exp.Query, context: Context) -> None:
    """DuckDB's `count_if` of no rows is NULL, BigQuery's `COUNTIF` 0 (Postgres gets
    sqlglot's `SUM(CASE ...)`, which is DuckDB's)."""
    if not context.bigquery:
        return
    for node in _bottom_up(tree, exp.CountIf):
        case = exp.If(
            this=node.this.copy(), true=exp.Literal.number(1), false=exp.Literal.number(0)
        )
        node.replace(exp.Sum(this=case))


def logarithm(tree: exp.Query, context: Context) -> None:
    """DuckDB's one-argument `log(x)` is base 10; BigQuery's `LOG(x)` is natural."""
    if not context.bigquery:
        return
    for node in _bottom_up(tree, exp.Log):
        if node.args.get("expression") is None:
            node.replace(_call("LOG10", node.this.copy()))


def regexp_replace(tree: exp.Query, context: Context) -> None:
    """BigQuery's `REGEXP_REPLACE` replaces every match and takes no flags: DuckDB's `g`
    is its own meaning, `i` an inline `(?i)`; without `g` DuckDB replaces the first match
    only, which BigQuery has no way to say unless the pattern can match once (`^...`)."""
    if not context.bigquery:
        return
    for node in _bottom_up(tree, exp.RegexpReplace):
        flags = node.args.get("modifiers")
        written = _literal_text(flags) if flags is not None else ""
        pattern = _literal_text(node.expression)
        if written is None or pattern is None or set(written) - {"g", "i"}:
            context.refuse(
                node,
                "`regexp_replace` with these flags or a pattern not constant",
                "use constant pattern and flags (`'g'`, `'i'`)",
            )
            continue
        if "g" not in written and not pattern.startswith("^"):
            context.refuse(
                node,
                "`regexp_replace` of the first match only",
                "replace every match (`regexp_replace(s, p, r, 'g')`), or anchor the pattern",
            )
            continue
        if "i" in written:
            node.set("expression", _text(f"(?i){pattern}"))
        node.set("modifiers", None)


def regexp_extract(tree: exp.Query, context: Context) -> None:
    """DuckDB's `regexp_extract(s, p[, group])` is '' when nothing matches. Postgres:
    `regexp_match` of the pattern in a group of its own; BigQuery's `REGEXP_EXTRACT` gives
    the whole match of a pattern without groups, or the group of a pattern with one."""
    for node in _bottom_up(tree, exp.RegexpExtract):
        pattern = _literal_text(node.expression)
        group = node.args.get("group")
        index = 0 if group is None else _positive_int(group) or (0 if _is_zero(group) else None)
        if pattern is None or index is None or node.args.get("parameters"):
            context.refuse(
                node,
                "`regexp_extract` of a pattern or group not constant",
                "write the pattern and the group number as constants",
            )
            continue
        if context.postgres:
            template = (
                "COALESCE((REGEXP_MATCH(__s, __p))[__g], CASE WHEN __s IS NOT NULL THEN '' END)"
            )
            values = {
                "s": node.this,
                "p": _text(f"({pattern})"),
                "g": exp.Literal.number(index),
            }
            node.replace(_filled(template, "postgres", **values))
            continue
        groups = _groups(pattern)
        if (index, groups) not in ((0, 0), (1, 1)):
            context.refuse(
                node,
                "`regexp_extract` of this group",
                "extract the whole match of a pattern without groups, or its one group",
            )
            continue
        template = "IF(__s IS NULL, NULL, COALESCE(REGEXP_EXTRACT(__s, __p), ''))"
        node.replace(_filled(template, "bigquery", s=node.this, p=_text(pattern)))


def _is_zero(node: exp.Expr | None) -> bool:
    return isinstance(node, exp.Literal) and node.is_int and int(node.this) == 0


def _groups(pattern: str) -> int:
    """The capturing groups of a regular expression: `(` not escaped nor `(?`."""
    return len(re.findall(r"(?<!\\)\((?!\?)", pattern))


def split_part(tree: exp.Query, context: Context) -> None:
    """BigQuery has no `split_part`: the part of `SPLIT`, '' past the last one."""
    if not context.bigquery:
        return
    for node in _bottom_up(tree, exp.SplitPart):
        index = _positive_int(node.args.get("part_index"))
        if index is None:
            context.refuse(
                node,
                "`split_part` of a part not a constant above 0",
                "split with `string_split` and index the list",
            )
            continue
        template = f"IF(__s IS NULL, NULL, COALESCE(SPLIT(__s, __d)[SAFE_OFFSET({index - 1})], ''))"
        values = {"s": node.this, "d": node.args["delimiter"]}
        node.replace(_filled(template, "bigquery", **values))


def string_split(tree: exp.Query, context: Context) -> None:
    """Postgres spells `string_split(s, d)` `string_to_array` (which makes '' an empty
    array; DuckDB a list of one '')."""
    if not context.postgres:
        return
    for node in _bottom_up(tree, exp.Split):
        template = "CASE WHEN __s = '' THEN ARRAY[''] ELSE STRING_TO_ARRAY(__s, __d) END"
        node.replace(_filled(template, "postgres", s=node.this, d=node.expression))


def epoch(tree: exp.Query, context: Context) -> None:
    """BigQuery has no `TIME_TO_UNIX`: DuckDB's `epoch` is the seconds since 1970 as a
    double, of a date or a timestamp."""
    if not context.bigquery:
        return
    for node in _bottom_up(tree, exp.TimeToUnix):
        template = "UNIX_MICROS(TIMESTAMP(__t)) / 1000000"
        node.replace(_filled(template, "bigquery", t=node.this))


_DOW_BIGQUERY = "EXTRACT(DAYOFWEEK FROM __d) - 1"
_ISODOW_BIGQUERY = "MOD(EXTRACT(DAYOFWEEK FROM __d) + 5, 7) + 1"
_PARTS_BIGQUERY = {"DOY": "DAYOFYEAR", "WEEK": "ISOWEEK", "ISOYEAR": "ISOYEAR"}


def date_parts(tree: exp.Query, context: Context) -> None:
    """DuckDB numbers weekdays from Sunday = 0 (`dayofweek`, `extract(dow ...)`) and
    `week` is the ISO week; Postgres' `EXTRACT` says the same, BigQuery counts from Sunday
    = 1 and has other names."""
    for node in _bottom_up(tree, exp.DayOfWeek, exp.DayOfWeekIso, exp.WeekOfYear, exp.Quarter):
        part = {exp.DayOfWeek: "DOW", exp.DayOfWeekIso: "ISODOW", exp.WeekOfYear: "WEEK"}.get(
            type(node), "QUARTER"
        )
        if context.postgres:
            node.replace(exp.Extract(this=exp.var(part), expression=node.this.copy()))
        elif isinstance(node, exp.DayOfWeek):
            node.replace(_filled(_DOW_BIGQUERY, "bigquery", d=node.this))
    if not context.bigquery:
        return
    for node in _bottom_up(tree, exp.Extract):
        part = node.this.name.upper()
        if part == "DOW":
            node.replace(_filled(_DOW_BIGQUERY, "bigquery", d=node.expression))
        elif part == "ISODOW":
            node.replace(_filled(_ISODOW_BIGQUERY, "bigquery", d=node.expression))
        elif part in _PARTS_BIGQUERY:
            node.set("this", exp.var(_PARTS_BIGQUERY[part]))
        elif part in ("EPOCH", "MILLISECOND", "MILLISECONDS", "MICROSECOND", "MICROSECONDS"):
            context.refuse(
                node,
                f"`extract({part.lower()} ...)`",
                "use `epoch(...)`, or extract the second and compute the rest",
            )


_TRUNC_UNITS = {"year", "quarter", "month", "week", "day", "hour", "minute", "second"}


def date_trunc(tree: exp.Query, context: Context) -> None:
    """DuckDB's `date_trunc` of a date or a timestamp is a timestamp, its week starts on
    Monday. BigQuery: DATETIME_TRUNC (a DuckDB timestamp is a BigQuery DATETIME), WEEK is
    Sunday's; Postgres truncates a date as a timestamp with time zone."""
    for node in _bottom_up(tree, exp.TimestampTrunc, exp.DateTrunc):
        value = node.this
        unit = node.args.get("unit")
        name = (unit.name if unit is not None else "").lower()
        if not _is(value, exp.DType.DATE, *_NAIVE):
            continue
        if context.postgres:
            if _is(value, exp.DType.DATE):
                value.replace(exp.Cast(this=value.copy(), to=exp.DataType.build("timestamp")))
            continue
        if name not in _TRUNC_UNITS:
            context.refuse(
                node,
                f"`date_trunc('{name}', ...)`",
                "truncate to year, quarter, month, week, day, hour, minute or second",
            )
            continue
        stamp = _call("DATETIME", value.copy()) if _is(value, exp.DType.DATE) else value.copy()
        part = exp.var("WEEK(MONDAY)" if name == "week" else name.upper())
        node.replace(_call("DATETIME_TRUNC", stamp, part))


def strftime(tree: exp.Query, context: Context) -> None:
    """BigQuery formats a DATETIME (DuckDB's timestamp) with FORMAT_DATETIME: sqlglot
    writes FORMAT_DATE unless it knows the argument's type."""
    if not context.bigquery:
        return
    for node in _bottom_up(tree, exp.TimeToStr):
        value = node.this
        if _is(value, *_NAIVE):
            value.replace(exp.TsOrDsToDatetime(this=value.copy()))
        elif _is(value, *_AWARE):
            value.replace(exp.TsOrDsToTimestamp(this=value.copy()))


def ordered_set_aggregates(tree: exp.Query, context: Context) -> None:
    """`mode(x)` is Postgres' `mode() WITHIN GROUP (ORDER BY x)`. BigQuery has no exact
    median, quantile or mode aggregate (its PERCENTILE_CONT is a window function only)."""
    for node in _bottom_up(tree, exp.Mode, exp.Median, exp.PercentileCont, exp.PercentileDisc):
        in_window = isinstance(node.parent, exp.Window)
        if context.postgres and isinstance(node, exp.Mode) and not in_window:
            order = exp.Order(expressions=[exp.Ordered(this=node.this.copy(), nulls_first=False)])
            node.replace(exp.WithinGroup(this=_call("MODE"), expression=order))
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
    for node in _bottom_up(tree, exp.IgnoreNulls):
        if isinstance(node.this, exp.AnyValue):
            node.replace(node.this.copy())


def limit_percent(tree: exp.Query, context: Context) -> None:
    """`LIMIT 10%`: neither Postgres nor BigQuery limits by a share of the rows."""
    for node in _bottom_up(tree, exp.Limit):
        options = node.args.get("limit_options")
        if isinstance(options, exp.LimitOptions) and options.args.get("percent"):
            context.refuse(
                node,
                "`LIMIT ... %`",
                "number the rows (`ROW_NUMBER() OVER (...)`) and keep a share by count",
                words=r"\bLIMIT\b",
            )


# DuckDB-only types: the engine's type that holds every value, where one does.
_WIDER = {
    exp.DType.UTINYINT: "smallint",
    exp.DType.USMALLINT: "int",
    exp.DType.UINT: "bigint",
    exp.DType.UBIGINT: "decimal(20, 0)",
    exp.DType.INT128: "decimal(39, 0)",
    exp.DType.UINT128: "decimal(39, 0)",
}


_TYPE_WORDS = {
    exp.DType.UTINYINT: r"\b(?:UTINYINT|UINT8)\b",
    exp.DType.USMALLINT: r"\b(?:USMALLINT|UINT16)\b",
    exp.DType.UINT: r"\b(?:UINTEGER|UINT32)\b",
    exp.DType.UBIGINT: r"\b(?:UBIGINT|UINT64)\b",
    exp.DType.INT128: r"\b(?:HUGEINT|INT128)\b",
    exp.DType.UINT128: r"\b(?:UHUGEINT|UINT128)\b",
    exp.DType.UNION: r"\bUNION\s*\(",
}


def duckdb_types(tree: exp.Query, context: Context) -> None:
    """Casts to DuckDB's unsigned and 128-bit integers become casts to a type that holds
    their values (of an integer or a decimal: a double would round differently); a UNION
    type has no equivalent."""
    for node in _bottom_up(tree, exp.DataType):
        kind = node.this
        words = _TYPE_WORDS.get(kind)
        if kind == exp.DType.UNION or (kind == exp.DType.INT128 and context.bigquery):
            what = f"the type `{node.sql('duckdb')}`"
            context.refuse(node, what, "cast to a type every engine has", words)
            continue
        if kind not in _WIDER:
            continue
        cast = node.parent
        value = cast.this if isinstance(cast, exp.Cast) else None
        if value is not None and _known(value) and not _is(value, *_INTEGERS, *_DECIMALS):
            context.refuse(
                node,
                f"a cast of `{type_name(value, 'duckdb')}` to `{node.sql('duckdb')}`",
                "cast to BIGINT or DECIMAL(p, 0) instead",
                words,
            )
            continue
        node.replace(exp.DataType.build(_WIDER[kind]))


_TEXTS = tuple(exp.DataType.TEXT_TYPES)


def text_order(tree: exp.Query, context: Context) -> None:
    """DuckDB orders text by code point; Postgres by the database's collation (`en_US`:
    `'ann' < 'Ann' < 'Émile'`). Sorting, comparing and min/max of text say `COLLATE
    "ucs_basic"` (code point order) on Postgres."""
    if not context.postgres:
        return
    ordered: list[exp.Expr] = _bottom_up(tree, exp.Ordered, exp.Min, exp.Max)
    for node in [*ordered, *_bottom_up(tree, exp.Greatest, exp.Least)]:
        if _is(node.this, *_TEXTS):
            node.this.replace(_collated(node.this.copy()))
    for select in _bottom_up(tree, exp.Select):  # DISTINCT ON keys must match the ORDER BY's
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
    for comparison in _bottom_up(tree, exp.LT, exp.LTE, exp.GT, exp.GTE, exp.Between):
        operands = [comparison.this, *(comparison.args.get(k) for k in ("expression", "low"))]
        if any(_is(o, *_TEXTS) for o in operands if o is not None):
            comparison.this.replace(_collated(comparison.this.copy()))


def _collated(node: exp.Expr) -> exp.Expr:
    collated = exp.Collate(this=node, expression=exp.Identifier(this="ucs_basic", quoted=False))
    collated.type = node.type
    return collated


_PRINTF = re.compile(r"%%|%[sdi]|%")
_FMT = re.compile(r"\{\{|\}\}|\{\}|[{}]")
_PRINTABLE = (*_INTEGERS, *_TEXTS, exp.DType.DATE, exp.DType.BOOLEAN)


def printf(tree: exp.Query, context: Context) -> None:
    """`printf('%s-%d', a, b)` and `format('{}-{}', a, b)` of integers, text, dates and
    booleans: the pieces concatenated (NULL when an argument is, as on DuckDB). A format
    with widths or precisions, or an argument whose text each engine writes its own way
    (doubles, decimals, timestamps), stays: codegen refuses it."""
    for node in _bottom_up(tree, exp.Format, exp.Anonymous):
        if isinstance(node, exp.Anonymous) and node.name.lower() != "printf":
            continue
        args = [node.this, *node.expressions] if isinstance(node, exp.Format) else node.expressions
        written = _literal_text(args[0]) if args else None
        if written is None or not all(_is(a, *_PRINTABLE) for a in args[1:]):
            continue
        syntax = _FMT if isinstance(node, exp.Format) else _PRINTF
        pieces = _format_pieces(written, syntax, args[1:])
        if pieces is not None:
            node.replace(exp.Paren(this=_concatenated(pieces)))


def _format_pieces(
    text: str, syntax: re.Pattern[str], args: Sequence[exp.Expr]
) -> list[exp.Expr] | None:
    pieces: list[exp.Expr] = []
    rest = list(args)
    last = 0
    for match in syntax.finditer(text):
        token = match.group()
        if token in ("%", "{", "}"):
            return None  # a width, a precision, a named argument
        literal = text[last : match.start()] + (
            "" if token in ("%s", "%d", "%i", "{}") else token[0]
        )
        if literal:
            pieces.append(_text(literal))
        if token in ("%s", "%d", "%i", "{}"):
            if not rest:
                return None
            pieces.append(exp.Cast(this=rest.pop(0).copy(), to=exp.DataType.build("varchar")))
        last = match.end()
    if rest:
        return None
    if text[last:]:
        pieces.append(_text(text[last:]))
    return pieces or [_text("")]


def _concatenated(pieces: Sequence[exp.Expr]) -> exp.Expr:
    joined = pieces[0]
    for piece in pieces[1:]:
        joined = exp.DPipe(this=joined, expression=piece)
    return joined


_WHOLE_TEXT = {
    "postgres": "CASE WHEN CAST(__x AS TEXT) ~ '^-?[0-9]+$' THEN CAST(__x AS TEXT) || '.0' "
    "ELSE CAST(__x AS TEXT) END",
    "bigquery": "CASE WHEN REGEXP_CONTAINS(CAST(__x AS STRING), r'^-?[0-9]+$') "
    "THEN CAST(__x AS STRING) || '.0' ELSE CAST(__x AS STRING) END",
}


def number_text(tree: exp.Query, context: Context) -> None:
    """DuckDB writes a whole double with its `.0` (`2.0`) and a decimal with its scale
    (`100.50`); Postgres and BigQuery write `2`, BigQuery `100.5`: a cast to text says
    it DuckDB's way."""
    for node in _bottom_up(tree, exp.Cast):
        if not node.to.is_type(*_TEXTS):
            continue
        value = node.this
        if _is(value, *_FLOATS):
            node.replace(_filled(_WHOLE_TEXT[context.target], context.target, x=value))
        elif context.bigquery and _is(value, *_DECIMALS):
            scale = _scale(value)
            if scale:
                node.replace(_call("FORMAT", _text(f"%.{scale}f"), value.copy()))


def _scale(node: exp.Expr) -> int:
    kind = node.type
    params = kind.expressions if kind is not None else []
    if len(params) == 2 and isinstance(params[1], exp.DataTypeParam):
        return int(params[1].name)
    return 0


def try_cast(tree: exp.Query, context: Context) -> None:
    """Postgres has no `try_cast` (sqlglot writes CAST, which fails where DuckDB gives
    NULL): only a cast that cannot fail (of a number to a number or to text) is kept."""
    if not context.postgres:
        return
    for node in _bottom_up(tree, exp.TryCast):
        value, kind = node.this, node.to
        if kind.is_type(*_TEXTS) or (_is(value, *_NUMBERS) and kind.is_type(*_NUMBERS)):
            node.replace(exp.Cast(this=value.copy(), to=kind.copy()))
            continue
        hint = "clean the values first (or cast with CASE)"
        context.refuse(node, "`try_cast` that may fail", hint, words=r"\btry_cast\b")


def concat_ws(tree: exp.Query, context: Context) -> None:
    """BigQuery has no `concat_ws`: `ARRAY_TO_STRING` of the parts skips NULL ones, as
    DuckDB's `concat_ws` does."""
    if not context.bigquery:
        return
    for node in _bottom_up(tree, exp.ConcatWs):
        separator, *parts = node.expressions
        if not parts:
            continue
        texts = [exp.Cast(this=p.copy(), to=exp.DataType.build("varchar")) for p in parts]
        node.replace(_call("ARRAY_TO_STRING", exp.Array(expressions=texts), separator.copy()))


RULES: tuple[Rule, ...] = (
    alias_column_lists,
    distinct_on,
    union_by_name,
    group_by_all,
    order_by_all,
    null_order,
    limit_percent,
    duckdb_types,
    make_date,
    list_length,
    list_aggregates,
    full_match,
    contains,
    null_strings,
    ends_with,
    greatest_least,
    count_if,
    logarithm,
    regexp_replace,
    regexp_extract,
    split_part,
    string_split,
    epoch,
    date_parts,
    date_trunc,
    strftime,
    ordered_set_aggregates,
    any_value,
    printf,
    try_cast,
    concat_ws,
    number_text,
    text_order,
    division,
    integer_division,
    modulo,
    rounding,
    averages,
)
