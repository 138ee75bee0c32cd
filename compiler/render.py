"""Render diagnostics as text (for people), JSON (for tools) or GitHub workflow annotations.

Text follows the shape of LANGUAGE.md §6:

    error[F0301]: unknown column `pasenger_count`
      --> specs/green_taxi.flow:31:11
       |
    31 |     WHERE pasenger_count > 0
       |           ^^^^^^^^^^^^^^ did you mean `passenger_count`?
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from flowc.compiler.diagnostics import Diagnostic
from flowc.project.secrets import is_secret_key, mask
from flowc.project.spans import Span

SourceLookup = Callable[[str], list[str] | None]


def file_lines(cache: dict[str, list[str]]) -> SourceLookup:
    """A lookup of a file's lines that reads each file at most once."""

    def lookup(file: str) -> list[str] | None:
        if file not in cache:
            try:
                cache[file] = Path(file).read_text(encoding="utf-8-sig").split("\n")
            except (OSError, UnicodeDecodeError):
                return None
        return cache[file]

    return lookup


def counts(diagnostics: Sequence[Diagnostic]) -> dict[str, int]:
    """How many errors, warnings and notes."""
    return {
        kind: sum(d.severity == severity for d in diagnostics)
        for kind, severity in (("errors", "error"), ("warnings", "warning"), ("notes", "note"))
    }


def summary(diagnostics: Sequence[Diagnostic], files: int) -> str:
    found = counts(diagnostics)
    checked = f"{files} file{'s' if files != 1 else ''}"
    if not found["errors"] and not found["warnings"]:
        return f"checked {checked}: no problems found"
    text = f"checked {checked}: {_count(found['errors'], 'error')}"
    return text + f", {_count(found['warnings'], 'warning')}"


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'s' if number != 1 else ''}"


# --- text -----------------------------------------------------------------------------------


def render_text(
    diagnostics: Sequence[Diagnostic],
    lines_of: SourceLookup,
    *,
    limit: int = 50,
    color: bool = False,
    secrets: Collection[str] = (),
) -> str:
    """`secrets`: values never shown, wherever they appear (secrets.in_project)."""
    shown = [mask(_text_one(d, lines_of, color), secrets) for d in diagnostics[:limit]]
    if len(diagnostics) > limit:
        shown.append(f"... and {len(diagnostics) - limit} more")
    return "\n".join(shown)


def render_compact(
    diagnostics: Sequence[Diagnostic], *, color: bool = False, secrets: Collection[str] = ()
) -> str:
    """One line per diagnostic, for warnings `flowc run` repeats on every run (`flowc check`
    shows them in full): `warning[F0307] specs/x.flow:46:8: message; hint`; `secrets` never
    shown."""
    paint = _painter(color)
    lines = []
    for d in diagnostics:
        style = {"error": "red", "warning": "yellow"}.get(d.severity, "cyan")
        head = paint(f"{d.severity}[{d.code}]", style)
        hint = f"; {d.hint}" if d.hint else ""
        line = f"{head} {d.span.file}:{d.span.line}:{d.span.col}: {d.message}{hint}"
        lines.append(mask(line, secrets))
    return "\n".join(lines)


def _text_one(diagnostic: Diagnostic, lines_of: SourceLookup, color: bool) -> str:
    paint = _painter(color)
    span = diagnostic.span
    style = {"error": "red", "warning": "yellow"}.get(diagnostic.severity, "cyan")
    head = paint(f"{diagnostic.severity}[{diagnostic.code}]", style) + f": {diagnostic.message}"
    gutter = " " * len(str(span.line))
    out = [head, f"{gutter}--> {span.file}:{span.line}:{span.col}"]
    out += _excerpt(span, lines_of, diagnostic.hint, paint(_marker(span, lines_of), style))
    for note in diagnostic.notes:
        out.append(f"{gutter} = note: {note.message} at {note.span.file}:{note.span.start_text()}")
    if diagnostic.hint and _source_line(span, lines_of) is None:
        out.append(f"{gutter} = hint: {diagnostic.hint}")
    return "\n".join(out) + "\n"


