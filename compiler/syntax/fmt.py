"""`flowc fmt`: the canonical layout of a .flow file, printed from its parse tree.

The printer follows the grammar's shapes (blocks, sub-blocks, attributes, declarations, calls
and values), never block kinds or attribute names, so a new kind of block needs no code here.
A rule it does not know is printed as written.

Comments are not in the parse tree (the grammar ignores them): the lexer hands them over on the
side and each is placed by position. A comment alone on its line stays before what follows it
at that indentation; a comment after code stays at the end of that code's line. A value with a
comment inside it (a list over several lines, say) is kept as written, so no comment moves.

Safety: the result is parsed again and its syntax IR must equal the original's, spans aside,
with the same comments in the same order; otherwise `FormatError` and nothing is written.
Embedded SQL is reformatted only when asked (`format_sql`), and only where sqlglot parses the
new text to the same tree as the old.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from flowc.compiler import ir
from flowc.compiler.diagnostics import Diagnostic, Diagnostics, point
from lark import Lark, Token, Tree

WIDTH = 100
INDENT = "  "
_GRAMMAR = Path(__file__).with_name("flow.lark")
_collected: contextvars.ContextVar[list[Token]] = contextvars.ContextVar("comments")
_SPAN_KEYS = frozenset({"span", "name_span", "kind_span", "key_span", "segments"})


class FormatError(Exception):
    """The formatted text would not mean what the original means: a flowc bug, not the user's."""


@dataclass(frozen=True)
class Comment:
    text: str
    pos: int  # offset in the source
    end: int
    line: int
    own_line: bool  # nothing but blanks before it on its line


@dataclass(frozen=True)
class Result:
    text: str
    diagnostics: Diagnostics  # syntax errors: then `text` is the original


def format_text(text: str, file: str = "<text>", *, format_sql: bool = False) -> Result:
    """The canonical layout of `text`; a file with syntax errors comes back unchanged.

    >>> format_text('pipeline p{target=warehouse  # here\\n}').text
    'pipeline p {\\n  target = warehouse  # here\\n}\\n'
    """
    from flowc.compiler.syntax.parser import parse

    document, diagnostics = parse(text, file)
    if diagnostics.has_errors:
        return Result(text=text, diagnostics=diagnostics)
    tree, comments = _parse(text)
    dialect = _dialect(document) if format_sql else None
    out = _Printer(text, comments, dialect).document(tree)
    _verify(text, out, file, document, comments, dialect)
    return Result(text=out, diagnostics=diagnostics)


def semantic_view(document: ir.Document, sql_dialect: str | None = None) -> Any:
    """The document as plain data without positions: what formatting must keep equal. With a
    dialect, `sql` strings are compared as the SQL they parse to."""
    data = _strip(document.model_dump())
    if sql_dialect is not None:
        _canonical_sql(data, sql_dialect)
    return data


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
    return _parse(text)[1]


def _parse(text: str) -> tuple[Tree[Token], list[Comment]]:
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


def _dialect(document: ir.Document) -> str:
    for block in document.blocks:
        if block.kind == "pipeline":
            for entry in block.entries:
                if not isinstance(entry, ir.Attribute) or entry.name != "dialect":
                    continue
                if isinstance(entry.value, ir.Str):
                    return entry.value.value
    return "duckdb"


# --- the printer ----------------------------------------------------------------------------


@dataclass
class _Item:
    """One entry of a container (or one own-line comment), with what stays on its lines."""

    tree: Tree[Token] | None  # None: an own-line comment
    comment: Comment | None  # the comment itself, or the entry's trailing comment
    start: int
    end: int
    blank_before: bool = False


