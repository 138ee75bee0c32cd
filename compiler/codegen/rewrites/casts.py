"""Casts DuckDB reads its own way: its own types, `try_cast`, a number written as text.

DuckDB's unsigned and 128-bit integers become a type that holds their values; Postgres has
no `try_cast`; DuckDB writes a whole double as `2.0` and a decimal with its scale.
"""

from __future__ import annotations

from flowc.compiler.codegen.annotate import type_name
from flowc.compiler.codegen.rewrites.context import Context
from flowc.compiler.codegen.rewrites.trees import (
    DECIMALS,
    FLOATS,
    INTEGERS,
    NUMBERS,
    TEXTS,
    bottom_up,
    call,
    filled,
    known_type,
    of_type,
    text_literal,
)
from sqlglot import exp

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
    for node in bottom_up(tree, exp.DataType):
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
        if value is not None and known_type(value) and not of_type(value, *INTEGERS, *DECIMALS):
            context.refuse(
                node,
                f"a cast of `{type_name(value, 'duckdb')}` to `{node.sql('duckdb')}`",
                "cast to BIGINT or DECIMAL(p, 0) instead",
                words,
            )
            continue
        node.replace(exp.DataType.build(_WIDER[kind]))


# a double's text with DuckDB's `.0` when it is whole; sqlglot says it in the target's SQL
_WHOLE_TEXT = (
    "CASE WHEN REGEXP_MATCHES(CAST(__x AS VARCHAR), '^-?[0-9]+$') "
    "THEN CAST(__x AS VARCHAR) || '.0' ELSE CAST(__x AS VARCHAR) END"
)


def number_text(tree: exp.Query, context: Context) -> None:
    """DuckDB writes a whole double with its `.0` (`2.0`) and a decimal with its scale
    (`100.50`); Postgres and BigQuery write `2`, BigQuery `100.5`: a cast to text says
    it DuckDB's way."""
    for node in bottom_up(tree, exp.Cast):
        if not node.to.is_type(*TEXTS):
            continue
        value = node.this
        if of_type(value, *FLOATS):
            node.replace(filled(_WHOLE_TEXT, x=value))
        elif context.bigquery and of_type(value, *DECIMALS):
            scale = _scale(value)
            if scale:
                node.replace(call("FORMAT", text_literal(f"%.{scale}f"), value.copy()))


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
    for node in bottom_up(tree, exp.TryCast):
        value, kind = node.this, node.to
        if kind.is_type(*TEXTS) or (of_type(value, *NUMBERS) and kind.is_type(*NUMBERS)):
            node.replace(exp.Cast(this=value.copy(), to=kind.copy()))
            continue
        hint = "clean the values first (or cast with CASE)"
        context.refuse(node, "`try_cast` that may fail", hint, words=r"\btry_cast\b")
