"""String functions whose meaning or name differs on the target: substring tests, splits,
`ends_with`, `concat_ws`, and `printf`/`format` said as concatenation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from flowc.compiler.codegen.rewrites.context import Context
from flowc.compiler.codegen.rewrites.trees import (
    INTEGERS,
    TEXTS,
    bottom_up,
    call,
    filled,
    is_list,
    literal_text,
    of_type,
    positive_int,
    text_literal,
)
from sqlglot import exp


def contains(tree: exp.Query, context: Context) -> None:
    """DuckDB's `contains(s, sub)` is a case-sensitive substring test (BigQuery's
    `CONTAINS_SUBSTR` folds case and accents; Postgres has none); of a list, whether it
    holds the value."""
    for node in bottom_up(tree, exp.Contains):
        value, part = node.this, node.expression
        if is_list(value):
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
    for node in bottom_up(tree, exp.StrPosition, exp.Split):
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
    for node in bottom_up(tree, exp.EndsWith):
        template = "RIGHT(__s, LENGTH(__t)) = __t"
        node.replace(filled(template, s=node.this, t=node.expression))


def split_part(tree: exp.Query, context: Context) -> None:
    """BigQuery has no `split_part`: the part of `SPLIT`, '' past the last one."""
    if not context.bigquery:
        return
    for node in bottom_up(tree, exp.SplitPart):
        index = positive_int(node.args.get("part_index"))
        if index is None:
            context.refuse(
                node,
                "`split_part` of a part not a constant above 0",
                "split with `string_split` and index the list",
            )
            continue
        template = f"IF(__s IS NULL, NULL, COALESCE(SPLIT(__s, __d)[SAFE_OFFSET({index - 1})], ''))"
        values = {"s": node.this, "d": node.args["delimiter"]}
        node.replace(filled(template, "bigquery", **values))


def string_split(tree: exp.Query, context: Context) -> None:
    """Postgres spells `string_split(s, d)` `string_to_array` (which makes '' an empty
    array; DuckDB a list of one '')."""
    if not context.postgres:
        return
    for node in bottom_up(tree, exp.Split):
        template = "CASE WHEN __s = '' THEN ARRAY[''] ELSE STRING_TO_ARRAY(__s, __d) END"
        node.replace(filled(template, "postgres", s=node.this, d=node.expression))


def concat_ws(tree: exp.Query, context: Context) -> None:
    """BigQuery has no `concat_ws`: `ARRAY_TO_STRING` of the parts skips NULL ones, as
    DuckDB's `concat_ws` does."""
    if not context.bigquery:
        return
    for node in bottom_up(tree, exp.ConcatWs):
        separator, *parts = node.expressions
        if not parts:
            continue
        texts = [exp.Cast(this=p.copy(), to=exp.DataType.build("varchar")) for p in parts]
        node.replace(call("ARRAY_TO_STRING", exp.Array(expressions=texts), separator.copy()))


_PRINTF = re.compile(r"%%|%[sdi]|%")


_FMT = re.compile(r"\{\{|\}\}|\{\}|[{}]")


_PRINTABLE = (*INTEGERS, *TEXTS, exp.DType.DATE, exp.DType.BOOLEAN)


def printf(tree: exp.Query, context: Context) -> None:
    """`printf('%s-%d', a, b)` and `format('{}-{}', a, b)` of integers, text, dates and
    booleans: the pieces concatenated (NULL when an argument is, as on DuckDB). A format
    with widths or precisions, or an argument whose text each engine writes its own way
    (doubles, decimals, timestamps), stays: codegen refuses it."""
    for node in bottom_up(tree, exp.Format, exp.Anonymous):
        if isinstance(node, exp.Anonymous) and node.name.lower() != "printf":
            continue
        args = [node.this, *node.expressions] if isinstance(node, exp.Format) else node.expressions
        written = literal_text(args[0]) if args else None
        if written is None or not all(of_type(a, *_PRINTABLE) for a in args[1:]):
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
            pieces.append(text_literal(literal))
        if token in ("%s", "%d", "%i", "{}"):
            if not rest:
                return None
            pieces.append(exp.Cast(this=rest.pop(0).copy(), to=exp.DataType.build("varchar")))
        last = match.end()
    if rest:
        return None
    if text[last:]:
        pieces.append(text_literal(text[last:]))
    return pieces or [text_literal("")]


def _concatenated(pieces: Sequence[exp.Expr]) -> exp.Expr:
    joined = pieces[0]
    for piece in pieces[1:]:
        joined = exp.DPipe(this=joined, expression=piece)
    return joined