class _Printer:
    def __init__(self, text: str, comments: list[Comment], dialect: str | None) -> None:
        self.text = text
        self.comments = comments
        self.dialect = dialect

    def document(self, tree: Tree[Token]) -> str:
        lines: list[str] = []
        items = self._items(tree.children, 0, len(self.text), top=True)
        self._emit(items, "", lines)
        return "\n".join(lines).rstrip("\n") + "\n" if lines else ""

    # Containers: the items between two offsets, and how they are laid out.

    def _items(self, children: Sequence[Any], begin: int, end: int, *, top: bool) -> list[_Item]:
        entries = [c for c in children if isinstance(c, Tree)]
        inside = [c for c in self.comments if begin <= c.pos < end]
        items: list[_Item] = []
        for entry in entries:
            items.append(_Item(entry, None, _start(entry), _end(entry)))
        for comment in inside:
            if any(item.start <= comment.pos < item.end for item in items if item.tree):
                continue  # inside an entry: the entry handles it
            previous = [i for i in items if i.tree is not None and i.end <= comment.pos]
            owner = max(previous, key=lambda i: i.end, default=None)
            if not comment.own_line and owner is not None and self._same_line(owner, comment):
                owner.comment = comment
            else:
                items.append(_Item(None, comment, comment.pos, comment.end))
        items.sort(key=lambda i: i.start)
        for before, after in itertools.pairwise(items):
            gap = self.text[before.end : after.start]
            after.blank_before = gap.count("\n") >= 2 or (top and before.tree is not None)
        return items

    def _same_line(self, item: _Item, comment: Comment) -> bool:
        return "\n" not in self.text[item.end : comment.pos]

    def _emit(self, items: list[_Item], indent: str, lines: list[str]) -> None:
        for run in _runs(items):
            if run[0].blank_before and lines:
                lines.append("")
            self._emit_run(run, indent, lines)

    def _emit_run(self, run: list[_Item], indent: str, lines: list[str]) -> None:
        units = self._units(run)
        rows = [self._cells(u[0].tree) if len(u) == 1 and u[0].tree else None for u in units]
        widths = _widths([r for r in rows if r is not None])
        rendered: list[list[str]] = []
        for unit, row in zip(units, rows, strict=True):
            item = unit[0]
            if len(unit) > 1:
                rendered.append([indent + "  ".join(self._declaration(i) for i in unit)])
            elif item.tree is None:
                assert item.comment is not None
                rendered.append([indent + item.comment.text])
            elif row is not None:
                rendered.append(self._row(item.tree, row, widths, indent))
            else:
                rendered.append(self._entry(item.tree, indent))
        last = [unit[-1] for unit in units]
        column = max(
            (len(r[0]) for r, i in zip(rendered, last, strict=True) if _trails(i) and len(r) == 1),
            default=0,
        )
        for item, text in zip(last, rendered, strict=True):
            if _trails(item):
                assert item.comment is not None
                tail = text[-1]
                pad = column if len(text) == 1 else len(tail)
                text[-1] = tail.ljust(pad) + "  " + item.comment.text
            lines.extend(text)

    def _units(self, run: list[_Item]) -> list[list[_Item]]:
        """The run's items, those the user wrote on one line kept together: column
        declarations such as `id int  name varchar` stay on their line (two spaces apart)."""
        units: list[list[_Item]] = []
        for item in run:
            if units and self._shares_line(units[-1][-1], item):
                units[-1].append(item)
            else:
                units.append([item])
        return units

    def _shares_line(self, before: _Item, item: _Item) -> bool:
        return (
            self._plain_declaration(before)
            and self._plain_declaration(item)
            and before.comment is None
            and "\n" not in self.text[before.end : item.start]
        )

    def _plain_declaration(self, item: _Item) -> bool:
        tree = item.tree
        return (
            tree is not None
            and tree.data == "decl"
            and _child(tree, "default") is None
            and not self._has_inner_comment(tree)
        )

    def _declaration(self, item: _Item) -> str:
        assert item.tree is not None
        return " ".join(cell for cell in self._cells(item.tree) or [] if cell)

    # Entries.

    def _cells(self, tree: Tree[Token]) -> list[str] | None:
        """The aligned cells of an attribute or declaration on one line; None for the rest."""
        if self._has_inner_comment(tree):
            return None
        if tree.data == "attribute":
            name, _eq, value = tree.children
            return [str(name), "="] if isinstance(value, Tree) else None
        if tree.data == "decl":
            name, type_ref, *_ = tree.children
            not_null, default = _child(tree, "not_null"), _child(tree, "default")
            cells = [str(name), _type(type_ref)]
            if default is not None:
                cells += ["not null" if not_null is not None else "", "="]
            elif not_null is not None:
                cells.append("not null")
            return cells
        return None

    def _row(
        self, tree: Tree[Token], cells: list[str], widths: dict[int, int], indent: str
    ) -> list[str]:
        head = indent + _aligned(cells, widths) + " "
        if tree.data == "attribute":
            value = tree.children[2]
            name = str(tree.children[0])
            text = self._attribute_value(name, value, len(head), indent)
        elif tree.data == "decl" and (default := _child(tree, "default")) is not None:
            text = self._value(default.children[1], len(head), indent)
        else:
            return [head.rstrip()]
        first, *rest = text.split("\n")
        return [head + first, *rest]

    def _entry(self, tree: Tree[Token], indent: str) -> list[str]:
        if _is_block(tree):
            return self._block(tree, indent)
        if tree.data == "call" and not self._has_inner_comment(tree):
            return (indent + self._value(tree, len(indent), indent)).split("\n")
        return self._verbatim(tree, indent)

    def _block(self, tree: Tree[Token], indent: str) -> list[str]:
        """Any rule whose own children open and close braces: `HEAD { entries }`."""
        braces = [
            t for t in tree.children if isinstance(t, Token) and t.type in ("LBRACE", "RBRACE")
        ]
        opening, closing = braces[0], braces[-1]
        begin, end = opening.end_pos or 0, closing.start_pos or 0
        header = indent + self._head(_start(tree), opening.start_pos or 0) + " {"
        items = self._items(tree.children, begin, end, top=False)
        header_comment = [i for i in items if i.tree is None and self._on_line(opening, i)]
        if header_comment:
            items.remove(header_comment[0])
            assert header_comment[0].comment is not None
            header += "  " + header_comment[0].comment.text
        if items:
            items[0].blank_before = False
        # A comment between the block's name and its `{` goes above the block: same order.
        above = [indent + c.text for c in self.comments if _start(tree) < c.pos < begin]
        if not items and not header_comment:
            return [*above, header + "}"]
        body: list[str] = []
        self._emit(items, indent + INDENT, body)
        return [*above, header, *body, indent + "}"]

    def _head(self, start: int, brace: int) -> str:
        """What comes before a block's `{` (`transform clean`), one space between its words;
        kept as written if it holds a string, whose spaces count."""
        head = self.text[start:brace]
        for comment in self.comments:
            if start < comment.pos < brace:  # printed above the block: cut it out here
                head = head.replace(comment.text, " ", 1)
        return head.strip() if '"' in head else " ".join(head.split())

    def _on_line(self, token: Token, item: _Item) -> bool:
        assert item.comment is not None
        return not item.comment.own_line and "\n" not in self.text[token.end_pos : item.start]

    def _verbatim(self, tree: Tree[Token], indent: str) -> list[str]:
        """As written: the first line moves to `indent`, the others stay where they were."""
        return (indent + self.text[_start(tree) : _end(tree)]).split("\n")

    def _has_inner_comment(self, tree: Tree[Token]) -> bool:
        start, end = _start(tree), _end(tree)
        return any(start < c.pos < end for c in self.comments)

    # Values: flat when they fit, one element per line when not.

    def _attribute_value(self, name: str, value: Any, column: int, indent: str) -> str:
        if value.data == "raw_string":
            token = value.children[0]
            if self.dialect is not None and name == "sql":
                formatted = _format_sql(str(token), self.dialect, indent)
                if formatted is not None:
                    return formatted
            return _reindent_raw(str(token), indent)
        return self._value(value, column, indent)

    def _value(self, tree: Any, column: int, indent: str) -> str:
        if isinstance(tree, Token):
            return str(tree)
        kind = tree.data
        if kind in ("string", "raw_string", "number", "true", "false", "null"):
            return str(tree.children[0])
        if kind == "reference":
            return ".".join(str(t) for t in tree.children)
        if kind == "keyword":
            name, _eq, value = tree.children
            return f"{name} = " + self._value(value, column + len(name) + 3, indent)
        if kind == "map_entry":
            key, _eq, value = tree.children
            return f"{key} = " + self._value(value, column + len(key) + 3, indent)
        if kind == "list_value":
            return self._group("[", "]", _trees(tree.children), column, indent)
        if kind == "map_value":
            return self._group("{ ", " }", _trees(tree.children), column, indent, empty="{}")
        if kind == "call":
            name, *arguments = tree.children
            opening = f"{name}("
            return opening + self._group("", ")", _trees(arguments), column + len(opening), indent)
        return self.text[_start(tree) : _end(tree)]

    def _group(
        self,
        opening: str,
        closing: str,
        elements: list[Tree[Token]],
        column: int,
        indent: str,
        empty: str | None = None,
    ) -> str:
        if not elements:
            return empty if empty is not None else opening + closing
        flat = [self._value(e, column, indent) for e in elements]
        one_line = opening + ", ".join(flat) + closing
        if "\n" not in one_line and column + len(one_line) <= WIDTH:
            return one_line
        inner = indent + INDENT
        table = self._table(elements, len(inner), inner)
        if table is not None:
            lines = [inner + row + "," for row in table]
        else:
            lines = [inner + self._value(e, len(inner), inner) + "," for e in elements]
        return opening.rstrip() + "\n" + "\n".join(lines) + "\n" + indent + closing.lstrip()

    def _table(self, elements: list[Tree[Token]], column: int, indent: str) -> list[str] | None:
        """Lists of lists one per line (a `rows(...)` fixture) as a table, each cell padded
        to its column's width; None where they are not all flat lists or a row would pass
        the line width."""
        if len(elements) < 2 or any(getattr(e, "data", None) != "list_value" for e in elements):
            return None
        rows = [[self._value(c, 0, indent) for c in _trees(e.children)] for e in elements]
        if any("\n" in cell for cells in rows for cell in cells):
            return None
        widths = _widths(rows)
        table = [
            "["
            + " ".join(
                [
                    *((cell + ",").ljust(widths[i] + 1) for i, cell in enumerate(cells[:-1])),
                    *cells[-1:],
                ]
            )
            + "]"
            for cells in rows
        ]
        return table if all(column + len(row) + 1 <= WIDTH for row in table) else None


