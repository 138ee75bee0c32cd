"""Where in the spec an engine's refusal of a step's SQL is (F1001).

The SQL a step runs is the compiler's, not the user's: reformatted, names quoted, CTEs
inlined. An engine that points into it (DuckDB's and Postgres' `LINE n:` with a caret,
BigQuery's `[line:col]`) points at a line the user never wrote. The token it points at is
the user's, though: a column, a function, a table name. It is found again in the SQL text
of the step's node (or of an ephemeral node inlined into it), the same occurrence of it
when the spec spells it as often, and shown there; when it cannot be found the node's
`sql =` line is shown. The engine's own words stay; only its excerpt of flowc's SQL goes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flowc.compiler import ir
from flowc.compiler.diagnostics import make
from flowc.compiler.plan import CheckStep, Fusing, Plan, PythonStep, Step
from flowc.project.spans import Span

# The parser, the SQL pass and the renderer are imported when an error is located, not with
# the runtime: a run of a cached plan imports neither lark nor sqlglot (tests/test_plancache.py).

# DuckDB and libpq (psycopg2's `pgerror`) quote the line of the statement with a caret under
# the position: `LINE 5:   STRFTIME("a", 1) AS "c"` then `          ^`
_LINE = re.compile(r"^LINE (?P<line>\d+): (?P<text>.*)\n(?P<pad> *)\^+[ \t]*$", re.MULTILINE)
_BIGQUERY = re.compile(r"\[(?P<line>\d+):(?P<col>\d+)\]")
# an engine refusing the SQL itself (not a full disk, a lost server): the node's SQL is the
# place to look even when the engine names no position in it
_REFUSED = re.compile(
    r"DuckDB: (Binder|Parser|Catalog) Error"
    r"|Postgres: (syntax error|(function|operator|column|relation) .*does not exist)"
    r"|BigQuery: (Syntax error|No matching signature|Unrecognized name|Function not found)"
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class _Pointed:
    """The engine's position: the token there, and which occurrence of it in the statement."""

    token: str
    occurrence: int


def located(message: str, step: Step, plan: Plan, root: Path) -> str:
    """`message` (an engine's refusal of `step`'s SQL) with its place shown in the spec (the
    node's SQL when the engine names no position), or `message` unchanged when it is not the
    engine's or the spec cannot be read."""
    from flowc.compiler.driver.check import display
    from flowc.compiler.render import file_lines, render_text
    from flowc.compiler.syntax.parser import parse

    pointed, shown = _pointed(message, [] if isinstance(step, PythonStep) else step.sql or [])
    if shown is None and _REFUSED.match(message):
        shown = ""
    if shown is None:
        return message
    spec = root / plan.pipeline.spec
    try:
        text = spec.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return message
    if isinstance(step, CheckStep) and step.check.line is not None:
        span = _in_line(display(spec), text, step.check.line, pointed, step.check.description)
        node = step.node
    else:
        document, _ = parse(text, display(spec))
        fused = step.fused if isinstance(step, Fusing) else []
        span, node = _in_spec(document, [step.node, *fused], pointed, root)
    if span is None:
        return message
    hint = _hint(pointed) + (
        f" (`{node}` is inlined into `{step.node}`)" if node != step.node else ""
    )
    found = make("F1001", span, hint=hint, node=step.node)
    trimmed = message.replace(shown, "").rstrip()
    return f"{trimmed}\n{render_text([found], file_lines({}))}".rstrip()


def _hint(pointed: _Pointed | None) -> str:
    if pointed is None:
        return "the engine names no position in it; the SQL comes from here"
    return "the engine points here"


def _pointed(message: str, statements: Sequence[str]) -> tuple[_Pointed | None, str | None]:
    """The token the engine points at, and the excerpt of flowc's SQL that names it (to be
    left out); (None, None) when the message names no position."""
    found = _LINE.search(message)
    if found is not None:
        at = len(found["pad"]) - len(f"LINE {found['line']}: ")
        return _at(statements, int(found["line"]), found["text"], at), found.group(0)
    found = _BIGQUERY.search(message)
    if found is not None:
        line, col = int(found["line"]), int(found["col"])
        for statement in statements:
            lines = statement.split("\n")
            if line <= len(lines):
                pointed = _at([statement], line, lines[line - 1], col - 1)
                if pointed is not None:
                    return pointed, ""
        return None, ""
    return None, None


