"""Sinks: where a pipeline's data leaves it — files, or tables through an engine.

Every sink is all-or-nothing. Files are written under a temporary name next to their target
and moved into place only once complete, so a failure leaves the old output as it was:
`csv(path)` is one `os.replace` (atomic on POSIX); `parquet(dir)` writes a whole new folder,
then renames the old one aside, the new one in, and deletes the old (two renames: a crash
between them leaves the old folder under its `.flowc-old-*` name, never a half-written
one; what a killed run left there is deleted once a later run has moved its output in).
Table sinks delegate to the engine's atomic `replace`, `append` and `merge`.

`parquet(dir, partition_by=[...])` writes Hive-style folders (`col=value/part-0.parquet`,
one file per partition); the partition columns live in the folder names, not in the files,
as Hive, Spark and DuckDB (`hive_partitioning`) expect. Without `partition_by` the folder
holds one `part-0.parquet`. The executor's Parquet sinks go through `stage_parquet_query`:
an engine that writes Parquet itself (DuckDB's `COPY`) writes that same layout without the
rows passing through Python; others stream through Arrow.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import glob
import gzip
import json
import math
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.csv as pa_csv
from flowc.runtime.engines.base import Data, Engine, Query, Table
from flowc.runtime.errors import StepError
from flowc.runtime.io import outputs
from flowc.runtime.io.columns import match_names

if TYPE_CHECKING:
    import pyarrow.dataset as ds

Mode = Literal["replace", "append", "merge"]
ROWS_PER_GROUP = 131_072


@runtime_checkable
class ParquetExporter(Protocol):
    """An engine that writes a query's rows as Parquet itself (DuckDB): the same layout as
    `stage_parquet`, without the rows passing through Python."""

    def export_parquet(
        self, query: Query, folder: Path, partition_by: Sequence[str] = ()
    ) -> int: ...


class Staged:
    """A file or folder written completely under a hidden name next to its `target`, not yet
    in place: `commit` moves it in (the old output is replaced), `discard` deletes it. The
    executor stages every file sink of a run and commits them only once the run succeeded.
    `manifest`: the target's record of what flowc wrote there (outputs.py), brought up to
    date around the move; `extra`: what it keeps beside (a CSV append's resume point)."""

    def __init__(
        self,
        staging: Path,
        target: Path,
        rows: int,
        manifest: outputs.Manifest | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        self.staging = staging
        self.target = target
        self.rows = rows
        self.manifest = manifest
        self.extra = dict(extra or {})

    def commit(self) -> None:
        try:
            if self.manifest is not None:  # old and new are flowc's while the move is under way
                self.manifest.save(outputs.listing(self.staging), keep_old=True, extra=self.extra)
            if self.staging.is_dir():
                _swap_in(self.staging, self.target)
            else:
                self.staging.replace(self.target)
            _remove_leftovers(self.target)
            if self.manifest is not None:
                self.manifest.save(outputs.listing(self.target), keep_old=False, extra=self.extra)
        finally:
            _remove(self.staging)

    def discard(self) -> None:
        _remove(self.staging)


def stage_parquet(
    root: Path,
    directory: str,
    data: pa.RecordBatchReader,
    *,
    partition_by: Sequence[str] = (),
    mode: Mode = "replace",
    tag: str = "run",
) -> Staged:
    """Write the Parquet files of `data` for the folder `directory` (relative to `root`)
    aside; nothing at `directory` changes until the result is committed. `mode`: see
    `_keep_old`; `tag` names an append's files (the same on `--resume`)."""
    target = _target(root, directory)
    manifest = outputs.claim(root, target, directory)
    with _os_errors(target):
        staging = _sibling(target, "tmp")
    counter = _Counter(data)
    try:
        with _os_errors(target):
            _write_dataset(counter.reader(), staging, partition_by)
            _keep_old(staging, target, mode, tag)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Staged(staging, target, counter.rows, manifest)


def stage_parquet_query(
    root: Path,
    directory: str,
    engine: Engine,
    query: Query,
    *,
    partition_by: Sequence[str] = (),
    mode: Mode = "replace",
    tag: str = "run",
) -> Staged:
    """`stage_parquet` for the rows of `query` on `engine`: written by the engine itself when
    it can (no Arrow table, no Python in the loop), else streamed through Arrow."""
    if not isinstance(engine, ParquetExporter):
        reader = engine.read_batches(query)
        return stage_parquet(root, directory, reader, partition_by=partition_by, mode=mode, tag=tag)
    target = _target(root, directory)
    manifest = outputs.claim(root, target, directory)
    with _os_errors(target):
        staging = _sibling(target, "tmp")
    try:
        with _os_errors(target):
            rows = engine.export_parquet(query, staging, partition_by)
            staging.mkdir(parents=True, exist_ok=True)  # partitioned, no rows: still a folder
            _keep_old(staging, target, mode, tag)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Staged(staging, target, rows, manifest)


def stage_csv(
    root: Path, path: str, data: pa.RecordBatchReader, *, mode: Mode = "replace", tag: str = "run"
) -> Staged:
    """Write `data` as CSV with a header row (gzip for `.gz`) for the file `path`, aside.
    `mode = append` copies the old file and adds the rows below it (no second header; the
    header must be the same); appending again under the same `tag` (a resumed run whose
    first attempt was moved in) starts from where that attempt started."""
    target = _target(root, path)
    manifest = outputs.claim(root, target, path)
    with _os_errors(target):
        staging = _sibling(target, "tmp")
    counter = _Counter(data)
    gzipped = target.suffix == ".gz"
    extra: dict[str, object] = {}
    try:
        with _os_errors(target):
            start = _append_point(target, manifest, tag) if mode == "append" else 0
            if mode == "append":
                extra = {"tag": tag, "offset": start}
            if start:
                _copy_start(target, staging, start)
                _same_header(target, path, counter.reader().schema, gzipped=gzipped)
            with _output(staging, gzipped=gzipped, append=bool(start)) as out:
                _write_csv(counter.reader(), out, header=not start)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return Staged(staging, target, counter.rows, manifest, extra)


def check_owned(root: Path, path: str) -> None:
    """`outputs.NotOwned` when the sink target `path` holds files flowc did not write: the
    executor asks before a run's first step, so that such a run fails before it works."""
    outputs.claim(root, _target(root, path), path)


@contextlib.contextmanager
def _os_errors(target: Path) -> Iterator[None]:
    """A file system failure (no space, a file where a folder should be) is the user's."""
    try:
        yield
    except OSError as error:
        raise StepError(f"cannot write {target}: {error}") from None


def write_parquet(
    root: Path,
    directory: str,
    data: pa.RecordBatchReader,
    *,
    partition_by: Sequence[str] = (),
    mode: Mode = "replace",
    tag: str = "run",
) -> int:
    """Write the folder `directory` (relative to `root`) with Parquet files of `data` in
    `mode`; the number of rows written."""
    staged = stage_parquet(root, directory, data, partition_by=partition_by, mode=mode, tag=tag)
    staged.commit()
    return staged.rows


def write_csv(
    root: Path, path: str, data: pa.RecordBatchReader, *, mode: Mode = "replace", tag: str = "run"
) -> int:
    """Write the file `path` with `data` as CSV with a header row (gzip for `.gz`)."""
    staged = stage_csv(root, path, data, mode=mode, tag=tag)
    staged.commit()
    return staged.rows


def write_table(
    engine: Engine, table: Table, data: Data, *, mode: Mode = "replace", key: Sequence[str] = ()
) -> int:
    """Write `data` into `table` on `engine`: replace it, append to it or merge by `key`."""
    if mode == "append":
        return engine.append(table, data)
    if mode == "merge":
        return engine.merge(table, key, data)
    return engine.replace_atomically(table, lambda staging: engine.create_table(staging, data))


# --- Parquet --------------------------------------------------------------------------------


def _write_dataset(reader: pa.RecordBatchReader, folder: Path, partition_by: Sequence[str]) -> None:
    import pyarrow.dataset as ds  # it imports pandas: only Parquet sinks pay for it

    partitioning = _partitioning(reader.schema, partition_by)
    try:
        ds.write_dataset(
            reader,
            folder,
            format="parquet",
            partitioning=partitioning,
            basename_template="part-{i}.parquet",
            preserve_order=True,  # type: ignore[call-arg]  # pyarrow>=15; stubs lag
            min_rows_per_group=ROWS_PER_GROUP,
            max_rows_per_group=ROWS_PER_GROUP * 8,
            existing_data_behavior="error",
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise StepError(f"cannot write Parquet: {error}") from None
    if not folder.exists():  # no rows: still leave the folder, with the schema if it can
        folder.mkdir(parents=True)
        if partitioning is None:
            import pyarrow.parquet as pq

            pq.write_table(reader.schema.empty_table(), folder / "part-0.parquet")


def _partitioning(schema: pa.Schema, partition_by: Sequence[str]) -> ds.Partitioning | None:
    if not partition_by:
        return None
    names = match_names(list(partition_by), schema.names, "the sink's input")
    fields = [schema.field(name) for name in names.values() if name is not None]
    import pyarrow.dataset as ds

    return ds.partitioning(pa.schema(fields), flavor="hive")


# --- CSV ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _output(path: Path, *, gzipped: bool, append: bool = False) -> Iterator[pa.NativeFile]:
    """A file to write CSV to; appended to, a gzip file gets a second gzip member, which
    every gzip reader reads as the continuation of the first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "ab" if append else "wb") as raw:
        if not gzipped:
            yield raw
            return
        with pa.CompressedOutputStream(raw, "gzip") as compressed:
            yield compressed


def _append_point(target: Path, manifest: outputs.Manifest, tag: str) -> int:
    """Where an append's rows start: the end of the old file; for a resumed run whose first
    attempt was already moved in (its tag is the last one recorded), where that one began."""
    if not target.is_file():
        return 0
    size = target.stat().st_size
    offset = manifest.extra.get("offset")
    if manifest.extra.get("tag") == tag and isinstance(offset, int) and 0 <= offset <= size:
        return offset
    return size


def _copy_start(target: Path, staging: Path, size: int) -> None:
    shutil.copyfile(target, staging)
    os.truncate(staging, size)


def _same_header(target: Path, shown: str, schema: pa.Schema, *, gzipped: bool) -> None:
    """Rows are appended below a header that names the same columns, or not at all."""
    with gzip.open(target, "rb") if gzipped else target.open("rb") as old:
        have = old.readline().rstrip(b"\r\n")
    buffer = pa.BufferOutputStream()
    _write_csv(pa.RecordBatchReader.from_batches(schema, iter(())), buffer, header=True)
    want = buffer.getvalue().to_pybytes().rstrip(b"\r\n")
    if have != want:
        raise StepError(
            f"cannot append to `{shown}`: its header is `{have.decode(errors='replace')}`, "
            f"the new rows' is `{want.decode(errors='replace')}`\n"
            "hint: write the same columns in the same order, or `mode = replace` once"
        )


def _write_csv(reader: pa.RecordBatchReader, out: pa.NativeFile, *, header: bool = True) -> None:
    options = pa_csv.WriteOptions(include_header=header)
    schema = pa.schema(
        pa.field(f.name, pa.string()) if pa.types.is_nested(f.type) else f for f in reader.schema
    )
    # a NativeFile is accepted at run time; the stubs know only paths and IO
    with pa_csv.CSVWriter(out, schema, write_options=options) as writer:  # type: ignore[arg-type]
        for batch in reader:
            writer.write_batch(_flat(batch, schema))


def _flat(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """CSV has no lists or structs: such a column is written as JSON text, the same from
    every engine (`[1, 2]`, `{"k": "v"}`), decimals as exact numbers, times in ISO 8601."""
    arrays = [
        pa.array([None if v is None else _json(v) for v in array.to_pylist()], pa.string())
        if pa.types.is_nested(array.type)
        else array
        for array in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _json(value: object) -> str:
    """
    >>> _json([1, None, {"a": decimal.Decimal("1.50"), "b": dt.date(2020, 1, 2)}])
    '[1, null, {"a": 1.50, "b": "2020-01-02"}]'
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | decimal.Decimal):
        return str(value) if not isinstance(value, decimal.Decimal) or value.is_finite() else "null"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "null"
    if isinstance(value, dt.date | dt.time):
        return json.dumps(value.isoformat())
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k), ensure_ascii=False)}: {_json(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        if all(isinstance(v, tuple) and len(v) == 2 for v in value) and value:  # a MAP's pairs
            return _json(dict(value))
        return "[" + ", ".join(_json(v) for v in value) + "]"
    if isinstance(value, bytes):
        return json.dumps(value.hex())
    return json.dumps(str(value), ensure_ascii=False)


# --- moving into place ----------------------------------------------------------------------


def _target(root: Path, text: str) -> Path:
    """The path a sink names: relative to `root`; absolute or `~/...` (allowed by flow.toml's
    `allow_paths`, which check enforces) as it says."""
    return Path(text).expanduser() if text.startswith("~") else root / text


def _keep_old(staging: Path, target: Path, mode: Mode, tag: str) -> None:
    """Bring into the staged folder what of the old output stays, as hard links (no copy;
    the old files are never changed): `append` keeps every old file and names the new ones
    after `tag` (`part-<tag>-0.parquet`), so a resumed append replaces its own first attempt
    and nothing else; `merge` keeps the old partitions that the new rows do not write."""
    if mode == "replace" or not target.is_dir():
        return
    if mode == "append":
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            name = path.name.removeprefix("part-")
            path.rename(path.with_name(f"part-{tag}-{name}"))
    new = outputs.listing(staging)
    written = {str(PurePosixPath(rel).parent) for rel in new} if mode == "merge" else set()
    for rel in outputs.listing(target):
        if rel in new or str(PurePosixPath(rel).parent) in written:
            continue
        kept = staging / rel
        kept.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(target / rel, kept)
        except OSError:  # a file system without hard links
            shutil.copy2(target / rel, kept)


def _sibling(target: Path, role: str) -> Path:
    """A hidden name next to `target`, on the same file system, so a rename can move it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_name(f".{target.name}.flowc-{role}-{uuid.uuid4().hex[:8]}")


def _swap_in(new: Path, target: Path) -> None:
    old = _sibling(target, "old") if target.exists() else None
    if old is not None:
        target.rename(old)
    try:
        new.rename(target)
    except BaseException:
        if old is not None:
            old.rename(target)
        raise
    if old is not None:
        _remove(old)


def _remove_leftovers(target: Path) -> None:
    """Delete what runs killed while writing `target` left beside it (a staged file or
    folder, an old one between the two renames): the new output is in place, and runs that
    write one target take turns (the DuckDB file's lock, the Postgres run lock), so no
    other run can be writing these any more."""
    for path in target.parent.glob(f".{glob.escape(target.name)}.flowc-*-*"):
        _remove(path)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class _Counter:
    """Counts the rows of a stream as a writer pulls them."""

    def __init__(self, source: pa.RecordBatchReader) -> None:
        self._source = source
        self.rows = 0

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self._source.schema, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        for batch in self._source:
            self.rows += batch.num_rows
            yield batch