def _is_block(tree: Tree[Token]) -> bool:
    types = {c.type for c in tree.children if isinstance(c, Token)}
    return {"LBRACE", "RBRACE"} <= types and tree.data != "map_value"


def _runs(items: list[_Item]) -> Iterator[list[_Item]]:
    """Items aligned together: entries of one kind, not parted by a blank line or a block."""
    run: list[_Item] = []
    for item in items:
        if run and (item.blank_before or not _aligns_with(run, item)):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


def _aligns_with(run: list[_Item], item: _Item) -> bool:
    """Attributes align with attributes, declarations with declarations; an attribute holding
    text over several lines (a raw SQL string) stands alone: its `=` would align with
    nothing the eye can see."""
    trees = [i.tree for i in run if i.tree is not None]
    if item.tree is None:
        return True
    if item.tree.data not in ("attribute", "decl") or _long_text(item.tree):
        return False
    return all(t.data == item.tree.data and not _long_text(t) for t in trees)


def _long_text(tree: Tree[Token]) -> bool:
    if tree.data != "attribute" or not isinstance(tree.children[2], Tree):
        return False
    value = tree.children[2]
    return value.data == "raw_string" and "\n" in str(value.children[0])


def _widths(rows: list[list[str]]) -> dict[int, int]:
    widths: dict[int, int] = {}
    for cells in rows:
        for index, cell in enumerate(cells[:-1]):
            widths[index] = max(widths.get(index, 0), len(cell))
    return widths


