"""`flowc lsp`: a language server over stdio, on pygls.

`Session` is the server without the protocol (the benchmark and the tests drive it too): it
keeps each open spec's text, its project (flow.toml, loaded once and again when it changes)
and a `Memo`, so that a re-check after an edit re-does only the blocks the edit touched.
Diagnostics are `flowc check`'s, computed the same way (`check.analyze`, then the dialect
checks of every profile), and published per file: a flow.toml or .sql file gets its own.

The protocol layer debounces typing (`debounce` seconds in the initialization options, 0.15
by default) and answers hover, definition, completion and formatting from the last analysis.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowc.compiler import ir, vocabulary
from flowc.compiler.analysis import project_file
from flowc.compiler.diagnostics import Diagnostic, Diagnostics
from flowc.compiler.driver import check
from flowc.compiler.driver.check import Analysis, Project
from flowc.compiler.driver.memo import Memo
from flowc.project import config
from flowc.project.spans import Span
from lsprotocol import types as lsp
from pygls import uris
from pygls.lsp.server import LanguageServer

DEBOUNCE = 0.15  # seconds of quiet typing before a re-check
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FILE_CALL = re.compile(r'\bfile\(\s*"([^"\\]*)"')
_SEVERITY = {
    "error": lsp.DiagnosticSeverity.Error,
    "warning": lsp.DiagnosticSeverity.Warning,
    "note": lsp.DiagnosticSeverity.Information,
}


@dataclass
class _Loaded:
    project: Project
    stamp: tuple[float, ...]
    format_sql: bool


@dataclass
class Document:
    path: Path
    text: str
    analysis: Analysis | None = None
    memo: Memo = field(default_factory=Memo)


class Session:
    """What the server knows: open documents, their projects and last analyses."""

    def __init__(self) -> None:
        self.documents: dict[Path, Document] = {}
        self._projects: dict[Path, _Loaded] = {}

    def open(self, path: Path, text: str) -> Document:
        document = self.documents.get(path) or Document(path=path, text=text)
        document.text = text
        self.documents[path] = document
        return document

    def close(self, path: Path) -> None:
        self.documents.pop(path, None)

    def project(self, path: Path) -> _Loaded:
        root = config.find_project_root(path)
        stamp = _stamp(root)
        loaded = self._projects.get(root)
        if loaded is None or loaded.stamp != stamp:
            project = check.load_project(root, None, None)
            settings, _, _ = project_file.load_project(root, profile=None, env={})
            loaded = _Loaded(project, stamp, settings.format_sql)
            self._projects[root] = loaded
        return loaded

    def diagnose(self, path: Path) -> list[Diagnostic]:
        """What `flowc check PATH` reports, for the text as typed."""
        document = self.documents[path]
        project = self.project(path).project
        file = check.display(path)
        found = Diagnostics()
        analysis = check.analyze(document.text, file, project.scope, found, memo=document.memo)
        if not found.has_errors:
            check.check_dialects(analysis, project, found)
        document.analysis = analysis
        collected = check.anchored(project.diagnostics, project.root, file) + list(found)
        return sorted(set(collected), key=Diagnostic.sort_key)


def _stamp(root: Path) -> tuple[float, ...]:
    """When flow.toml and .env last changed (0: absent): a change reloads the project."""
    stamps = []
    for name in ("flow.toml", ".env"):
        try:
            stamps.append((root / name).stat().st_mtime)
        except OSError:
            stamps.append(0.0)
    return tuple(stamps)


# --- positions --------------------------------------------------------------------------------


def _utf16(line: str, col: int) -> int:
    """The LSP character offset (UTF-16 units) of 1-based code-point column `col`."""
    return len(line[: max(col - 1, 0)].encode("utf-16-le")) // 2


def _from_utf16(line: str, character: int) -> int:
    """The 0-based code-point index of LSP character offset `character`."""
    units = 0
    for index, char in enumerate(line):
        if units >= character:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(line)


def to_range(span: Span, lines: list[str]) -> lsp.Range:
    def at(line: int, col: int) -> lsp.Position:
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return lsp.Position(line=max(line - 1, 0), character=_utf16(text, col))

    return lsp.Range(start=at(span.line, span.col), end=at(span.end_line, span.end_col))


def to_lsp(diagnostic: Diagnostic, lines: list[str]) -> lsp.Diagnostic:
    message = diagnostic.message
    if diagnostic.hint:
        message += f"\nhint: {diagnostic.hint}"
    return lsp.Diagnostic(
        range=to_range(diagnostic.span, lines),
        message=message,
        severity=_SEVERITY.get(diagnostic.severity, lsp.DiagnosticSeverity.Information),
        code=diagnostic.code,
        source="flowc",
    )


def by_file(diagnostics: list[Diagnostic], spec: Path) -> dict[Path, list[Diagnostic]]:
    """Diagnostics grouped by the file they point at (the spec always has an entry)."""
    grouped: dict[Path, list[Diagnostic]] = {spec: []}
    for diagnostic in diagnostics:
        grouped.setdefault(Path(diagnostic.span.file).resolve(), []).append(diagnostic)
    return grouped


def _lines_of(path: Path, session: Session) -> list[str]:
    if path in session.documents:
        return session.documents[path].text.split("\n")
    try:
        return path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError):
        return []


# --- what is under the cursor ---------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    line: int  # 1-based
    col: int  # 1-based code-point column
    text: str  # the whole line
    word: str  # the identifier under the cursor ("" if none)


def cursor(text: str, position: lsp.Position) -> Cursor:
    lines = text.split("\n")
    line = lines[position.line] if position.line < len(lines) else ""
    index = _from_utf16(line, position.character)
    word = next(
        (m.group() for m in _WORD.finditer(line) if m.start() <= index <= m.end()),
        "",
    )
    return Cursor(line=position.line + 1, col=index + 1, text=line, word=word)


def _inside(span: Span, line: int) -> bool:
    return span.line <= line <= span.end_line


def node_at(spec: ir.Spec, line: int) -> ir.SourceNode | ir.TransformNode | ir.SinkNode | None:
    return next((n for n in spec.nodes if _inside(n.span, line)), None)


def in_sql(node: Any, line: int) -> bool:
    body = getattr(node, "sql", None)
    return isinstance(body, ir.SqlBody) and not body.from_file and _inside(body.span, line)


def hover_text(spec: ir.Spec, at: Cursor) -> str | None:
    """A node's kind, inputs and columns; a column's type and where it comes from."""
    nodes = spec.node_map()
    if at.word in nodes:
        return _describe_node(nodes[at.word])
    here = node_at(spec, at.line)
    if here is None or not at.word:
        return None
    found = _column(here, at.word, spec, declared_here=True)
    if found is None:
        return None
    column, origin = found
    kind = nodes[origin].kind if origin in nodes else "node"
    nullable = " not null" if column.not_null else ""
    return f"column `{column.name}` {column.type}{nullable}\n\nfrom {kind} `{origin}`"


def _describe_node(node: ir.SourceNode | ir.TransformNode | ir.SinkNode) -> str:
    inputs = [e.upstream for e in node.edges] or [r.dotted for r in _declared_inputs(node)]
    text = f"{node.kind} `{node.name}`"
    if node.description:
        text += f": {node.description}"
    if inputs:
        text += "\n\nreads " + ", ".join(f"`{i}`" for i in dict.fromkeys(inputs))
    if node.output:
        shown = [f"- `{c.name}` {c.type}" for c in node.output[:40]]
        more = [f"- ... {len(node.output) - 40} more"] if len(node.output) > 40 else []
        text += "\n\ncolumns:\n" + "\n".join([*shown, *more])
    return text


def _declared_inputs(node: Any) -> tuple[ir.Ref, ...]:
    if isinstance(node, ir.TransformNode):
        return node.inputs
    if isinstance(node, ir.SinkNode) and node.input is not None:
        return (node.input,)
    return ()


def _upstreams(node: Any) -> list[str]:
    names = [e.upstream for e in node.edges] or [r.parts[0] for r in _declared_inputs(node)]
    return list(dict.fromkeys(names))


def _column(
    node: Any, name: str, spec: ir.Spec, *, declared_here: bool
) -> tuple[ir.Column, str] | None:
    """The column `name` as `node` sees it (its inputs first), and the farthest node up the
    chain of reads that has a column of that name: where its values come from."""
    nodes = spec.node_map()
    for upstream in _upstreams(node):
        if upstream in nodes:
            found = _column(nodes[upstream], name, spec, declared_here=True)
            if found is not None:
                return found
    if declared_here:
        own = node.output or node.columns or ()
        match = next((c for c in own if c.name.lower() == name.lower()), None)
        if match is not None:
            return match, node.name
    return None


def definition(spec: ir.Spec, at: Cursor, root: Path) -> tuple[Path, int] | None:
    """Where the name under the cursor is defined: a node's block, a `python =` function, the
    file of a `file("...")`."""
    nodes = spec.node_map()
    entry = _python_entry(spec, at)
    if entry is not None:
        path = root / entry.path
        return path, _function_line(path, entry.function)
    for found in _FILE_CALL.finditer(at.text):
        if found.start(1) <= at.col - 1 <= found.end(1):  # `sql = file("sql/x.sql")`
            return root / found.group(1), 1
    if at.word in nodes:
        return Path(spec.file), nodes[at.word].name_span.line
    return None


def _python_entry(spec: ir.Spec, at: Cursor) -> ir.PythonEntry | None:
    for node in spec.nodes:
        entry = getattr(node, "python", None)
        if isinstance(entry, ir.PythonEntry) and _inside(entry.span, at.line):
            return entry
    return None


def _function_line(path: Path, function: str) -> int:
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError):
        return 1
    pattern = re.compile(rf"^\s*(async\s+)?def\s+{re.escape(function)}\b")
    return next((i + 1 for i, line in enumerate(lines) if pattern.match(line)), 1)


def completions(spec: ir.Spec, at: Cursor, connections: set[str]) -> list[lsp.CompletionItem]:
    """Node and column names inside SQL; attribute names at the start of an entry; node,
    connection and enum names after `=`."""
    node = node_at(spec, at.line)
    nodes = spec.node_map()
    items: dict[str, lsp.CompletionItemKind] = {}
    if node is not None and in_sql(node, at.line):
        upstreams = _upstreams(node) or [n for n in nodes if n != node.name]
        for name in nodes:
            if name != node.name and not isinstance(nodes[name], ir.SinkNode):
                items[name] = lsp.CompletionItemKind.Module
        for upstream in upstreams:
            for column in nodes[upstream].output or () if upstream in nodes else ():
                items.setdefault(column.name, lsp.CompletionItemKind.Field)
        return _items(items)
    before = at.text[: at.col - 1]
    if re.fullmatch(r"\s*[A-Za-z_]*", before):
        kind = node.kind if node is not None else _pipeline_kind(spec, at.line)
        if kind is None:
            return _items(dict.fromkeys(vocabulary.BLOCK_KINDS, lsp.CompletionItemKind.Keyword))
        for name in vocabulary.ATTRIBUTES.get(kind, ()):
            items[name] = lsp.CompletionItemKind.Property
        for name in vocabulary.SUB_BLOCKS.get(kind, ()):
            items[name] = lsp.CompletionItemKind.Struct
        return _items(items)
    attribute = re.match(r"\s*([A-Za-z_]+)\s*=", at.text)
    for word in vocabulary.ENUMS.get(attribute.group(1), ()) if attribute else ():
        items[word] = lsp.CompletionItemKind.EnumMember
    for name in nodes:
        items.setdefault(name, lsp.CompletionItemKind.Module)
    for name in sorted(connections):
        items.setdefault(name, lsp.CompletionItemKind.Variable)
    return _items(items)


def _pipeline_kind(spec: ir.Spec, line: int) -> str | None:
    pipeline = spec.pipeline
    return "pipeline" if pipeline is not None and _inside(pipeline.span, line) else None


def _items(items: dict[str, lsp.CompletionItemKind]) -> list[lsp.CompletionItem]:
    return [lsp.CompletionItem(label=label, kind=kind) for label, kind in items.items()]


# --- the protocol ---------------------------------------------------------------------------


class FlowcServer(LanguageServer):
    def __init__(self) -> None:
        from importlib.metadata import version

        super().__init__("flowc", version("flowc"))
        self.session = Session()
        self.debounce = DEBOUNCE
        self.pending: dict[Path, asyncio.TimerHandle] = {}
        self.published: dict[Path, set[Path]] = {}  # spec -> files it published for

    def refresh(self, path: Path) -> None:
        """Check `path` now and publish its diagnostics (and clear those it no longer has)."""
        self.pending.pop(path, None)
        if path not in self.session.documents:
            return
        try:
            found = self.session.diagnose(path)
        except Exception as error:  # a flowc bug: say so in the editor's log, keep serving
            message = f"flowc: internal error while checking {path} ({type(error).__name__})"
            self.window_log_message(
                lsp.LogMessageParams(type=lsp.MessageType.Error, message=message)
            )
            logging.getLogger(__name__).exception(message)
            return
        grouped = by_file(found, path)
        for stale in self.published.get(path, set()) - set(grouped):
            grouped[stale] = []
        self.published[path] = {p for p, found in grouped.items() if found} | {path}
        for file, found in grouped.items():
            lines = _lines_of(file, self.session)
            self.text_document_publish_diagnostics(
                lsp.PublishDiagnosticsParams(
                    uri=uris.from_fs_path(str(file)) or str(file),
                    diagnostics=[to_lsp(d, lines) for d in found],
                )
            )

    def schedule(self, path: Path) -> None:
        if (waiting := self.pending.pop(path, None)) is not None:
            waiting.cancel()
        if self.debounce <= 0:
            self.refresh(path)
            return
        loop = asyncio.get_running_loop()
        self.pending[path] = loop.call_later(self.debounce, self.refresh, path)


server = FlowcServer()


def _path(uri: str) -> Path:
    return Path(uris.to_fs_path(uri) or uri).resolve()


@server.feature(lsp.INITIALIZE)
def _initialize(ls: FlowcServer, params: lsp.InitializeParams) -> None:
    options = params.initialization_options
    if isinstance(options, dict) and isinstance(options.get("debounce"), int | float):
        ls.debounce = float(options["debounce"])


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def _did_open(ls: FlowcServer, params: lsp.DidOpenTextDocumentParams) -> None:
    path = _path(params.text_document.uri)
    ls.session.open(path, params.text_document.text)
    ls.refresh(path)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
async def _did_change(ls: FlowcServer, params: lsp.DidChangeTextDocumentParams) -> None:
    path = _path(params.text_document.uri)
    document = ls.workspace.get_text_document(params.text_document.uri)
    ls.session.open(path, document.source)
    ls.schedule(path)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def _did_save(ls: FlowcServer, params: lsp.DidSaveTextDocumentParams) -> None:
    _files_changed(ls)


@server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def _watched(ls: FlowcServer, params: lsp.DidChangeWatchedFilesParams) -> None:
    _files_changed(ls)  # changed on disk, not in the editor (a checkout, a generator)


def _files_changed(ls: FlowcServer) -> None:
    """A .py, .sql, flow.toml or .env file changed: it can change any open spec's findings."""
    for path, document in list(ls.session.documents.items()):
        document.memo.files_changed()
        ls.refresh(path)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def _did_close(ls: FlowcServer, params: lsp.DidCloseTextDocumentParams) -> None:
    ls.session.close(_path(params.text_document.uri))


