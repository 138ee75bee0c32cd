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
import json
import math
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.csv as pa_csv
from flowc.runtime.columns import match_names
from flowc.runtime.engine import Data, Engine, Query, Table
from flowc.runtime.errors import StepError

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
    executor stages every file sink of a run and commits them only once the run succeeded."""

    def __init__(self, staging: Path, target: Path, rows: int) -> None:
        self.staging = staging
        self.target = target
        self.rows = rows

    def commit(self) -> None:
        try:
            if self.staging.is_dir():
                _swap_in(self.staging, self.target)
            else:
                self.staging.replace(self.target)
            _remove_leftovers(self.target)
        finally:
            _remove(self.staging)

    def discard(self) -> None:
        _remove(self.staging)


def stage_parquet(
    root: Path, directory: str, data: pa.RecordBatchReader, *, partition_by: Sequence[str] = ()
) -> Staged:
    """Write the Parquet files of `data` for the folder `directory` (relative to `root`)
    aside; nothing at `directory` changes until the result is committed."""
    target = root / directory
    with _os_errors(target):
        staging = _sibling(target, "tmp")
    counter = _Counter(data)
    try:
        with _os_errors(target):
            _write_dataset(counter.reader(), staging, partition_by)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Staged(staging, target, counter.rows)


def stage_parquet_query(
    root: Path, directory: str, engine: Engine, query: Query, *, partition_by: Sequence[str] = ()
) -> Staged:
    """`stage_parquet` for the rows of `query` on `engine`: written by the engine itself when
    it can (no Arrow table, no Python in the loop), else streamed through Arrow."""
    if not isinstance(engine, ParquetExporter):
        reader = engine.read_batches(query)
        return stage_parquet(root, directory, reader, partition_by=partition_by)
    target = root / directory
    with _os_errors(target):
        staging = _sibling(target, "tmp")
    try:
        with _os_errors(target):
            rows = engine.export_parquet(query, staging, partition_by)
            staging.mkdir(parents=True, exist_ok=True)  # partitioned, no rows: still a folder
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Staged(staging, target, rows)


def stage_csv(root: Path, path: str, data: pa.RecordBatchReader) -> Staged:
    """Write `data` as CSV with a header row (gzip for `.gz`) for the file `path`, aside."""
    target = root / path
    with _os_errors(target):
        staging = _sibling(target, "tmp")
    counter = _Counter(data)
    try:
        with _os_errors(target), _output(staging, gzipped=target.suffix == ".gz") as out:
            _write_csv(counter.reader(), out)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return Staged(staging, target, counter.rows)


@contextlib.contextmanager
def _os_errors(target: Path) -> Iterator[None]:
    """A file system failure (no space, a file where a folder should be) is the user's."""
    try:
        yield
    except OSError as error:
        raise StepError(f"cannot write {target}: {error}") from None


def write_parquet(
    root: Path, directory: str, data: pa.RecordBatchReader, *, partition_by: Sequence[str] = ()
) -> int:
    """Replace the folder `directory` (relative to `root`) with Parquet files of `data`;
    the number of rows written."""
    staged = stage_parquet(root, directory, data, partition_by=partition_by)
    staged.commit()
    return staged.rows


def write_csv(root: Path, path: str, data: pa.RecordBatchReader) -> int:
    """Replace the file `path` with `data` as CSV with a header row (gzip for `.gz`)."""
    staged = stage_csv(root, path, data)
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
def _output(path: Path, *, gzipped: bool) -> Iterator[pa.NativeFile]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as raw:
        if not gzipped:
            yield raw
            return
        with pa.CompressedOutputStream(raw, "gzip") as compressed:
            yield compressed


def _write_csv(reader: pa.RecordBatchReader, out: pa.NativeFile) -> None:
    options = pa_csv.WriteOptions(include_header=True)
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
