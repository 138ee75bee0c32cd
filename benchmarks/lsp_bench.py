"""Benchmark `flowc lsp`: the diagnostics refresh after a one-line edit of a 1,000-transform spec.

    python benchmarks/lsp_bench.py [--transforms 1000] [--runs 7]

Generates a project with `benchmarks/generate.py` (under `benchmarks/.work/lsp_<N>`), starts
`flowc lsp` as an editor does (a child process on stdio, debounce off), opens the spec and then
makes `--runs` one-line edits, each to the SQL of a transform in the middle of the file (a
`WHERE` line gets ` AND 1 = 1` more; the line count stays the same), sent as editors send them
(incremental sync: the inserted text and its position). Each edit is timed from sending
`didChange` to receiving its `publishDiagnostics`, wall clock. The baseline is the
same analysis without the server's memo, i.e. what `flowc check` does for that text
(in-process, so process start-up is not counted for it either). Exit status 0 when the
median refresh is under the target, 1 otherwise. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generate import SPEC_RELPATH, generate_project
from lsprotocol import types as lsp
from pygls import uris
from pygls.lsp.client import LanguageClient

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
TARGET_S = 0.300


class _Client(LanguageClient):
    def __init__(self) -> None:
        super().__init__("lsp-bench", "1")
        self.arrived: asyncio.Queue[lsp.PublishDiagnosticsParams] = asyncio.Queue()


def _client() -> _Client:
    client = _Client()

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)  # type: ignore[untyped-decorator]
    def _published(params: lsp.PublishDiagnosticsParams) -> None:
        client.arrived.put_nowait(params)

    return client


async def _published(client: _Client, uri: str) -> lsp.PublishDiagnosticsParams:
    while True:
        params = await asyncio.wait_for(client.arrived.get(), timeout=120)
        if params.uri == uri:
            return params


EXTRA = " AND 1 = 1"


@dataclass(frozen=True)
class Edit:
    text: str  # the whole text after the edit
    line: int  # 0-based line of the edit
    character: int  # where `EXTRA` was inserted


def edits(text: str, runs: int) -> list[Edit]:
    """`runs` successive edits of `text`, each inserting `EXTRA` at the end of the same WHERE
    line of a transform in the middle of the file."""
    lines = text.split("\n")
    middle = len(lines) // 2
    index = next(i for i in range(middle, len(lines)) if lines[i].lstrip().startswith("WHERE"))
    versions = []
    for _ in range(runs):
        at = len(lines[index])
        lines[index] += EXTRA
        versions.append(Edit("\n".join(lines), index, at))
    return versions


async def measure(root: Path, runs: int) -> tuple[float, list[float], int]:
    """Seconds to the first diagnostics after opening, and after each edit; diagnostics."""
    spec = root / SPEC_RELPATH
    uri = uris.from_fs_path(str(spec.resolve())) or str(spec)
    text = spec.read_text(encoding="utf-8")
    client = _client()
    await client.start_io(sys.executable, "-m", "flowc", "lsp", cwd=str(root))
    await client.initialize_async(
        lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), initialization_options={"debounce": 0}
        )
    )
    client.initialized(lsp.InitializedParams())
    started = time.perf_counter()
    item = lsp.TextDocumentItem(uri=uri, language_id="flow", version=1, text=text)
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=item))
    first = await _published(client, uri)
    opened = time.perf_counter() - started
    times = []
    for version, edit in enumerate(edits(text, runs), start=2):
        # As an editor sends it: the inserted text and where (incremental sync).
        at = lsp.Position(line=edit.line, character=edit.character)
        change = lsp.TextDocumentContentChangePartial(range=lsp.Range(start=at, end=at), text=EXTRA)
        started = time.perf_counter()
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[change],
            )
        )
        await _published(client, uri)
        times.append(time.perf_counter() - started)
    # The server saw the edits: one more that reads a column that does not exist is reported.
    last = edits(text, runs)[-1]
    at = lsp.Position(line=last.line, character=last.character + len(EXTRA))
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=runs + 2),
            content_changes=[
                lsp.TextDocumentContentChangePartial(
                    range=lsp.Range(start=at, end=at), text=" AND no_such_column = 1"
                )
            ],
        )
    )
    if not (await _published(client, uri)).diagnostics:
        raise SystemExit("the server did not report the broken edit: it did not see the edits")
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()  # type: ignore[no-untyped-call]
    return opened, times, len(first.diagnostics)


def baseline(root: Path, runs: int) -> list[float]:
    """The same edits analysed the way `flowc check` does: no memo, nothing reused."""
    from flowc.compiler.diagnostics import Diagnostics
    from flowc.compiler.driver import check

    spec = root / SPEC_RELPATH
    project = check.load_project(root, None, None)
    times = []
    for edit in edits(spec.read_text(encoding="utf-8"), runs):
        started = time.perf_counter()
        found = Diagnostics()
        analysis = check.analyze(edit.text, str(spec), project.scope, found)
        if not found.has_errors:
            check.check_dialects(analysis, project, found)
        times.append(time.perf_counter() - started)
    return times


def in_process(root: Path, runs: int) -> list[float]:
    """The server's own work per edit, without the protocol: `Session.diagnose`."""
    from flowc.lsp import Session

    spec = (root / SPEC_RELPATH).resolve()
    session = Session()
    session.open(spec, spec.read_text(encoding="utf-8"))
    session.diagnose(spec)
    times = []
    for edit in edits(spec.read_text(encoding="utf-8"), runs):
        session.open(spec, edit.text)
        started = time.perf_counter()
        session.diagnose(spec)
        times.append(time.perf_counter() - started)
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--transforms", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    root = WORK / f"lsp_{args.transforms}"
    if not (root / SPEC_RELPATH).is_file():
        generate_project(root, args.transforms)
    opened, times, diagnostics = asyncio.run(measure(root, args.runs))
    base = baseline(root, min(args.runs, 3))
    work = statistics.median(in_process(root, args.runs))
    median, base_median = statistics.median(times), statistics.median(base)
    ok = median < TARGET_S
    print(f"flowc lsp, {args.transforms} transforms, {args.runs} one-line edits")
    print()
    print("| measure | seconds |")
    print("| --- | --- |")
    print(f"| open: first diagnostics ({diagnostics} found) | {opened:.3f} |")
    print(f"| edit: diagnostics refresh, median | {median:.3f} |")
    print(f"| edit: min / max | {min(times):.3f} / {max(times):.3f} |")
    print(f"| edit: the server's analysis alone (in-process), median | {work:.3f} |")
    print(f"| baseline: full analysis (`flowc check`'s), median | {base_median:.3f} |")
    print(f"| refresh / baseline | {median / base_median:.2f} |")
    print()
    verdict = "PASS" if ok else "FAIL"
    print(f"target: median refresh < {TARGET_S * 1000:.0f} ms: {verdict} ({median * 1000:.0f} ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
