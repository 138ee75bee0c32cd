"""`flowc fmt`: the canonical layout of a .flow file, printed from its parse tree.

The text is parsed with its comments (`fmt_comments`), printed block by block
(`fmt_blocks`), each value flat or over lines (`fmt_values`), embedded SQL reformatted only
when asked (`format_sql`, `fmt_sql`). The printer follows the grammar's shapes, never block
kinds or attribute names, so a new kind of block needs no code here.

Safety: the result is parsed again and its syntax IR must equal the original's, spans aside,
with the same comments in the same order; otherwise `FormatError` and nothing is written.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowc.compiler import ir
from flowc.compiler.diagnostics import Diagnostic, Diagnostics
from flowc.compiler.syntax.fmt_blocks import BlockPrinter
from flowc.compiler.syntax.fmt_comments import Comment, comments_of, parse_with_comments
from flowc.project.spans import point


class FormatError(Exception):
    """The formatted text would not mean what the original means: a flowc bug, not the user's."""


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
    tree, comments = parse_with_comments(text)
    dialect = _dialect(document) if format_sql else None
    out = BlockPrinter(text, comments, dialect).document(tree)
    _verify(text, out, file, document, comments, dialect)
    return Result(text=out, diagnostics=diagnostics)


def semantic_view(document: ir.Document, sql_dialect: str | None = None) -> Any:
    """The document as plain data without positions: what formatting must keep equal. With a
    dialect, `sql` strings are compared as the SQL they parse to."""
    data = _strip(document.model_dump())
    if sql_dialect is not None:
        _canonical_sql(data, sql_dialect)
    return data


def _dialect(document: ir.Document) -> str:
    for block in document.blocks:
        if block.kind == "pipeline":
            for entry in block.entries:
                if not isinstance(entry, ir.Attribute) or entry.name != "dialect":
                    continue
                if isinstance(entry.value, ir.Str):
                    return entry.value.value
    return "duckdb"


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


_SPAN_KEYS = frozenset({"span", "name_span", "kind_span", "key_span", "segments"})


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
    from flowc.compiler.analysis import project_file
    from flowc.project import config

    root = config.find_project_root(path)
    project, _profiles, _diagnostics = project_file.load_project(root, profile=None, env={})
    return project.format_sql
