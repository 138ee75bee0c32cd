"""Arithmetic as DuckDB computes it: division, `//`, `%`, `ROUND`, averages, `log`.

DuckDB divides as doubles, rounds a double's exact binary value half away from zero and
averages into a double; the other engines keep integer or decimal types or round their own
way, so the operands are cast, or the computation is written out in doubles.
"""

from __future__ import annotations

from flowc.compiler.codegen.rewrites.context import Context
from flowc.compiler.codegen.rewrites.trees import (
    DECIMALS,
    FLOATS,
    INTEGERS,
    Node,
    as_double,
    bottom_up,
    call,
    filled,
    known_type,
    not_number,
    of_type,
    typed,
)
from sqlglot import exp


def division(tree: exp.Query, context: Context) -> None:
    """DuckDB's `/` divides as doubles (integers and decimals alike); Postgres divides
    integers as integers and BigQuery decimals as NUMERIC (nine decimal places): the
    dividend is cast to double, unless the division is a double's already."""
    for div in bottom_up(tree, exp.Div):
        left, right = div.this, div.expression
        if of_type(left, *FLOATS) or of_type(right, *FLOATS):
            continue
        if not_number(left) or not_number(right):
            continue  # an interval, say: not DuckDB's number division
        if context.bigquery and of_type(left, *INTEGERS) and of_type(right, *INTEGERS):
            continue  # BigQuery divides INT64 as FLOAT64
        left.replace(as_double(left.copy()))


def integer_division(tree: exp.Query, context: Context) -> None:
    """DuckDB's `//` truncates only integers: of a double or a decimal it is `/`."""
    for div in bottom_up(tree, exp.IntDiv):
        left, right = div.this, div.expression
        if of_type(left, *INTEGERS) and of_type(right, *INTEGERS):
            if context.postgres:  # Postgres' `/` of integers truncates, and keeps the type
                div.replace(exp.Div(this=left.copy(), expression=right.copy(), typed=True))
            continue
        if of_type(left, *FLOATS, *DECIMALS) or of_type(right, *FLOATS, *DECIMALS):
            div.replace(
                typed(exp.Div(this=as_double(left.copy()), expression=right.copy()), "double")
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
    for mod in bottom_up(tree, exp.Mod):
        left, right = mod.this, mod.expression
        if not (of_type(left, *FLOATS) or of_type(right, *FLOATS)):
            continue
        if context.postgres:
            numeric = exp.DataType.build("decimal")
            pair = (exp.Cast(this=left.copy(), to=numeric), exp.Cast(this=right.copy(), to=numeric))
            mod.replace(as_double(exp.Mod(this=pair[0], expression=pair[1])))
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
    for node in bottom_up(tree, exp.Round):
        value, digits = node.this, node.args.get("decimals")
        constant = digits is None or (isinstance(digits, exp.Literal) and digits.is_int)
        if of_type(value, *FLOATS) and constant:
            node.replace(_round_double(value, int(digits.this) if digits else 0))
        elif context.postgres and (not known_type(value) or of_type(value, *FLOATS)):
            numeric = exp.Cast(this=value.copy(), to=exp.DataType.build("decimal"))
            rounded = exp.Round(this=numeric, decimals=digits.copy() if digits else None)
            node.replace(as_double(rounded))


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
        return _double_typed(filled(_ROUND_WHOLE, x=value))
    scale = as_double(exp.Literal.number(10 ** abs(digits)))
    if 0 < digits <= 11:
        return _double_typed(filled(_ROUND_EXACT, x=value, p=scale))
    if digits > 0:  # beyond 11 digits a double has few left to round: C's formula
        up = typed(exp.Mul(this=exp.Paren(this=value.copy()), expression=scale), "double")
        return exp.Div(this=_double_typed(filled(_ROUND_WHOLE, x=up)), expression=scale.copy())
    down = typed(exp.Div(this=exp.Paren(this=value.copy()), expression=scale), "double")
    return exp.Mul(this=_double_typed(filled(_ROUND_WHOLE, x=down)), expression=scale.copy())


def _double_typed(node: Node) -> Node:
    return typed(node, "double")


def averages(tree: exp.Query, context: Context) -> None:
    """DuckDB's `avg` (and the variance family) of integers or decimals is a double;
    Postgres' is a `numeric` of any scale, BigQuery's of a NUMERIC a NUMERIC rounded to
    nine places: the average is taken as Postgres and BigQuery take it exactly (BigQuery:
    of BIGNUMERIC), then cast to double."""
    kinds = (exp.Avg, exp.Stddev, exp.StddevPop, exp.StddevSamp, exp.Variance, exp.VariancePop)
    for node in bottom_up(tree, *kinds):
        value = node.this
        if of_type(value, *FLOATS) or not_number(value):
            continue
        if isinstance(value, exp.Distinct) or (context.bigquery and of_type(value, *INTEGERS)):
            continue  # BigQuery's average of INT64 is a FLOAT64 already
        if context.bigquery and not of_type(value, *DECIMALS):
            value.replace(as_double(value.copy()))  # unknown: whatever it is, as a double
            continue
        if context.bigquery:
            value.replace(exp.Cast(this=value.copy(), to=exp.DataType.build("bigdecimal")))
        outer: exp.Expr = node
        while isinstance(outer.parent, exp.Window | exp.Filter):
            outer = outer.parent
        outer.replace(as_double(outer.copy()))


def logarithm(tree: exp.Query, context: Context) -> None:
    """DuckDB's one-argument `log(x)` is base 10; BigQuery's `LOG(x)` is natural."""
    if not context.bigquery:
        return
    for node in bottom_up(tree, exp.Log):
        if node.args.get("expression") is None:
            node.replace(call("LOG10", node.this.copy()))
