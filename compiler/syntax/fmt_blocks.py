"""The layout of blocks and their entries, following the grammar's shapes.

Blocks, sub-blocks, attributes and declarations are laid out from the parse tree's shapes
(never block kinds or attribute names); a rule the printer does not know is printed as
written. Runs of attributes or declarations align their `=` and types; a value with a comment
inside it (a list over several lines, say) is kept as written, so no comment moves.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from flowc.compiler.syntax.fmt_comments import Comment
from flowc.compiler.syntax.fmt_values import (
    INDENT,
    ValuePrinter,
    child,
    column_widths,
    end_of,
    start_of,
)
from lark import Token, Tree


@dataclass
class _Item:
    """One entry of a container (or one own-line comment), with what stays on its lines."""

    tree: Tree[Token] | None  # None: an own-line comment
    comment: Comment | None  # the comment itself, or the entry's trailing comment
    start: int
    end: int
    blank_before: bool = False


class BlockPrinter:
    """The layout of blocks and their entries: containers, aligned runs of attributes and
    declarations, comments kept by position; values are laid out by `ValuePrinter`."""

    def __init__(self, text: str, comments: list[Comment], dialect: str | None) -> None:
        self.text = text
        self.comments = comments
        self.values = ValuePrinter(text, dialect)

    def document(self, tree: Tree[Token]) -> str:
        lines: list[str] = []
        items = self._items(tree.children, 0, len(self.text), top=True)
        self._emit(items, "", lines)
        return "\n".join(lines).rstrip("\n") + "\n" if lines else ""

    def _items(self, children: Sequence[Any], begin: int, end: int, *, top: bool) -> list[_Item]:
        entries = [c for c in children if isinstance(c, Tree)]
        inside = [c for c in self.comments if begin <= c.pos < end]
        items: list[_Item] = []
        for entry in entries:
            items.append(_Item(entry, None, start_of(entry), end_of(entry)))
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
        widths = column_widths([r for r in rows if r is not None])
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
            and child(tree, "default") is None
            and not self._has_inner_comment(tree)
        )

    def _declaration(self, item: _Item) -> str:
        assert item.tree is not None
        return " ".join(cell for cell in self._cells(item.tree) or [] if cell)

    def _cells(self, tree: Tree[Token]) -> list[str] | None:
        """The aligned cells of an attribute or declaration on one line; None for the rest."""
        if self._has_inner_comment(tree):
            return None
        if tree.data == "attribute":
            name, _eq, value = tree.children
            return [str(name), "="] if isinstance(value, Tree) else None
        if tree.data == "decl":
            name, type_ref, *_ = tree.children
            not_null, default = child(tree, "not_null"), child(tree, "default")
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
            text = self.values.attribute(name, value, len(head), indent)
        elif tree.data == "decl" and (default := child(tree, "default")) is not None:
            text = self.values.value(default.children[1], len(head), indent)
        else:
            return [head.rstrip()]
        first, *rest = text.split("\n")
        return [head + first, *rest]

    def _entry(self, tree: Tree[Token], indent: str) -> list[str]:
        if _is_block(tree):
            return self._block(tree, indent)
        if tree.data == "call" and not self._has_inner_comment(tree):
            return (indent + self.values.value(tree, len(indent), indent)).split("\n")
        return self._verbatim(tree, indent)

    def _block(self, tree: Tree[Token], indent: str) -> list[str]:
        """Any rule whose own children open and close braces: `HEAD { entries }`."""
        braces = [
            t for t in tree.children if isinstance(t, Token) and t.type in ("LBRACE", "RBRACE")
        ]
        opening, closing = braces[0], braces[-1]
        begin, end = opening.end_pos or 0, closing.start_pos or 0
        header = indent + self._head(start_of(tree), opening.start_pos or 0) + " {"
        items = self._items(tree.children, begin, end, top=False)
        header_comment = [i for i in items if i.tree is None and self._on_line(opening, i)]
        if header_comment:
            items.remove(header_comment[0])
            assert header_comment[0].comment is not None
            header += "  " + header_comment[0].comment.text
        if items:
            items[0].blank_before = False
        # A comment between the block's name and its `{` goes above the block: same order.
        above = [indent + c.text for c in self.comments if start_of(tree) < c.pos < begin]
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
        return (indent + self.text[start_of(tree) : end_of(tree)]).split("\n")

    def _has_inner_comment(self, tree: Tree[Token]) -> bool:
        start, end = start_of(tree), end_of(tree)
        return any(start < c.pos < end for c in self.comments)


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


def _aligned(cells: list[str], widths: dict[int, int]) -> str:
    parts = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1]) if cell or widths[i]]
    return " ".join([*parts, cells[-1]]) if cells else ""


def _trails(item: _Item) -> bool:
    return item.tree is not None and item.comment is not None


def _type(tree: Any) -> str:
    name = tree.children[0]
    args = child(tree, "type_args")
    if args is None:
        return str(name)
    return f"{name}({', '.join(str(a) for a in args.children if a is not None)})"
