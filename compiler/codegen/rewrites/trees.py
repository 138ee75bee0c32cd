"""Reading and building the sqlglot trees the rules rewrite: walks, types, new nodes.

The typing pass (`annotate.py`) sets each node's type; the rules ask it through `of_type` and
the type families here, and build nodes with the helpers below so that a node they make
carries the type a later rule reads. `filled` makes an expression from a SQL template, which
reads more plainly than the same tree built by hand.
"""

from __future__ import annotations

from functools import cache
from typing import TypeVar

import sqlglot
from sqlglot import exp

Node = TypeVar("Node", bound=exp.Expr)

# The families of types the rules tell apart.
FLOATS = (exp.DType.DOUBLE, exp.DType.FLOAT)
INTEGERS = tuple(exp.DataType.INTEGER_TYPES)
DECIMALS = (
    exp.DType.DECIMAL,
    exp.DType.BIGDECIMAL,
    exp.DType.DECIMAL32,
    exp.DType.DECIMAL64,
    exp.DType.DECIMAL128,
    exp.DType.DECIMAL256,
)
NUMBERS = (*FLOATS, *INTEGERS, *DECIMALS)
TEXTS = tuple(exp.DataType.TEXT_TYPES)
# DuckDB's TIMESTAMP (BigQuery's DATETIME), and its TIMESTAMPTZ (BigQuery's TIMESTAMP)
NAIVE = (exp.DType.TIMESTAMP, exp.DType.TIMESTAMPNTZ, exp.DType.DATETIME)
AWARE = (exp.DType.TIMESTAMPTZ, exp.DType.TIMESTAMPLTZ)
# functions that make lists, whatever their arguments' types
_LISTS = (exp.Array, exp.Split, exp.ArrayAgg, exp.RegexpSplit, exp.ArrayConcat, exp.GenerateSeries)


def bottom_up(tree: exp.Expr, *kinds: type[Node]) -> list[Node]:
    """The nodes of `kinds` in `tree`, innermost first (a rewrite of an inner one is done
    before the outer one reads it)."""
    return [n for n in tree.walk(bfs=False) if isinstance(n, kinds)][::-1]


def of_type(node: exp.Expr | None, *kinds: exp.DType) -> bool:
    """Whether the typing pass gave `node` one of `kinds`."""
    return node is not None and node.type is not None and node.type.is_type(*kinds)


def known_type(node: exp.Expr | None) -> bool:
    """Whether the typing pass could tell the type of `node`."""
    return (
        node is not None
        and node.type is not None
        and not node.type.is_type(exp.DType.UNKNOWN, exp.DType.NULL)
    )


def not_number(node: exp.Expr | None) -> bool:
    """Whether `node` is known to be something other than a number (an interval, say)."""
    return known_type(node) and not of_type(node, *NUMBERS)


def is_list(node: exp.Expr) -> bool:
    """Whether `node` is a list: typed so, or made by a function that makes lists."""
    return of_type(node, exp.DType.ARRAY) or isinstance(node, _LISTS)


def literal_text(node: exp.Expr | None) -> str | None:
    """The text of a string literal; None for anything else."""
    return node.this if isinstance(node, exp.Literal) and node.is_string else None


def positive_int(node: exp.Expr | None) -> int | None:
    """The value of an integer literal above 0; None for anything else."""
    if isinstance(node, exp.Literal) and node.is_int and int(node.this) > 0:
        return int(node.this)
    return None


def as_double(node: exp.Expr) -> exp.Cast:
    """`node` cast to a double, typed so for the rules after."""
    cast = exp.Cast(this=node, to=exp.DataType.build("double"))
    cast.type = exp.DataType.build("double")
    return cast


def typed(node: Node, kind: str) -> Node:
    """`node`, typed `kind` for the rules after."""
    node.type = exp.DataType.build(kind)
    return node


def ident(name: str) -> exp.Identifier:
    return exp.Identifier(this=name, quoted=False)


def column_ref(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def call(name: str, *args: exp.Expr) -> exp.Anonymous:
    """A call the target spells `name` (written as is)."""
    return exp.Anonymous(this=name, expressions=list(args))


def text_literal(value: str) -> exp.Literal:
    return exp.Literal.string(value)


@cache
def _template(text: str, dialect: str) -> exp.Expr:
    return sqlglot.parse_one(text, read=dialect)


def filled(template: str, dialect: str = "duckdb", **values: exp.Expr) -> exp.Expr:
    """An expression of `dialect` with each column `__name` replaced by (a copy of)
    `values[name]`, in parentheses."""
    tree = _template(template, dialect).copy()
    for column in list(tree.find_all(exp.Column)):
        if column.name.startswith("__") and not column.table:
            column.replace(exp.Paren(this=values[column.name[2:]].copy()))
    return exp.Paren(this=tree)