def _analysis(ls: FlowcServer, uri: str) -> tuple[Document, ir.Spec] | None:
    document = ls.session.documents.get(_path(uri))
    if document is None:
        return None
    if document.analysis is None:
        ls.refresh(document.path)
    return (document, document.analysis.spec) if document.analysis else None


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def _hover(ls: FlowcServer, params: lsp.HoverParams) -> lsp.Hover | None:
    found = _analysis(ls, params.text_document.uri)
    if found is None:
        return None
    document, spec = found
    text = hover_text(spec, cursor(document.text, params.position))
    if text is None:
        return None
    content = lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text)
    return lsp.Hover(contents=content)


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def _definition(ls: FlowcServer, params: lsp.DefinitionParams) -> lsp.Location | None:
    found = _analysis(ls, params.text_document.uri)
    if found is None:
        return None
    document, spec = found
    root = ls.session.project(document.path).project.root
    target = definition(spec, cursor(document.text, params.position), root)
    if target is None:
        return None
    path, line = target
    uri = uris.from_fs_path(str(Path(path).resolve())) or str(path)
    start = lsp.Position(line=line - 1, character=0)
    return lsp.Location(uri=uri, range=lsp.Range(start=start, end=start))


@server.feature(
    lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[".", " ", "="])
)
def _completion(ls: FlowcServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    found = _analysis(ls, params.text_document.uri)
    if found is None:
        return lsp.CompletionList(is_incomplete=False, items=[])
    document, spec = found
    project = ls.session.project(document.path).project
    connections = {name for names in project.scope.connections.values() for name in names}
    items = completions(spec, cursor(document.text, params.position), connections)
    return lsp.CompletionList(is_incomplete=False, items=items)


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
def _formatting(ls: FlowcServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
    from flowc.compiler.syntax.fmt import FormatError, format_text

    document = ls.session.documents.get(_path(params.text_document.uri))
    if document is None:
        return []
    format_sql = ls.session.project(document.path).format_sql
    try:
        result = format_text(document.text, str(document.path), format_sql=format_sql)
    except FormatError as error:  # a flowc bug: leave the text alone, say why
        ls.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Error, message=str(error)))
        return []
    if result.text == document.text:
        return []
    lines = document.text.split("\n")
    end = lsp.Position(line=len(lines) - 1, character=_utf16(lines[-1], len(lines[-1]) + 1))
    whole = lsp.Range(start=lsp.Position(line=0, character=0), end=end)
    return [lsp.TextEdit(range=whole, new_text=result.text)]


def serve() -> None:
    """Answer on stdin/stdout until the client says exit."""
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    server.start_io()
