"""The comments of a .flow text, which the parse tree does not hold.

The grammar ignores comments: the lexer hands them over on the side, and the printer places
each by position. A comment alone on its line stays before what follows it at that
indentation; a comment after code stays at the end of that code's line.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lark import Lark, Token, Tree

_GRAMMAR = Path(__file__).with_name("flow.lark")


_collected: contextvars.ContextVar[list[Token]] = contextvars.ContextVar("comments")


@dataclass(frozen=True)
class Comment:
    text: str
    pos: int  # offset in the source
    end: int
    line: int
    own_line: bool  # nothing but blanks before it on its line


@cache
def _lark() -> Lark:
    return Lark(
        _GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=True,
        lexer_callbacks={"COMMENT": lambda token: _collected.get().append(token)},
    )


def comments_of(text: str) -> list[Comment]:
    """The comments of a text that parses, in order."""
    return parse_with_comments(text)[1]


def parse_with_comments(text: str) -> tuple[Tree[Token], list[Comment]]:
    found: list[Token] = []
    reset = _collected.set(found)
    try:
        tree = _lark().parse(text)
    finally:
        _collected.reset(reset)
    return tree, [_comment(text, token) for token in found]


def _comment(text: str, token: Token) -> Comment:
    pos = token.start_pos or 0
    line_start = text.rfind("\n", 0, pos) + 1
    return Comment(
        text=str(token).rstrip(),
        pos=pos,
        end=token.end_pos or pos + len(token),
        line=token.line or 1,
        own_line=not text[line_start:pos].strip(),
    )
