"""Lower a Lark parse tree into the syntax layer of the IR (`ir.Document`).

One Transformer does it, rule by rule; every object gets the span of the text it came from.
Strings are unescaped and raw strings dedented here, and each keeps `segments` so that a
position inside its value (a SQL error, say) maps back to a line and column of the file.
"""

from __future__ import annotations

import re
from typing import Any

from flowc.compiler import ir
from flowc.compiler.diagnostics import Diagnostics
from flowc.project.spans import Span
from lark import Token, Transformer, Tree, v_args
from lark.tree import Meta

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "/": "/", "0": "\0"}
_ESCAPE_RE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")


def lower(tree: Tree[Token], file: str, diagnostics: Diagnostics) -> ir.Document:
    """Turn a parse tree of `file` into an `ir.Document`, reporting bad escapes."""
    blocks = _Lower(file, diagnostics).transform(tree)
    return ir.Document(file=file, blocks=tuple(blocks))


def token_span(file: str, token: Token) -> Span:
    return Span(
        file=file,
        line=token.line or 1,
        col=token.column or 1,
        end_line=token.end_line or token.line or 1,
        end_col=token.end_column or (token.column or 1) + len(token),
    )


def _meta_span(file: str, meta: Meta) -> Span:
    return Span(
        file=file, line=meta.line, col=meta.column, end_line=meta.end_line, end_col=meta.end_column
    )


def unescape(
    token: Token, file: str, diagnostics: Diagnostics
) -> tuple[str, tuple[ir.Segment, ...]]:
    """The value of a one-line `"..."` string and its segments (one after each escape)."""
    body = str(token)[1:-1]
    line, first_col = token.line or 1, (token.column or 1) + 1
    parts: list[str] = []
    segments = [ir.Segment(offset=0, line=line, col=first_col)]
    last = 0
    for match in _ESCAPE_RE.finditer(body):
        parts.append(body[last : match.start()])
        escape = match.group(1)
        if escape in _ESCAPES:
            parts.append(_ESCAPES[escape])
        elif escape.startswith("u") and len(escape) == 5 and not _surrogate(escape):
            parts.append(chr(int(escape[1:], 16)))
        else:
            col = first_col + match.start()
            diagnostics.report(
                "F0105",
                Span(file=file, line=line, col=col, end_line=line, end_col=col + 2),
                hint='known escapes: \\" \\\\ \\n \\t \\r \\uXXXX; use a raw """ string for text '
                "with backslashes",
                escape=match.group(0),
            )
            parts.append(match.group(0))
        last = match.end()
        offset = sum(len(p) for p in parts)
        segments.append(ir.Segment(offset=offset, line=line, col=first_col + last))
    parts.append(body[last:])
    return "".join(parts), tuple(segments)


def _surrogate(escape: str) -> bool:
    """`\\uD800`-`\\uDFFF` are halves of UTF-16 pairs, not characters: no text can hold one."""
    return 0xD800 <= int(escape[1:], 16) <= 0xDFFF


def dedent_raw(token: Token) -> tuple[str, tuple[ir.Segment, ...]]:
    """The value of a `\"\"\"...\"\"\"` string, dedented like `textwrap.dedent`.

    A line break right after the opening quotes and a last line holding only the closing
    quotes' indentation are not part of the value.
    """
    inner = str(token)[3:-3]
    line, col = token.line or 1, (token.column or 1) + 3
    if inner.startswith("\n"):
        inner, line, col = inner[1:], line + 1, 1
    lines = inner.split("\n")
    if len(lines) > 1 and not lines[-1].strip():
        lines[-1] = ""
    margin = _common_margin(lines)
    kept: list[str] = []
    segments: list[ir.Segment] = []
    offset = 0
    for index, text in enumerate(lines):
        removed = len(margin) if text.strip() else len(text)
        first_col = (col if index == 0 else 1) + removed
        segments.append(ir.Segment(offset=offset, line=line + index, col=first_col))
        kept.append(text[removed:])
        offset += len(kept[-1]) + 1
    return "\n".join(kept), tuple(segments)


def _common_margin(lines: list[str]) -> str:
    indents = [text[: len(text) - len(text.lstrip(" \t"))] for text in lines if text.strip()]
    if not indents:
        return ""
    margin = indents[0]
    for indent in indents[1:]:
        while not indent.startswith(margin):
            margin = margin[:-1]
    return margin


def _number(text: str) -> int | float:
    if any(c in text for c in ".eE"):
        return float(text)
    try:
        return int(text)
    except ValueError:  # more digits than Python converts by default: keep the magnitude
        return float(text)


