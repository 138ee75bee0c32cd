"""The layout of values: flat when they fit the line, one element per line when not.

Lists of flat lists (a `rows(...)` fixture) become a table; raw strings over several lines
are re-indented to the same value; a raw `sql` string is reformatted only when asked and only
where `fmt_sql` proves the new text the same query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowc.compiler.syntax.fmt_sql import pretty_sql
from lark import Token, Tree

WIDTH = 100


INDENT = "  "


class ValuePrinter:
    """Values flat when they fit the line, one element per line when not; lists of lists
    as a table; raw strings re-indented, their SQL formatted when asked."""

    def __init__(self, text: str, dialect: str | None) -> None:
        self.text = text
        self.dialect = dialect

    def attribute(self, name: str, value: Any, column: int, indent: str) -> str:
        if value.data == "raw_string":
            token = value.children[0]
            if self.dialect is not None and name == "sql":
                formatted = formatted_sql(str(token), self.dialect, indent)
                if formatted is not None:
                    return formatted
            return _reindent_raw(str(token), indent)
        return self.value(value, column, indent)

    def value(self, tree: Any, column: int, indent: str) -> str:
        if isinstance(tree, Token):
            return str(tree)
        kind = tree.data
        if kind in ("string", "raw_string", "number", "true", "false", "null"):
            return str(tree.children[0])
        if kind == "reference":
            return ".".join(str(t) for t in tree.children)
        if kind == "keyword":
            name, _eq, value = tree.children
            return f"{name} = " + self.value(value, column + len(name) + 3, indent)
        if kind == "map_entry":
            key, _eq, value = tree.children
            return f"{key} = " + self.value(value, column + len(key) + 3, indent)
        if kind == "list_value":
            return self._group("[", "]", subtrees(tree.children), column, indent)
        if kind == "map_value":
            return self._group("{ ", " }", subtrees(tree.children), column, indent, empty="{}")
        if kind == "call":
            name, *arguments = tree.children
            opening = f"{name}("
            return opening + self._group(
                "", ")", subtrees(arguments), column + len(opening), indent
            )
        return self.text[start_of(tree) : end_of(tree)]

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
        flat = [self.value(e, column, indent) for e in elements]
        one_line = opening + ", ".join(flat) + closing
        if "\n" not in one_line and column + len(one_line) <= WIDTH:
            return one_line
        inner = indent + INDENT
        table = self._table(elements, len(inner), inner)
        if table is not None:
            lines = [inner + row + "," for row in table]
        else:
            lines = [inner + self.value(e, len(inner), inner) + "," for e in elements]
        return opening.rstrip() + "\n" + "\n".join(lines) + "\n" + indent + closing.lstrip()

    def _table(self, elements: list[Tree[Token]], column: int, indent: str) -> list[str] | None:
        """Lists of lists one per line (a `rows(...)` fixture) as a table, each cell padded
        to its column's width; None where they are not all flat lists or a row would pass
        the line width."""
        if len(elements) < 2 or any(getattr(e, "data", None) != "list_value" for e in elements):
            return None
        rows = [[self.value(c, 0, indent) for c in subtrees(e.children)] for e in elements]
        if any("\n" in cell for cells in rows for cell in cells):
            return None
        widths = column_widths(rows)
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


def subtrees(children: Sequence[Any]) -> list[Tree[Token]]:
    return [c for c in children if isinstance(c, Tree)]


def start_of(tree: Tree[Token]) -> int:
    return int(tree.meta.start_pos)


def end_of(tree: Tree[Token]) -> int:
    return int(tree.meta.end_pos)


def child(tree: Tree[Token], data: str) -> Tree[Token] | None:
    return next((c for c in tree.children if isinstance(c, Tree) and c.data == data), None)


def column_widths(rows: list[list[str]]) -> dict[int, int]:
    widths: dict[int, int] = {}
    for cells in rows:
        for index, cell in enumerate(cells[:-1]):
            widths[index] = max(widths.get(index, 0), len(cell))
    return widths


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


def formatted_sql(token: str, dialect: str, indent: str) -> str | None:
    """The SQL of a raw string as sqlglot prints it, or None when that is not provably the
    same query (another tree, other comments) or sqlglot cannot read it."""
    from flowc.compiler.syntax.lower import dedent_raw

    value = dedent_raw(Token("RAW_STRING", token, line=1, column=1))[0]
    pretty = pretty_sql(value, dialect)
    if pretty is None or '"""' in pretty:
        return None
    body = [indent + INDENT + line if line.strip() else "" for line in pretty.split("\n")]
    return '"""\n' + "\n".join([*body, indent + '"""'])
