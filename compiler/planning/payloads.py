"""The payloads of steps that the spec's words alone decide: a load's `Source`, an export's
`Sink`, an incremental transform's `Incremental`, a Python step's entry point, the retry
settings every step carries.

They need no query and no connection (an incremental's statements come from its renderer),
so they are kept apart from the walk that builds the steps (`steps.py`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flowc.compiler import ir, plan, vocabulary
from flowc.compiler.analysis import extract
from flowc.compiler.analysis.arguments import unwrap_dates
from flowc.compiler.analysis.schedule import parse_duration
from flowc.compiler.codegen.generate import Renderer
from flowc.compiler.planning.placement import AnyNode

# keywords of a source call that are not reader options: the format, and how http fetches
_NOT_OPTIONS = frozenset({"url", "format", *(n for n, _ in vocabulary.FETCHING)})


def scalar(value: ir.Value | None) -> plan.JsonScalar:
    """A spec value as plan data: a literal's value, a name dotted."""
    if isinstance(value, ir.Str | ir.Num | ir.Bool):
        return value.value
    if isinstance(value, ir.Ref):
        return value.dotted
    return None


def seconds(value: ir.Str | None) -> float | None:
    if value is None:
        return None
    duration = parse_duration(value.value)
    return duration.total_seconds() if duration is not None else None


def retry(node: AnyNode, pipeline: ir.Pipeline) -> dict[str, Any]:
    """A step's `retries`, `retry_delay_s` and `timeout_s`: the node's, else the pipeline's."""
    return {
        "retries": node.retries if node.retries is not None else pipeline.retries,
        "retry_delay_s": seconds(node.retry_delay or pipeline.retry_delay),
        "timeout_s": seconds(node.timeout or pipeline.timeout),
    }


def source(call: ir.Call, columns: tuple[ir.Column, ...] | None) -> plan.Source:
    """Where a load reads: the source's `from` call (never `table(...)`: read in place)."""
    first = scalar(call.args[0]) if call.args else None
    fetched: dict[str, Any] = {}
    if call.name == "http":  # one URL or several, maybe a JSON API
        every = extract.urls(call)
        first = every[0] if every else None
        headers = call.keyword("headers")
        fetched = {
            "urls": every if len(every) > 1 else [],
            "api": extract.api(call),
            "headers": extract.string_map(headers.value) if headers else {},
        }
    options = {k.name: scalar(k.value) for k in call.keywords if k.name not in _NOT_OPTIONS}
    fmt = call.keyword("format")
    declared = None
    if columns is not None:
        declared = [plan.Column(name=c.name, type=c.type, not_null=c.not_null) for c in columns]
    return plan.Source(
        kind=call.name,  # type: ignore[arg-type]
        path=str(first) if first is not None else None,
        format=str(scalar(fmt.value)) if fmt else (None if call.name == "http" else call.name),
        options=dict(sorted(options.items())),
        columns=declared,
        **fetched,
    )


def sink(node: ir.SinkNode, call: ir.Call, spell: Callable[[str], str]) -> plan.Sink:
    """Where an export writes: the sink's `to` call, its columns as `spell` names them. The
    call's arguments are as the vocabulary requires (checked before planning)."""
    layout = ("partition_by", "cluster_by")
    options = {k.name: scalar(k.value) for k in call.keywords if k.name not in layout}
    mode = node.mode.dotted if node.mode else "replace"
    key = _names(node.key, spell)
    partition_by = _names(_refs(call, "partition_by"), spell)
    first = call.args[0]
    if call.name == "table":
        table = call.args[1]
        assert isinstance(first, ir.Ref) and isinstance(table, ir.Str), "table(conn, name)"
        return plan.TableSink(
            kind="table",
            connection=first.dotted,
            table=table.value,
            mode=mode,  # type: ignore[arg-type]
            key=key,
            partition_by=partition_by,
            cluster_by=_names(_refs(call, "cluster_by"), spell),
            options=dict(sorted(options.items())),
        )
    assert isinstance(first, ir.Str), "a file sink's path"
    return plan.FileSink(
        kind=call.name,  # type: ignore[arg-type]
        path=first.value,
        mode=mode,  # type: ignore[arg-type]
        key=key,
        partition_by=partition_by,
        options=dict(sorted(options.items())),
    )


def names_columns(sink: plan.Sink, renderer: Renderer) -> bool:
    """Whether an export names its input's columns: as keys, or, for a file written from a
    connection that folds names, all of them (`renamed`)."""
    if isinstance(sink, plan.TableSink):
        return bool(sink.key or sink.partition_by or sink.cluster_by)
    return bool(sink.key or sink.partition_by or renderer.fold_quoted)


def renamed(query: str, spellings: Mapping[str, str], renderer: Renderer) -> str:
    """`query` with its columns renamed as `spellings` says."""
    q = renderer.quoted
    columns = ", ".join(f"{q((engine,))} AS {q((spec,))}" for engine, spec in spellings.items())
    return f"SELECT {columns}\nFROM (\n{query}\n) AS _spelled"


def incremental(
    node: ir.TransformNode,
    renderer: Renderer,
    parts: tuple[str, ...],
    query: str,
    spell: Callable[[str], str],
) -> plan.Incremental:
    """How an incremental transform's later runs add the rows of `query` to its table."""
    key = [spell(k.dotted) for k in node.unique_key]
    time_column = spell(node.time_column.dotted) if node.time_column else None
    increment = renderer.incremental(parts, query, time_column, key)
    return plan.Incremental(
        strategy="merge" if key else "delete_insert",
        unique_key=key,
        time_column=time_column,
        lookback_s=seconds(node.lookback),
        watermark=increment.watermark,
        new_rows=increment.new_rows,
        duplicates=increment.duplicates,
        update=increment.update,
    )


def python_entry(entry: ir.PythonEntry, root: str) -> plan.PythonEntry:
    """A Python block's entry point, with the digest of its file (a change reruns it)."""
    return plan.PythonEntry(
        path=entry.path,
        function=entry.function,
        sha256=file_digest(Path(root) / entry.path),
    )


def file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _names(values: Sequence[ir.Value], spell: Callable[[str], str]) -> list[str]:
    return [spell(v.parts[0]) for v in values if isinstance(v, ir.Ref)]


def _refs(call: ir.Call, keyword: str) -> Sequence[ir.Value]:
    """The columns a list argument names; `date(col)` names `col` (partitioned by day)."""
    given = call.keyword(keyword)
    items = given.value.items if given and isinstance(given.value, ir.ListValue) else ()
    return unwrap_dates(items)