def _excerpt(span: Span, lines_of: SourceLookup, hint: str | None, marker: str) -> list[str]:
    line = _source_line(span, lines_of)
    if line is None:
        return []
    gutter = " " * len(str(span.line))
    pad = " " * (span.col - 1)
    underline = f"{pad}{marker}" + (f" {hint}" if hint else "")
    return [f"{gutter} |", f"{span.line} | {line}", f"{gutter} | {underline}"]


def _marker(span: Span, lines_of: SourceLookup) -> str:
    line = _source_line(span, lines_of) or ""
    end = span.end_col if span.end_line == span.line else len(line) + 1
    return "^" * max(1, min(end, len(line) + 1) - span.col)


def _source_line(span: Span, lines_of: SourceLookup) -> str | None:
    lines = lines_of(span.file)
    if lines is None or not 1 <= span.line <= len(lines):
        return None
    line = lines[span.line - 1].replace("\t", " ")
    return _mask_secret(line) if span.file.endswith(".toml") else line


def _mask_secret(line: str) -> str:
    """A flow.toml line that sets a secret (`password = "..."`) is shown with its value hidden,
    and so is a comment that names one (`# password: ...`); values are masked wherever they
    are by `secrets.mask`."""
    code, comment = _split_comment(line)
    if comment and is_secret_key(comment):
        line = f"{code}# ****"
    key, equals, value = code.partition("=")
    if not equals or not is_secret_key(key.strip()) or "${" in value:
        return line
    return f'{key}= "****"'


def _split_comment(line: str) -> tuple[str, str]:
    """`line` as its code and its `# comment` (a `#` inside a string is not one)."""
    quote = ""
    for at, char in enumerate(line):
        if quote:
            quote = "" if char == quote and line[at - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[:at], line[at:]
    return line, ""


def _painter(color: bool) -> Callable[[str, str], str]:
    codes = {"red": "\x1b[1;31m", "yellow": "\x1b[1;33m", "cyan": "\x1b[1;36m"}

    def paint(text: str, style: str) -> str:
        return f"{codes[style]}{text}\x1b[0m" if color else text

    return paint


# --- machine forms --------------------------------------------------------------------------


def render_json(
    diagnostics: Sequence[Diagnostic], files: int, secrets: Collection[str] = ()
) -> str:
    document = {
        "diagnostics": [_json_one(d, secrets) for d in diagnostics],
        "summary": {"files": files, **counts(diagnostics)},
    }
    return json.dumps(document, indent=2, sort_keys=True)


def _json_one(diagnostic: Diagnostic, secrets: Collection[str]) -> dict[str, object]:
    return {
        "code": diagnostic.code,
        "severity": diagnostic.severity,
        "message": mask(diagnostic.message, secrets),
        "hint": diagnostic.hint and mask(diagnostic.hint, secrets),
        **_json_span(diagnostic.span),
        "notes": [
            {"message": mask(n.message, secrets), **_json_span(n.span)} for n in diagnostic.notes
        ],
    }


def _json_span(span: Span) -> dict[str, object]:
    return {
        "file": span.file,
        "line": span.line,
        "col": span.col,
        "end_line": span.end_line,
        "end_col": span.end_col,
    }


def render_github(diagnostics: Sequence[Diagnostic], secrets: Collection[str] = ()) -> str:
    """GitHub Actions workflow commands: `::error file=...,line=...::message`."""
    return mask("\n".join(_github_one(d) for d in diagnostics), secrets)


def _github_one(diagnostic: Diagnostic) -> str:
    span = diagnostic.span
    properties = {
        "file": span.file,
        "line": str(span.line),
        "col": str(span.col),
        "endLine": str(span.end_line),
        "endColumn": str(span.end_col),
        "title": f"flowc {diagnostic.code}",
    }
    joined = ",".join(f"{k}={_escape_property(v)}" for k, v in properties.items())
    message = diagnostic.message + (f" ({diagnostic.hint})" if diagnostic.hint else "")
    command = "notice" if diagnostic.severity == "note" else diagnostic.severity
    return f"::{command} {joined}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