def _aligned(cells: list[str], widths: dict[int, int]) -> str:
    parts = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1]) if cell or widths[i]]
    return " ".join([*parts, cells[-1]]) if cells else ""


def _trails(item: _Item) -> bool:
    return item.tree is not None and item.comment is not None


def _trees(children: Sequence[Any]) -> list[Tree[Token]]:
    return [c for c in children if isinstance(c, Tree)]


def _start(tree: Tree[Token]) -> int:
    return int(tree.meta.start_pos)


def _end(tree: Tree[Token]) -> int:
    return int(tree.meta.end_pos)


def _child(tree: Tree[Token], data: str) -> Tree[Token] | None:
    return next((c for c in tree.children if isinstance(c, Tree) and c.data == data), None)


def _type(tree: Any) -> str:
    name = tree.children[0]
    args = _child(tree, "type_args")
    if args is None:
        return str(name)
    return f"{name}({', '.join(str(a) for a in args.children if a is not None)})"


def _reindent_raw(token: str, indent: str) -> str:
    """A raw string over several lines, its body one step in from `indent`: the same value,
    as `lower.dedent_raw` removes the common margin. Kept as written when that would differ."""
    inner = token[3:-3]
    if not inner.startswith("\n"):
        return token
    lines = inner[1:].split("\n")
    closing_alone = len(lines) > 1 and not lines[-1].strip()
    body = lines[:-1] if closing_alone else lines
    margin = _margin(body)
    if margin is None:
        return token
    moved = [indent + INDENT + line[len(margin) :] if line.strip() else "" for line in body]
    tail = indent + '"""' if closing_alone else '"""'
    if closing_alone:
        return '"""\n' + "\n".join([*moved, tail])
    return '"""\n' + "\n".join(moved) + tail


