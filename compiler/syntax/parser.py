"""Parse .flow text into the syntax IR, turning Lark's errors into friendly diagnostics.

The grammar (`flow.lark`) is LALR(1). When a file has a syntax error, the parser reports it
and resynchronises at the next top-level block (a line starting with `pipeline`, `source`,
`transform`, `sink` or `test`), so independent errors in later blocks are still found in one
pass.
"""

from __future__ import annotations

import itertools
import re
from functools import cache
from pathlib import Path

from flowc.compiler import ir
from flowc.compiler.diagnostics import Diagnostic, Diagnostics, make
from flowc.compiler.driver.memo import Memo
from flowc.compiler.syntax.lower import lower, token_span
from flowc.project.spans import Span, point
from lark import Lark, Token, Tree, UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.exceptions import LarkError

_GRAMMAR = Path(__file__).with_name("flow.lark")
_BLOCK_START = re.compile(
    r"^(pipeline|source|transform|sink|test)[ \t]+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE
)

# Where any top-level block may start (`KIND NAME {` at the start of a line): a split there
# is exact outside raw strings, and a split inside one leaves a part that does not parse.
_ANY_BLOCK_START = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*[ \t]+[A-Za-z_][A-Za-z0-9_]*[ \t]*\{", re.MULTILINE
)

_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "RAW_STRING": 'a """raw string"""',
    "NUMBER": "a number",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "EQUALS": "`=`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COMMA": "`,`",
    "DOT": "`.`",
    "TRUE": "`true`",
    "FALSE": "`false`",
    "NULL": "`null`",
    "NOT": "`not`",
    "$END": "the end of the file",
}
_VALUE_TERMINALS = {"STRING", "RAW_STRING", "NUMBER", "TRUE", "FALSE", "NULL", "LSQB"}


@cache
def _lark() -> Lark:
    return Lark(
        _GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,
    )


def parse(text: str, file: str, *, memo: Memo | None = None) -> tuple[ir.Document, Diagnostics]:
    """Parse the text of `file`; the document holds every block that parsed.

    >>> doc, diags = parse('pipeline p { }', "p.flow")
    >>> doc.blocks[0].kind, len(diags)
    ('pipeline', 0)
    """
    if memo is not None and (found := _parse_memoized(text, file, memo)) is not None:
        return found
    diagnostics = Diagnostics()
    # A byte-order mark (Windows editors write one) is not part of the text: it is invisible,
    # and one character wide only before the first line's first column.
    text = text.removeprefix("\ufeff")
    blocks = _parse_chunk(text, file, Diagnostics(), first_line=1, into=diagnostics)
    if blocks is not None:
        return ir.Document(file=file, blocks=tuple(blocks)), diagnostics
    blocks, unparsed = _parse_by_blocks(text, file, diagnostics)
    return ir.Document(file=file, blocks=tuple(blocks), unparsed=tuple(unparsed)), diagnostics


