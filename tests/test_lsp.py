"""`flowc lsp` driven by a real LSP client over stdio (pytest-lsp): diagnostics (equal to
`flowc check --format json` on the broken-spec corpus), hover, definition, completion and
formatting on a copy of the green-taxi example."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from flowc_cli import flowc
from lsprotocol import types as lsp
from pygls import uris
from pytest_lsp import ClientServerConfig, LanguageClient

REPO = Path(__file__).resolve().parent.parent
# The server runs in `folder`, as an editor started there would run it.
_START = "import os, sys; os.chdir(sys.argv[1]); from flowc.cli import main; main(['lsp'])"


async def start(folder: Path) -> LanguageClient:
    config = ClientServerConfig(server_command=[sys.executable, "-c", _START, str(folder)])
    client = await config.start()
    assert isinstance(client, LanguageClient)
    await client.initialize_session(
        lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(),
            root_uri=uris.from_fs_path(str(folder)),
            initialization_options={"debounce": 0},
        )
    )
    return client


def uri(path: Path) -> str:
    found = uris.from_fs_path(str(path.resolve()))
    assert found is not None
    return str(found)


async def open_file(client: LanguageClient, path: Path) -> None:
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(
                uri=uri(path), language_id="flow", version=1, text=path.read_text()
            )
        )
    )
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)


@pytest_asyncio.fixture
async def green_taxi(tmp_path: Path) -> AsyncIterator[tuple[LanguageClient, Path]]:
    root = tmp_path / "green_taxi"
    shutil.copytree(REPO / "specs" / "green_taxi", root, ignore=shutil.ignore_patterns("data"))
    client = await start(root)
    spec = root / "specs" / "green_taxi.flow"
    await open_file(client, spec)
    yield client, spec
    await client.shutdown_session()
    await client.stop()  # type: ignore[no-untyped-call]


def position(path: Path, needle: str, offset: int = 0, nth: int = 0) -> lsp.Position:
    lines = path.read_text().split("\n")
    found = [(i, line.index(needle)) for i, line in enumerate(lines) if needle in line]
    line, col = found[nth]
    return lsp.Position(line=line, character=col + offset)


def where(spec: Path) -> lsp.TextDocumentIdentifier:
    return lsp.TextDocumentIdentifier(uri=uri(spec))


# --- diagnostics ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_diagnostics_equal_flowc_check_on_the_broken_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "broken"
    shutil.copytree(REPO / "tests" / "broken", corpus)
    checked = flowc("check", ".", "--format", "json", cwd=corpus)
    expected = {
        (str((corpus / d["file"]).resolve()), d["line"], d["col"], d["code"], d["message"])
        for d in json.loads(checked.stdout)["diagnostics"]
        if not d["file"].startswith("unreadable")
    }
    client = await start(corpus)
    specs = [p for p in sorted(corpus.rglob("*.flow")) if not p.name.startswith("unreadable")]
    for spec in specs:
        await open_file(client, spec)
    await client.shutdown_session()
    await client.stop()  # type: ignore[no-untyped-call]
    published = {
        (
            uris.to_fs_path(u),
            d.range.start.line + 1,
            d.range.start.character + 1,
            d.code,
            d.message.split("\nhint: ")[0],
        )
        for u, found in client.diagnostics.items()
        for d in found
    }
    assert len(expected) > 100
    assert published == expected


@pytest.mark.asyncio
async def test_diagnostics_follow_edits(
    green_taxi: tuple[LanguageClient, Path],
) -> None:
    client, spec = green_taxi
    assert list(client.diagnostics[uri(spec)]) == []
    text = spec.read_text().replace("WHERE passenger_count > 0", "WHERE pasenger_count > 0")
    typo = position(spec, "WHERE passenger_count", 8)  # delete the second `s`, as typed
    end = lsp.Position(line=typo.line, character=typo.character + 1)
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri(spec), version=2),
            content_changes=[
                lsp.TextDocumentContentChangePartial(range=lsp.Range(start=typo, end=end), text="")
            ],
        )
    )
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    [found] = client.diagnostics[uri(spec)]
    assert found.code == "F0301" and "did you mean `passenger_count`?" in found.message
    line = next(i for i, t in enumerate(text.split("\n")) if "pasenger_count" in t)
    assert found.range.start == lsp.Position(line=line, character=10)
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri(spec), version=3),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=spec.read_text())],
        )
    )
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert list(client.diagnostics[uri(spec)]) == []


# --- hover, definition, completion, formatting ----------------------------------------------


async def hover(client: LanguageClient, spec: Path, at: lsp.Position) -> str:
    found = await client.text_document_hover_async(
        lsp.HoverParams(text_document=where(spec), position=at)
    )
    assert found is not None and isinstance(found.contents, lsp.MarkupContent)
    return found.contents.value


@pytest.mark.asyncio
async def test_hover_shows_nodes_and_columns(green_taxi: tuple[LanguageClient, Path]) -> None:
    client, spec = green_taxi
    node = await hover(client, spec, position(spec, "FROM trips", 6))
    assert node.startswith("source `trips`")
    assert "- `passenger_count` int" in node
    column = await hover(client, spec, position(spec, "WHERE passenger_count", 7))
    assert column == "column `passenger_count` int\n\nfrom source `trips`"
    clean = await hover(client, spec, position(spec, "inputs = [clean_trips]", 11))
    assert "transform `clean_trips`" in clean and "reads `trips`" in clean
    assert "- `lpep_pickup_date` date" in clean


@pytest.mark.asyncio
async def test_definition_of_nodes_and_python_functions(
    green_taxi: tuple[LanguageClient, Path],
) -> None:
    client, spec = green_taxi
    found = await client.text_document_definition_async(
        lsp.DefinitionParams(text_document=where(spec), position=position(spec, "FROM trips", 6))
    )
    assert isinstance(found, lsp.Location)
    assert found.uri == uri(spec)
    assert found.range.start.line == position(spec, "source trips").line
    entry = await client.text_document_definition_async(
        lsp.DefinitionParams(text_document=where(spec), position=position(spec, "rename.py", 2))
    )
    assert isinstance(entry, lsp.Location)
    module = spec.parent.parent / "blocks" / "rename.py"
    assert entry.uri == uri(module)
    assert module.read_text().split("\n")[entry.range.start.line].startswith("def to_snake_case")
    sql = await client.text_document_definition_async(
        lsp.DefinitionParams(text_document=where(spec), position=position(spec, "daily_stats.sql"))
    )
    assert isinstance(sql, lsp.Location)
    assert sql.uri == uri(spec.parent.parent / "sql" / "daily_stats.sql")


async def complete(client: LanguageClient, spec: Path, at: lsp.Position) -> set[str]:
    found = await client.text_document_completion_async(
        lsp.CompletionParams(text_document=where(spec), position=at)
    )
    assert isinstance(found, lsp.CompletionList)
    return {item.label for item in found.items}


@pytest.mark.asyncio
async def test_completion_in_sql_attributes_and_values(
    green_taxi: tuple[LanguageClient, Path],
) -> None:
    client, spec = green_taxi
    in_sql = await complete(client, spec, position(spec, "FROM trips", 5))
    assert {"trips", "passenger_count", "fare_amount"} <= in_sql
    assert "green_files" not in in_sql  # a sink cannot be read
    attributes = await complete(client, spec, position(spec, "materialize = table", 0))
    assert {"sql", "materialize", "unique_key", "columns", "expect"} <= attributes
    assert "mode" not in attributes  # a sink's
    values = await complete(client, spec, position(spec, "materialize = table", 14))
    assert {"view", "table", "incremental", "warehouse", "local", "trips"} <= values


@pytest.mark.asyncio
async def test_formatting_returns_the_fmt_layout(green_taxi: tuple[LanguageClient, Path]) -> None:
    client, spec = green_taxi
    messy = spec.read_text().replace("  target      = warehouse", "target=warehouse")
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri(spec), version=2),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=messy)],
        )
    )
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(
            text_document=where(spec), options=lsp.FormattingOptions(tab_size=2, insert_spaces=True)
        )
    )
    assert edits is not None and len(edits) == 1
    assert edits[0].new_text == spec.read_text()
    assert edits[0].range.start == lsp.Position(line=0, character=0)


@pytest.mark.asyncio
async def test_a_file_changed_on_disk_is_seen(green_taxi: tuple[LanguageClient, Path]) -> None:
    client, spec = green_taxi
    module = spec.parent.parent / "blocks" / "rename.py"
    module.write_text(module.read_text().replace("def to_snake_case", "def renamed"))
    client.workspace_did_change_watched_files(
        lsp.DidChangeWatchedFilesParams(
            changes=[lsp.FileEvent(uri=uri(module), type=lsp.FileChangeType.Changed)]
        )
    )
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    [found] = client.diagnostics[uri(spec)]
    assert found.code == "F0217" and "no top-level function `to_snake_case`" in found.message