def _margin(lines: list[str]) -> str | None:
    indents = [line[: len(line) - len(line.lstrip(" \t"))] for line in lines if line.strip()]
    if not indents:
        return None
    margin = indents[0]
    for indent in indents[1:]:
        while not indent.startswith(margin):
            margin = margin[:-1]
    return margin


def _format_sql(token: str, dialect: str, indent: str) -> str | None:
    """The SQL of a raw string as sqlglot prints it, or None when that is not provably the
    same query (another tree, other comments) or sqlglot cannot read it."""
    from flowc.compiler.syntax.lower import dedent_raw

    value = dedent_raw(Token("RAW_STRING", token, line=1, column=1))[0]
    pretty = pretty_sql(value, dialect)
    if pretty is None or '"""' in pretty:
        return None
    body = [indent + INDENT + line if line.strip() else "" for line in pretty.split("\n")]
    return '"""\n' + "\n".join([*body, indent + '"""'])


def pretty_sql(sql: str, dialect: str) -> str | None:
    """sqlglot's layout of one query, or None unless flowc reads it back as the same query:
    the same tree, the same `:name` parameters, the same comments."""
    import sqlglot
    from flowc.compiler.analysis.sql_parse import ParsedQuery, parse_query
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    before = parse_query(sql, dialect)
    if not isinstance(before, ParsedQuery):
        return None
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
        # sqlglot prints a `:name` parameter as the dialect's own (`$name`): keep flowc's form.
        tree = tree.transform(
            lambda node: exp.var(f":{node.name}") if isinstance(node, exp.Placeholder) else node
        )
        pretty = tree.sql(dialect=dialect, pretty=True)
    except SqlglotError:
        return None
    after = parse_query(pretty, dialect)
    if not isinstance(after, ParsedQuery) or after.tree != before.tree:
        return None
    if after.placeholders != before.placeholders:
        return None
    if _sql_comments(before.tree) != _sql_comments(after.tree):
        return None
    return pretty


def _sql_comments(tree: Any) -> list[str]:
    return sorted(c for node in tree.walk() for c in (node.comments or []))


# --- the proof ------------------------------------------------------------------------------


def _verify(
    text: str,
    out: str,
    file: str,
    document: ir.Document,
    comments: list[Comment],
    dialect: str | None,
) -> None:
    from flowc.compiler.syntax.parser import parse

    again, diagnostics = parse(out, file)
    if diagnostics.has_errors:
        raise FormatError(f"{file}: the formatted text does not parse")
    if semantic_view(again, dialect) != semantic_view(document, dialect):
        raise FormatError(f"{file}: the formatted text would mean something else")
    if [c.text for c in comments_of(out)] != [c.text for c in comments]:
        raise FormatError(f"{file}: formatting would move or lose a comment")


def _strip(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _strip(v) for k, v in data.items() if k not in _SPAN_KEYS}
    if isinstance(data, list | tuple):
        return [_strip(v) for v in data]
    return data


def _canonical_sql(data: Any, dialect: str) -> None:
    """Replace the value of every `sql = "..."` attribute with sqlglot's reading of it."""
    import sqlglot
    from sqlglot.errors import SqlglotError

    if isinstance(data, list):
        for item in data:
            _canonical_sql(item, dialect)
        return
    if not isinstance(data, dict):
        return
    value = data.get("value")
    if data.get("name") == "sql" and isinstance(value, dict) and value.get("kind") == "string":
        with contextlib.suppress(SqlglotError):
            value["value"] = sqlglot.parse_one(value["value"], read=dialect).sql(dialect=dialect)
    for item in data.values():
        _canonical_sql(item, dialect)


# --- files ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileOutcome:
    before: str
    after: str
    diagnostics: list[Diagnostic]


def format_file(path: Path, name: str) -> FileOutcome:
    """Format one file as its project asks (`format_sql` in flow.toml); nothing is written."""
    from flowc.compiler.driver.check import _reason

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        found = Diagnostics()
        found.report("F0107", point(name), path=name, reason=_reason(error))
        return FileOutcome(before="", after="", diagnostics=list(found))
    result = format_text(text, name, format_sql=project_formats_sql(path))
    errors = [d for d in result.diagnostics if d.severity == "error"]
    return FileOutcome(before=text, after=result.text, diagnostics=errors)


def project_formats_sql(path: Path) -> bool:
    """Whether the flow.toml above `path` opts into SQL formatting (a broken one: no)."""
    from flowc.compiler import config

    root = config.find_project_root(path)
    project, _profiles, _diagnostics = config.load_project(root, profile=None, env={})
    return project.format_sql