@v_args(meta=True)
class _Lower(Transformer[Token, Any]):
    def __init__(self, file: str, diagnostics: Diagnostics) -> None:
        super().__init__()
        self.file = file
        self.diagnostics = diagnostics

    def _span(self, meta: Meta) -> Span:
        return _meta_span(self.file, meta)

    def _tok(self, token: Token) -> Span:
        return token_span(self.file, token)

    def start(self, meta: Meta, blocks: list[ir.Block]) -> list[ir.Block]:
        return blocks

    def block(self, meta: Meta, children: list[Any]) -> ir.Block:
        kind, name, _lbrace, *entries, _rbrace = children
        return ir.Block(
            kind=str(kind),
            kind_span=self._tok(kind),
            name=str(name),
            name_span=self._tok(name),
            entries=tuple(entries),
            span=self._span(meta),
        )

    def attribute(self, meta: Meta, children: list[Any]) -> ir.Attribute:
        name, _eq, value = children
        return ir.Attribute(
            name=str(name), name_span=self._tok(name), value=value, span=self._span(meta)
        )

    def sub_block(self, meta: Meta, children: list[Any]) -> ir.SubBlock:
        name, _lbrace, *entries, _rbrace = children
        return ir.SubBlock(
            name=str(name), name_span=self._tok(name), entries=tuple(entries), span=self._span(meta)
        )

    def decl(self, meta: Meta, children: list[Any]) -> ir.Decl:
        name, type_ref, *rest = children
        not_null = any(isinstance(r, bool) for r in rest)
        default = next((r for r in rest if not isinstance(r, bool)), None)
        return ir.Decl(
            name=str(name),
            name_span=self._tok(name),
            type=type_ref,
            not_null=not_null,
            default=default,
            span=self._span(meta),
        )

    def type_ref(self, meta: Meta, children: list[Any]) -> ir.TypeRef:
        name, *args = children
        return ir.TypeRef(
            name=str(name), args=tuple(args[0]) if args else (), span=self._span(meta)
        )

    def type_args(self, meta: Meta, children: list[Token | None]) -> tuple[int, ...]:
        arguments = []
        for token in children:
            if token is None:
                continue
            if not str(token).isdigit() or len(token) > 9:
                detail = f"a type argument is a whole number like `10`, not `{token}`"
                self.diagnostics.report("F0213", self._tok(token), detail=detail)
                continue
            arguments.append(int(token))
        return tuple(arguments)

    def not_null(self, meta: Meta, children: list[Token]) -> bool:
        return True

    def default(self, meta: Meta, children: list[Any]) -> Any:
        return children[1]

    def string(self, meta: Meta, children: list[Token]) -> ir.Str:
        value, segments = unescape(children[0], self.file, self.diagnostics)
        return ir.Str(value=value, segments=segments, span=self._span(meta))

    def raw_string(self, meta: Meta, children: list[Token]) -> ir.Str:
        value, segments = dedent_raw(children[0])
        return ir.Str(value=value, raw=True, segments=segments, span=self._span(meta))

    def number(self, meta: Meta, children: list[Token]) -> ir.Num:
        text = str(children[0])
        return ir.Num(value=_number(text), text=text, span=self._span(meta))

    def true(self, meta: Meta, children: list[Token]) -> ir.Bool:
        return ir.Bool(value=True, span=self._span(meta))

    def false(self, meta: Meta, children: list[Token]) -> ir.Bool:
        return ir.Bool(value=False, span=self._span(meta))

    def null(self, meta: Meta, children: list[Token]) -> ir.Null:
        return ir.Null(span=self._span(meta))

    def list_value(self, meta: Meta, children: list[Any]) -> ir.ListValue:
        items = tuple(c for c in children if c is not None)
        return ir.ListValue(items=items, span=self._span(meta))

    def map_value(self, meta: Meta, children: list[Any]) -> ir.MapValue:
        entries = tuple(c for c in children if isinstance(c, ir.MapEntry))
        return ir.MapValue(entries=entries, span=self._span(meta))

    def map_entry(self, meta: Meta, children: list[Any]) -> ir.MapEntry:
        key, _eq, value = children
        text = str(key)
        if key.type == "STRING":
            text, _ = unescape(key, self.file, self.diagnostics)
        return ir.MapEntry(key=text, key_span=self._tok(key), value=value)

    def call(self, meta: Meta, children: list[Any]) -> ir.Call:
        name, *arguments = children
        present = [a for a in arguments if a is not None]
        self._check_argument_order(present)
        return ir.Call(
            name=str(name),
            name_span=self._tok(name),
            args=tuple(a for a in present if not isinstance(a, ir.Keyword)),
            keywords=tuple(a for a in present if isinstance(a, ir.Keyword)),
            span=self._span(meta),
        )

    def _check_argument_order(self, arguments: list[Any]) -> None:
        seen_keyword = False
        for argument in arguments:
            if isinstance(argument, ir.Keyword):
                seen_keyword = True
            elif seen_keyword:
                self.diagnostics.report(
                    "F0213",
                    argument.span,
                    hint="write positional arguments first, then `name = value` ones",
                    detail="a positional argument cannot follow a keyword argument",
                )

    def keyword(self, meta: Meta, children: list[Any]) -> ir.Keyword:
        name, _eq, value = children
        return ir.Keyword(name=str(name), name_span=self._tok(name), value=value)

    def reference(self, meta: Meta, children: list[Token]) -> ir.Ref:
        return ir.Ref(parts=tuple(str(c) for c in children), span=self._span(meta))
