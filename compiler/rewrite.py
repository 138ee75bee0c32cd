"""Dialect rewrites: what a DuckDB construct means, said in the target's SQL, before codegen.

sqlglot translates function names and syntax; it does not know what a construct means when
the types or the shape of the data decide it. These rules do, after names are resolved and
the tree is typed (`compiler/annotate.py`), in place on the tree that codegen then
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

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TypeVar

import sqlglot
from flowc.compiler.annotate import OUTPUTS, Schemas, annotate
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
        return
    for item, column in zip(anchor.expressions, columns, strict=False):
        inner = item.this if isinstance(item, exp.Alias) else item
        item.replace(exp.alias_(inner.copy(), column.name, quoted=False))
    alias.set("columns", None)


_NAME_HINT = "name the columns in the query itself (`SELECT x AS a, ...`)"


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


# `:x` the double, `:p` 10^n as a double (n <= 11: 5^n has at most 26 bits, so that the
# split halves of `:x` times `:p` are exact products and `e` is the exact error of x * p).
_ROUND_EXACT = """
CASE WHEN ABS(:x * :p) >= CAST(4503599627370496 AS DOUBLE) THEN :x
ELSE SIGN(:x * :p) * (FLOOR(ABS(:x * :p)) + CASE
  WHEN ABS(:x * :p) - FLOOR(ABS(:x * :p)) - CAST(0.5 AS DOUBLE) >= -SIGN(:x * :p) * (
    ((CAST(134217729 AS DOUBLE) * :x - (CAST(134217729 AS DOUBLE) * :x - :x)) * :p - :x * :p)
    + (:x - (CAST(134217729 AS DOUBLE) * :x - (CAST(134217729 AS DOUBLE) * :x - :x))) * :p)
  THEN 1 ELSE 0 END) / :p
END"""
_ROUND_WHOLE = """SIGN(:x) * (FLOOR(ABS(:x)) + CASE
  WHEN ABS(:x) - FLOOR(ABS(:x)) >= CAST(0.5 AS DOUBLE) THEN 1 ELSE 0 END)"""


def _round_double(value: exp.Expr, digits: int) -> exp.Expr:
    if digits == 0:
        return _filled(_ROUND_WHOLE, x=value)
    scale = _double(exp.Literal.number(10 ** abs(digits)))
    if 0 < digits <= 11:
        return _filled(_ROUND_EXACT, x=value, p=scale)
    if digits > 0:  # beyond 11 digits a double has few left to round: C's formula
        up = _typed(exp.Mul(this=exp.Paren(this=value.copy()), expression=scale), "double")
        return exp.Div(this=_filled(_ROUND_WHOLE, x=up), expression=scale.copy())
    down = _typed(exp.Div(this=exp.Paren(this=value.copy()), expression=scale), "double")
    return exp.Mul(this=_filled(_ROUND_WHOLE, x=down), expression=scale.copy())


@cache
def _template(text: str) -> exp.Expr:
    return sqlglot.parse_one(text, read="duckdb")


def _filled(template: str, **values: exp.Expr) -> exp.Expr:
    """A DuckDB expression with each `:name` replaced by (a copy of) `values[name]`."""
    tree = _template(template).copy()
    for placeholder in list(tree.find_all(exp.Placeholder)):
        placeholder.replace(exp.Paren(this=values[placeholder.name].copy()))
    tree = exp.Paren(this=tree)
    tree.type = exp.DataType.build("double")
    return tree


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


RULES: tuple[Rule, ...] = (
    alias_column_lists,
    union_by_name,
    group_by_all,
    order_by_all,
    null_order,
    division,
    integer_division,
    modulo,
    rounding,
    averages,
)
