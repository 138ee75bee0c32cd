"""flow.toml as the checking pass reads it: the parsed data, where each table and key is
written, and the diagnostics to report into.

tomllib gives values without positions, and a diagnostic about `flow.toml` must point at the
line of the key it is about; `Locator` finds them by scanning the text.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowc.compiler.diagnostics import Diagnostics
from flowc.project.spans import Span, point

_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


@dataclass
class TomlFile:
    """flow.toml as parsed data plus a locator, and the diagnostics to report into. `valid` is
    False when the file could not be read or parsed."""

    file: str
    exists: bool
    doc: dict[str, Any]
    locator: Locator
    diags: Diagnostics = field(default_factory=Diagnostics)
    valid: bool = True

    @classmethod
    def open(cls, root: Path) -> TomlFile:
        path = root / "flow.toml"
        if not path.is_file():
            return cls(str(root), False, {}, Locator(str(root), ""))
        reader = cls(str(path), True, {}, Locator(str(path), ""))
        text = reader.read_text(path)
        if text is not None:
            reader.locator = Locator(reader.file, text)
            reader.doc = reader.parse(text)
        return reader

    def read_text(self, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            self.diags.report("F0601", self.span(), detail="it is not UTF-8 text")
            self.valid = False
        except OSError as error:
            self.diags.report("F0601", self.span(), detail=f"cannot read it ({error.strerror})")
            self.valid = False
        return None

    def parse(self, text: str) -> dict[str, Any]:
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            self.diags.report(
                "F0601", self._error_span(str(error)), detail=_TOML_AT.sub("", str(error))
            )
            self.valid = False
            return {}

    def _error_span(self, message: str) -> Span:
        found = _TOML_AT.search(message)
        if found is None:
            return point(self.file, self.locator.lines, 1)
        return point(self.file, int(found[1]), int(found[2]))

    def span(self, *path: str) -> Span:
        return self.locator.span(path)

    def invalid(self, path: tuple[str, ...], detail: str, hint: str | None = None) -> None:
        self.diags.report("F0608", self.span(*path), detail=detail, hint=hint)


class Locator:
    """Where tables and keys of a TOML text are: tomllib gives no positions, so scan the lines,
    tracking the current `[table.header]`. Good enough for hand-written config files.

    >>> locator = Locator("flow.toml", '[profiles.dev.w]\\ntype = "duckdb"')
    >>> locator.span(("profiles", "dev", "w", "type")).start_text()
    '2:1'
    >>> locator.value_span(("profiles", "dev", "w", "type")).col
    8
    """

    _PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
    _DOTTED = rf"{_PART}(?:[ \t]*\.[ \t]*{_PART})*"
    _HEADER = re.compile(rf"([ \t]*)(\[\[?[ \t]*({_DOTTED})[ \t]*\]\]?)")
    _KEY = re.compile(rf"([ \t]*)({_DOTTED})[ \t]*=")

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.lines = max(1, text.count("\n") + 1)
        self._spans: dict[tuple[str, ...], Span] = {}
        self._values: dict[tuple[str, ...], tuple[int, int, str]] = {}
        table: tuple[str, ...] = ()
        in_string = False
        for number, line in enumerate(text.split("\n"), start=1):
            if not in_string:
                table = self._scan(number, line, table)
            in_string ^= (line.count('"""') + line.count("'''")) % 2 == 1

    def _scan(self, number: int, line: str, table: tuple[str, ...]) -> tuple[str, ...]:
        if header := self._HEADER.match(line):
            path = _key_parts(header[3])
            self._record(path, number, len(header[1]) + 1, len(header[2]))
            return path
        if key := self._KEY.match(line):
            path = (*table, *_key_parts(key[2]))
            self._record(path, number, len(key[1]) + 1, len(key[2]))
            value = line[key.end() :]
            start = key.end() + len(value) - len(value.lstrip())
            self._values.setdefault(path, (number, start + 1, line[start:].split(" #")[0].rstrip()))
        return table

    def _record(self, path: tuple[str, ...], line: int, col: int, width: int) -> None:
        for end in range(1, len(path) + 1):
            self._spans.setdefault(path[:end], point(self.file, line, col, width))

    def value_span(self, path: tuple[str, ...], needle: str = "") -> Span:
        """The span of the value of key `path` (of `needle` inside it, if found there)."""
        if path not in self._values:
            return self.span(path)
        line, col, text = self._values[path]
        at = text.find(needle) if needle else -1
        if at >= 0:
            return point(self.file, line, col + at, len(needle))
        return point(self.file, line, col, max(1, len(text)))

    def span(self, path: tuple[str, ...]) -> Span:
        """The span of `path`, else of its nearest located ancestor, else line 1."""
        for end in range(len(path), 0, -1):
            if path[:end] in self._spans:
                return self._spans[path[:end]]
        return point(self.file)


def _key_parts(dotted: str) -> tuple[str, ...]:
    parts = re.findall(Locator._PART, dotted)
    return tuple(part[1:-1] if part[0] in "\"'" else part for part in parts)