def _parse_memoized(text: str, file: str, memo: Memo) -> tuple[ir.Document, Diagnostics] | None:
    """Parse top-level block by block, each block's parse reused while its text and first
    line stay the same; None when a block does not parse alone (then the whole file is
    parsed, for the diagnostics of a whole-file parse)."""
    starts = [m.start() for m in _ANY_BLOCK_START.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    blocks: list[ir.Block] = []
    diagnostics = Diagnostics()
    line, counted = 1, 0
    for begin, end in itertools.pairwise([*starts, len(text)]):
        line, counted = line + text.count("\n", counted, begin), begin
        chunk = text[begin:end]
        found = memo.chunks.get((chunk, line))
        if found is None:
            lowered = Diagnostics()
            parsed = _parse_chunk(chunk, file, Diagnostics(), first_line=line, into=lowered)
            if parsed is None:
                return None
            found = (tuple(parsed), tuple(lowered))
        memo.chunks[(chunk, line)] = found
        blocks.extend(found[0])
        diagnostics.extend(found[1])
    return ir.Document(file=file, blocks=tuple(blocks)), diagnostics


def _parse_chunk(
    text: str,
    file: str,
    errors: Diagnostics,
    first_line: int,
    into: Diagnostics | None = None,
) -> list[ir.Block] | None:
    """Parse `text`, which starts at `first_line` of the file.

    A syntax error goes to `errors` and gives None; what lowering reports goes to `into`.
    """
    try:
        tree = _lark().parse(text)
    except UnexpectedInput:
        # Parse again with the lines before the chunk as blank lines, so that positions and
        # line numbers in the message are the file's. Only failures pay for the padding.
        padded = "\n" * (first_line - 1) + text
        try:
            _lark().parse(padded)
        except UnexpectedInput as error:
            errors.add(_syntax_diagnostic(error, padded, file))
        return None
    _shift_lines(tree, first_line - 1)
    return list(lower(tree, file, errors if into is None else into).blocks)


def _shift_lines(tree: Tree[Token], lines: int) -> None:
    """Move every position of a chunk's tree down by `lines`, to where the chunk is."""
    if not lines:
        return
    for subtree in tree.iter_subtrees():
        if not subtree.meta.empty:
            subtree.meta.line += lines
            subtree.meta.end_line += lines
        for child in subtree.children:
            if isinstance(child, Token) and child.line is not None:
                child.line += lines
                child.end_line = (child.end_line or child.line) + lines


def _parse_by_blocks(
    text: str, file: str, diagnostics: Diagnostics
) -> tuple[list[ir.Block], list[ir.Block]]:
    """Parse block by block: the blocks that parse, and placeholders for those that do not."""
    starts = [m.start() for m in _BLOCK_START.finditer(text)] or [0]
    if starts[0] != 0 and text[: starts[0]].strip():
        starts.insert(0, 0)
    blocks: list[ir.Block] = []
    unparsed: list[ir.Block] = []
    reported = len(diagnostics)
    line, counted = 1, 0
    for begin, end in itertools.pairwise([*starts, len(text)]):
        line, counted = line + text.count("\n", counted, begin), begin
        parsed = _parse_chunk(text[begin:end], file, diagnostics, first_line=line)
        if parsed is not None:
            blocks.extend(parsed)
        elif placeholder := _placeholder(text, begin, line, file):
            unparsed.append(placeholder)
    if len(diagnostics) == reported:
        # The whole file failed yet every chunk parsed: a raw string that swallowed a
        # block start, say. Report the whole-file error instead.
        _parse_chunk(text, file, diagnostics, first_line=1)
    return blocks, unparsed


def _placeholder(text: str, begin: int, line: int, file: str) -> ir.Block | None:
    found = _BLOCK_START.match(text, begin)
    if found is None:
        return None
    kind_span = point(file, line, 1, len(found[1]))
    name_span = point(file, line, found.start(2) - begin + 1, len(found[2]))
    return ir.Block(
        kind=found[1],
        kind_span=kind_span,
        name=found[2],
        name_span=name_span,
        entries=(),
        span=kind_span,
    )


def _syntax_diagnostic(error: UnexpectedInput, text: str, file: str) -> Diagnostic:
    if isinstance(error, UnexpectedCharacters):
        return _bad_character(error, text, file)
    if isinstance(error, UnexpectedToken):
        return _unexpected_token(error, text, file)
    return _unexpected_end(text, file)


def _bad_character(error: UnexpectedCharacters, text: str, file: str) -> Diagnostic:
    pos = error.pos_in_stream or 0
    line, col = error.line, error.column
    rest_of_line = text[pos:].split("\n", 1)[0]
    if text.startswith('"""', pos):
        return make("F0103", point(file, line, col, 3), hint='close it with `"""`')
    if text.startswith('"""', max(0, pos - 2)):
        return make("F0103", point(file, line, col - 2, 3), hint='close it with `"""`')
    if text[pos] == '"':
        return make(
            "F0102",
            point(file, line, col, len(rest_of_line)),
            hint='strings end on the line they start; use """...""" for text over several lines',
        )
    if text[pos] == "}":
        return make("F0108", point(file, line, col), char="}", hint="remove it")
    return make("F0106", point(file, line, col), char=text[pos], hint=_character_hint(text[pos]))


def _character_hint(char: str) -> str:
    if char in "'`":
        return 'strings are written in double quotes: "text"'
    if char == ":":
        return "attributes are written `name = value`"
    return "remove it, or put it inside a string"


def _unexpected_token(error: UnexpectedToken, text: str, file: str) -> Diagnostic:
    token: Token = error.token
    if token.type == "$END":
        return _unexpected_end(text, file)
    opened = _open_blocks(text, token.start_pos or 0, file)
    span = token_span(file, token)
    if opened and _starts_top_level_block(text, token.start_pos or 0):
        block_name, block_span = opened[-1]
        return make(
            "F0104",
            _line_start(text, token.start_pos or 0, file),
            block=block_name,
            opened=block_span.start_text(),
            hint="add the missing `}` before this block",
        )
    if token.type == "RBRACE" and not opened:
        return make("F0108", span, char="}", hint="remove it")
    expected = _expected_words(error.expected)
    found = _describe_token(token)
    return make(
        "F0101",
        span,
        detail=f"unexpected {found}; expected {expected}",
        hint=_token_hint(token, set(error.expected)),
    )


def _unexpected_end(text: str, file: str) -> Diagnostic:
    opened = _open_blocks(text, len(text), file)
    end = _end_point(text, file)
    if opened:
        block_name, block_span = opened[-1]
        return make(
            "F0104",
            end,
            block=block_name,
            opened=block_span.start_text(),
            hint="add the missing `}`",
        )
    return make("F0101", end, detail="unexpected end of the file")


def _describe_token(token: Token) -> str:
    if token.type in ("STRING", "RAW_STRING", "NUMBER"):
        return _TERMINAL_WORDS[token.type].removeprefix("a ")
    return f"`{token}`"


def _expected_words(expected: set[str]) -> str:
    words = sorted({_TERMINAL_WORDS.get(name, f"`{name.lower()}`") for name in expected})
    if _VALUE_TERMINALS & expected and "NAME" in expected:
        words = sorted({w for w in words if w not in _value_words()} | {"a value"})
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _value_words() -> set[str]:
    return {_TERMINAL_WORDS[t] for t in _VALUE_TERMINALS} | {"a name", "`{`"}


def _token_hint(token: Token, expected: set[str]) -> str | None:
    if "EQUALS" in expected and token.type in ("STRING", "NUMBER", "RAW_STRING", "LSQB"):
        return "attributes are written `name = value`"
    if "RBRACE" in expected and token.type == "EQUALS":
        return "an attribute name must be a plain identifier"
    if token.type == "RPAR" or token.type == "RSQB":
        return "remove the stray bracket, or open the matching one"
    return None


def _starts_top_level_block(text: str, pos: int) -> bool:
    line_start = text.rfind("\n", 0, pos) + 1
    return bool(_BLOCK_START.match(text, line_start)) and text[line_start:pos].strip() != ""


def _line_start(text: str, pos: int, file: str) -> Span:
    line_start = text.rfind("\n", 0, pos) + 1
    line = text.count("\n", 0, line_start) + 1
    return point(file, line, 1, max(1, pos - line_start))


def _end_point(text: str, file: str) -> Span:
    stripped = text.rstrip()
    line = stripped.count("\n") + 1
    col = len(stripped) - (stripped.rfind("\n") + 1) + 1
    return point(file, line, col)


def _open_blocks(text: str, end: int, file: str) -> list[tuple[str, Span]]:
    """The blocks still open at offset `end`: (`source trips`, where it opened)."""
    stack: list[tuple[str, Span]] = []
    recent: list[Token] = []
    try:
        for token in _lark().lex(text[:end]):
            if token.type == "LBRACE":
                stack.append(_block_label(recent, token, file))
            elif token.type == "RBRACE" and stack:
                stack.pop()
            recent = [*recent[-1:], token]
    except LarkError:
        pass
    return stack


def _block_label(recent: list[Token], brace: Token, file: str) -> tuple[str, Span]:
    names = [t for t in recent if t.type == "NAME"]
    if len(names) == 2 and len(recent) == 2:
        return f"{names[0]} {names[1]}", token_span(file, names[0])
    if recent and recent[-1].type == "NAME":
        return str(recent[-1]), token_span(file, recent[-1])
    return "{", token_span(file, brace)