def _at(statements: Sequence[str], line: int, shown: str, at: int) -> _Pointed | None:
    """The word at column `at` (0-based) of `shown`, line `line` of one of `statements`; the
    engine may cut a long line (`...` at either end), so the statement is the one whose line
    holds what is shown."""
    word = next((m for m in _WORD.finditer(shown) if m.start() <= at < m.end()), None)
    if word is None:
        word = next((m for m in _WORD.finditer(shown) if m.start() >= at), None)
    if word is None:
        return None
    core = shown.strip(" .")
    for statement in statements:
        lines = statement.split("\n")
        if line > len(lines) or core not in lines[line - 1]:
            continue
        before = "\n".join(lines[: line - 1])
        start = lines[line - 1].index(core) + word.start() - (len(shown) - len(shown.lstrip(" .")))
        prefix = (before + "\n" if before else "") + lines[line - 1][:start]
        return _Pointed(word.group(0), _count(prefix, word.group(0)))
    return _Pointed(word.group(0), 0)


def _count(text: str, token: str) -> int:
    return len(_occurrences(text, token))


def _occurrences(text: str, token: str) -> list[re.Match[str]]:
    pattern = rf"(?<![A-Za-z0-9_]){re.escape(token)}(?![A-Za-z0-9_])"
    return list(re.finditer(pattern, text, re.IGNORECASE))


def _in_spec(
    document: ir.Document, nodes: Sequence[str], pointed: _Pointed | None, root: Path
) -> tuple[Span | None, str]:
    """The token's place in the SQL of the first of `nodes` that spells it, and that node;
    else the `sql =` of the first node."""
    bodies = [(n, b) for n, b in ((n, _body(document, n, root)) for n in nodes) if b is not None]
    if not bodies:
        return None, nodes[0]
    if pointed is not None:
        for node, (attribute, body) in bodies:
            places = _occurrences(body.text, pointed.token)
            if places:
                place = (
                    places[pointed.occurrence] if pointed.occurrence < len(places) else places[0]
                )
                from flowc.compiler.analysis.sql_spans import segment_span

                span = segment_span(
                    body.segments, body.file, place.start(), place.end(), fallback=attribute.span
                )
                return span, node
    return bodies[0][1][0].span, bodies[0][0]


def _in_line(
    file: str, text: str, line: int, pointed: _Pointed | None, written_as: str
) -> Span | None:
    """A data test's SQL is flowc's from the test written at `line` (as `written_as`): the
    token there, else the test."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return None
    written = lines[line - 1]
    places = _occurrences(written, pointed.token) if pointed is not None else []
    if places:
        start, end = places[0].start(), places[0].end()
    elif written_as in written:
        start = written.index(written_as)
        end = start + len(written_as)
    else:
        start = len(written) - len(written.lstrip())
        end = len(written.rstrip())
    return Span(file=file, line=line, col=start + 1, end_line=line, end_col=max(end, start + 1) + 1)


def _body(document: ir.Document, node: str, root: Path) -> tuple[ir.Attribute, ir.SqlBody] | None:
    block = next((b for b in document.blocks if b.name == node), None)
    attribute = next(
        (
            e
            for e in (block.entries if block else ())
            if isinstance(e, ir.Attribute) and e.name == "sql"
        ),
        None,
    )
    if attribute is None:
        return None
    value = attribute.value
    if isinstance(value, ir.Str):
        body = ir.SqlBody(
            text=value.value, file=value.span.file, segments=value.segments, span=value.span
        )
        return attribute, body
    if isinstance(value, ir.Call) and value.name == "file" and value.args:
        path = value.args[0]
        if isinstance(path, ir.Str):
            return attribute, _file_body(root / path.value, value.span)
    return None


def _file_body(path: Path, span: Span) -> ir.SqlBody:
    from flowc.compiler.driver.check import display

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    starts = [0, *(m.end() for m in re.finditer("\n", text))]
    segments = tuple(ir.Segment(offset=o, line=n, col=1) for n, o in enumerate(starts, start=1))
    return ir.SqlBody(text=text, file=display(path), segments=segments, span=span)
