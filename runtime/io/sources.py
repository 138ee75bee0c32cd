"""Sources: files, URLs and Python functions, read as streams of Arrow record batches.

Every reader returns a `pa.RecordBatchReader` that reads lazily, a block (CSV), a row group
slice (Parquet) or a chunk of lines (JSON) at a time, so memory is bounded by the batch size,
not the file size. Paths and globs are relative to the project root; a glob's files are read
in sorted order, so the same files always give the same rows in the same order. A `.gz`
file is read through gzip (ISA-L's decoder, `isal.igzip`: a third of zlib's time).

Declared `columns` are enforced by `columns.Conformer`: matched by name, cast to the declared
types, `not null` checked; a bad value fails naming the file, the row and the column.

A file is read on a thread of its own (`prefetched`), and its CSV blocks are parsed and
conformed on `PARSE_THREADS` threads (`in_order`), handed on in file order; a block that fails
is judged again where its first row number is known, so errors read as if read one by one.

CSV columns are matched *by header name*, case-insensitively, in whatever order the file
has them; columns the file has but the spec does not declare are skipped. A declared column
missing from a file's header is an error naming the file and the header it has (the spec
says the data has that column; filling it with NULLs would hide a changed layout). Without a
header row, the declared columns are the file's columns, in order. A JSON object that lacks
a key has NULL there (JSON has no header to be missing from). Values are read as text and
cast by flowc, not guessed by the CSV reader, so a CSV value either fits its declared type
exactly or fails.

Without declared columns the types are the reader's inference on the first block of the
first file; later batches must cast to them.
"""

from __future__ import annotations

import csv
import glob
import inspect
import io
import itertools
import os
import queue
import re
import threading
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

import pyarrow as pa
import pyarrow.csv as pa_csv
from flowc.runtime.errors import DataError, StepError
from flowc.runtime.io.columns import ColumnLike, Conformer, declared_schema
from isal import igzip, isal_zlib

CSV_BLOCK_BYTES = 1 << 20
JSON_CHUNK_BYTES = 1 << 20
PARQUET_BATCH_ROWS = 65_536
PREFETCH_BATCHES = 4
# what reading a broken file raises: a truncated gzip file an EOFError, a corrupt one the
# decoder's own error (its stub calls the class an instance)
_ISAL_ERROR: type[Exception] = isal_zlib.error  # type: ignore[assignment]
UNREADABLE: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error, _ISAL_ERROR)
# ... and a header that is no text or no CSV
UNREADABLE_HEADER: tuple[type[BaseException], ...] = (*UNREADABLE, UnicodeDecodeError, csv.Error)
# CSV blocks are parsed and conformed on this many threads at once (Arrow releases the GIL):
# the parse, not DuckDB's ingest, is the long pole of a load, and one thread leaves the
# machine's other cores idle. At most twice as many blocks are in flight.
PARSE_THREADS = min(4, os.cpu_count() or 1)
_JSON_CONFLICT = re.compile(
    r"Column\(/(?P<column>[^)]*)\) (?P<what>changed from \w+ to \w+) in row (?P<row>\d+)"
)
Columns = Sequence[ColumnLike] | None
FileReader = Callable[[Path, str], Iterator[pa.RecordBatch]]
T = TypeVar("T")
R = TypeVar("R")


def resolve_paths(root: Path, pattern: str) -> list[Path]:
    """The files a path or glob names, relative to `root`, sorted; at least one.

    >>> resolve_paths(Path("/"), "etc/host*")[0].name.startswith("host")
    True
    """
    # glob.glob, not Path.glob: the pattern may be absolute
    matches = sorted(glob.glob(str(root / pattern), recursive=True))  # noqa: PTH207
    files = [Path(m) for m in matches if Path(m).is_file()]
    if not files:
        raise StepError(f"no file matches `{pattern}` (relative to {root})")
    return files


def read_csv(
    root: Path,
    pattern: str,
    *,
    columns: Columns = None,
    header: bool = True,
    delimiter: str = ",",
    block_bytes: int = CSV_BLOCK_BYTES,
    origin: str | None = None,
) -> pa.RecordBatchReader:
    """Stream CSV files (a path or glob, `.gz` by extension).

    >>> read_csv(Path("."), "x.csv", columns=[])  # doctest: +SKIP
    """

    def read(path: Path, origin: str) -> Iterator[pa.RecordBatch]:
        return _csv_batches(path, origin, columns, header, delimiter, block_bytes)

    return _files_reader(root, resolve_paths(root, pattern), read, columns, origin)


def read_parquet(
    root: Path,
    pattern: str,
    *,
    columns: Columns = None,
    batch_rows: int = PARQUET_BATCH_ROWS,
    origin: str | None = None,
) -> pa.RecordBatchReader:
    """Stream Parquet files (a path or glob), only the declared columns read."""

    def read(path: Path, origin: str) -> Iterator[pa.RecordBatch]:
        return _parquet_batches(path, origin, columns, batch_rows)

    return _files_reader(root, resolve_paths(root, pattern), read, columns, origin)


def read_json(
    root: Path,
    pattern: str,
    *,
    columns: Columns = None,
    chunk_bytes: int = JSON_CHUNK_BYTES,
    origin: str | None = None,
) -> pa.RecordBatchReader:
    """Stream newline-delimited JSON files (a path or glob, `.gz` by extension)."""

    def read(path: Path, origin: str) -> Iterator[pa.RecordBatch]:
        return _json_batches(path, origin, columns, chunk_bytes)

    return _files_reader(root, resolve_paths(root, pattern), read, columns, origin)


def read_file(
    root: Path, pattern: str, file_format: str, *, columns: Columns = None, **options: Any
) -> pa.RecordBatchReader:
    """Dispatch on `file_format` (`csv`, `parquet`, `json`)."""
    readers: dict[str, Callable[..., pa.RecordBatchReader]] = {
        "csv": read_csv,
        "parquet": read_parquet,
        "json": read_json,
    }
    if file_format not in readers:
        raise StepError(f"unknown file format `{file_format}` (csv, parquet or json)")
    return readers[file_format](root, pattern, columns=columns, **options)


def read_python(
    root: Path,
    entry: str,
    *,
    columns: Columns = None,
    params: Mapping[str, object] | None = None,
    node: str | None = None,
) -> pa.RecordBatchReader:
    """Call a Python source `path.py:function` and stream what it returns (a DataFrame, an
    Arrow table or an iterator of record batches). Pipeline parameters are passed to the
    function's parameters of the same name; it need not declare any."""
    from flowc.runtime.usercode import (
        userpy,  # pandas comes with it: only Python sources pay for it
    )

    function = userpy.load_function(root, entry, node=node)
    kwargs = _wanted(function, params or {})
    what = f"`{entry}`"
    result = userpy.call_user(function, root=root, node=node, what=what, **kwargs)

    def guard(items: Iterable[object]) -> Iterator[object]:
        return userpy.guarded(items, root=root, node=node, what=what)

    empty = declared_schema(columns) if columns else None
    reader = userpy.to_reader(result, origin=what, guard=guard, empty=empty)
    if columns is None:
        return reader
    conformer = Conformer(tuple(columns), what, extra="error")
    return _reader(conformer.stream(reader), columns, conformer.schema(reader.schema))


def _wanted(function: Callable[..., Any], params: Mapping[str, object]) -> dict[str, object]:
    names = inspect.signature(function).parameters
    return {name: value for name, value in params.items() if name in names}


# --- one stream over many files -------------------------------------------------------------


def _files_reader(
    root: Path, files: list[Path], read: FileReader, columns: Columns, origin: str | None
) -> pa.RecordBatchReader:
    """One stream over `files` in order; `origin` names a single file in messages."""
    batches = itertools.chain.from_iterable(read(f, origin or _origin(root, f)) for f in files)
    schema = declared_schema(columns) if columns else None
    return _reader(prefetched(batches), columns, schema)


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


def prefetched(
    batches: Iterator[pa.RecordBatch], depth: int = PREFETCH_BATCHES
) -> Iterator[pa.RecordBatch]:
    """`batches`, read on a thread of their own while the consumer (DuckDB ingesting, a
    COPY) works on the previous ones: decompressing, parsing and casting mostly release the
    GIL, so reading and loading overlap. The order is kept; at most `depth` batches wait; an
    error of the reader is raised here, as itself; a consumer that stops early stops it."""
    waiting: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not hand_over(batch):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            hand_over(_Failed(error))
            return
        hand_over(_END)

    threading.Thread(target=produce, name="flowc-read", daemon=True).start()
    try:
        while True:
            item = waiting.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()


def _reader(
    batches: Iterator[pa.RecordBatch], columns: Columns, schema: pa.Schema | None
) -> pa.RecordBatchReader:
    """A reader over `batches`; without a known schema, the first batch's (peeked)."""
    if schema is None or (columns is not None and declared_schema(columns) is None):
        first = next(batches, None)
        if first is None:
            return pa.RecordBatchReader.from_batches(schema or pa.schema([]), iter(()))
        schema = first.schema
        batches = itertools.chain([first], batches)
    return pa.RecordBatchReader.from_batches(schema, _aligned(batches, schema))


def _aligned(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if batch.schema.equals(schema):
            yield batch
            continue
        try:
            yield batch.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError) as error:
            raise StepError(
                f"a later file's columns do not match the first's ({error}); declare `columns`"
            ) from None


def _origin(root: Path, path: Path) -> str:
    """How a file is named in messages: relative to the project root where it is inside."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _wrap_errors(origin: str, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """A malformed file (a CSV row with too many fields, invalid JSON) fails naming it."""
    try:
        yield from batches
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as error:
        raise StepError(f"{origin}: cannot read it: {error}") from None


# --- CSV ------------------------------------------------------------------------------------


def _csv_batches(
    path: Path, origin: str, columns: Columns, header: bool, delimiter: str, block_bytes: int
) -> Iterator[pa.RecordBatch]:
    names = _csv_header(path, delimiter, origin) if header else None
    if names is None and columns is not None:
        names = [c.name for c in columns]
    # one block is parsed on one thread: the blocks themselves run in parallel
    read_options = pa_csv.ReadOptions(
        column_names=names, autogenerate_column_names=names is None, use_threads=False
    )
    convert = pa_csv.ConvertOptions(null_values=[""], strings_can_be_null=True)
    parse = pa_csv.ParseOptions(delimiter=delimiter)
    chunks = _csv_chunks(path, origin, block_bytes, skip_header=header)
    if columns is None or names is None:
        return _parse_csv_chunks(chunks, origin, read_options, parse, convert, None)
    conformer = Conformer(tuple(columns), origin, line_offset=1 if header else 0)
    wanted = [n for n in conformer.schema_names(_text_schema(names)) if n is not None]
    convert.include_columns = wanted  # only the declared columns are parsed, all as text
    convert.column_types = dict.fromkeys(wanted, pa.string())
    return _parse_csv_chunks(chunks, origin, read_options, parse, convert, conformer)


def _text_schema(names: Sequence[str]) -> pa.Schema:
    return pa.schema([pa.field(n, pa.string()) for n in names])


def _csv_chunks(path: Path, origin: str, block_bytes: int, *, skip_header: bool) -> Iterator[bytes]:
    """The file's data rows in pieces of about `block_bytes`, each ending at a line end.

    flowc cuts the file itself, rather than using Arrow's streaming CSV reader, because
    that reader parses ahead of its consumer: its memory grows with the file. A value
    quoted across lines is not supported (nor is it by Arrow's reader, by default)."""
    try:
        with open_binary(path) as binary:
            if skip_header:
                binary.readline()
            rest = b""
            while block := binary.read(block_bytes):
                data = rest + block
                cut = data.rfind(b"\n") + 1
                rest = data[cut:]
                if cut:
                    yield data[:cut]
            if rest.strip():
                yield rest
    except UNREADABLE as error:
        raise StepError(f"{origin}: cannot read it: {error}") from None


@dataclass(frozen=True)
class _Block:
    """One parsed CSV block: its rows as text, and conformed (None: a value did not fit)."""

    parsed: list[pa.RecordBatch]
    conformed: list[pa.RecordBatch] | None

    @property
    def rows(self) -> int:
        return sum(b.num_rows for b in self.parsed)


def _parse_csv_chunks(
    chunks: Iterable[bytes],
    origin: str,
    read_options: pa_csv.ReadOptions,
    parse: pa_csv.ParseOptions,
    convert: pa_csv.ConvertOptions,
    conformer: Conformer | None,
) -> Iterator[pa.RecordBatch]:
    """The blocks' rows, conformed, in file order; the blocks are parsed in parallel.

    A block's row numbers are known only once the blocks before it are counted, so a
    failing block is judged again in order, where they are: a bad value or a malformed
    row fails naming the same row as when the blocks are read one by one."""

    def work(chunk: bytes) -> _Block:
        table = pa_csv.read_csv(
            io.BytesIO(chunk),
            read_options=read_options,
            parse_options=parse,
            convert_options=convert,
        )
        batches = table.to_batches()
        if conformer is None:
            return _Block(batches, batches)
        try:
            return _Block(batches, [conformer.batch(b) for b in batches])
        except DataError:
            return _Block(batches, None)

    row = 1
    for future in in_order(work, chunks, PARSE_THREADS):
        try:
            block = future.result()
        except pa.ArrowInvalid as error:
            where = f"in the rows from {row} on"
            raise StepError(f"{origin}: not valid CSV ({where}): {error}") from None
        conformed = block.conformed
        if conformed is None and conformer is not None:  # raises, naming the row
            conformed = list(conformer.stream(block.parsed, first_row=row))
        yield from conformed or ()
        row += block.rows


def in_order(
    work: Callable[[T], R], items: Iterable[T], threads: int
) -> Generator[Future[R], None, None]:
    """`work` done on each of `items` on up to `threads` threads, handed back as futures in
    the order of `items`, with at most `2 * threads` under way. An error taking the next item
    is raised after the items before it are handed back, as it would be one by one; a
    consumer that stops early cancels what has not started."""
    if threads <= 1:  # no pool on one core: the work as it comes
        for item in items:
            done: Future[R] = Future()
            try:
                done.set_result(work(item))
            except Exception as error:  # the consumer reads it from the future, in its place
                done.set_exception(error)
            yield done
        return
    pool = ThreadPoolExecutor(threads, thread_name_prefix="flowc-parse")
    waiting: deque[Future[R]] = deque()
    try:
        source = iter(items)
        while True:
            try:
                item = next(source)
            except StopIteration:
                break
            except BaseException:
                yield from waiting  # the blocks before the failure first, as one by one
                raise
            waiting.append(pool.submit(work, item))
            if len(waiting) >= 2 * threads:
                yield waiting.popleft()
        yield from waiting
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _csv_header(path: Path, delimiter: str, origin: str) -> list[str]:
    with open_text(path) as text:
        try:
            row = next(csv.reader(text, delimiter=delimiter), None)
        except UNREADABLE_HEADER as error:
            raise StepError(f"{origin}: cannot read its header: {error}") from None
    if not row:
        raise StepError(f"{origin} is empty: it has no header row")
    return row


def open_binary(path: Path) -> io.BufferedIOBase:
    """The bytes of a file, gunzipped when its name ends in `.gz`."""
    if path.suffix == ".gz":
        gunzipped: io.BufferedIOBase = igzip.IGzipFile(path, "rb")  # type: ignore[no-untyped-call]
        return gunzipped
    return path.open("rb")


def open_text(path: Path) -> TextIO:
    """The text of a file (UTF-8, a byte-order mark skipped), gunzipped for `.gz`."""
    if path.suffix == ".gz":
        text: TextIO = igzip.open(  # type: ignore[no-untyped-call]
            path, "rt", encoding="utf-8-sig", newline=""
        )
        return text
    return path.open(encoding="utf-8-sig", newline="")


# --- Parquet --------------------------------------------------------------------------------


def _parquet_batches(
    path: Path, origin: str, columns: Columns, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq  # imported where used: a CSV-only run starts faster

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise StepError(f"{origin}: not a readable Parquet file: {error}") from None
    if columns is None:
        return _wrap_errors(origin, parquet.iter_batches(batch_size=batch_rows))
    conformer = Conformer(tuple(columns), origin)
    names = [n for n in conformer.schema_names(parquet.schema_arrow) if n is not None]
    batches = parquet.iter_batches(batch_size=batch_rows, columns=names)
    return conformer.stream(_wrap_errors(origin, batches))


# --- newline-delimited JSON -----------------------------------------------------------------


def _json_batches(
    path: Path, origin: str, columns: Columns, chunk_bytes: int
) -> Iterator[pa.RecordBatch]:
    conformer = None if columns is None else Conformer(tuple(columns), origin, missing="null")
    row = 1
    for chunk in _line_chunks(path, origin, chunk_bytes):
        table = _parse_json(chunk, origin, row)
        for batch in table.to_batches():
            yield conformer.batch(batch, row) if conformer else batch
            row += batch.num_rows


def _line_chunks(path: Path, origin: str, chunk_bytes: int) -> Iterator[bytes]:
    try:
        with open_binary(path) as binary:
            while lines := binary.readlines(chunk_bytes):
                yield b"".join(lines)
    except UNREADABLE as error:
        raise StepError(f"{origin}: cannot read it: {error}") from None


def _parse_json(chunk: bytes, origin: str, first_row: int) -> pa.Table:
    import pyarrow.json as pa_json  # imported where used: a CSV-only run starts faster

    try:
        return pa_json.read_json(io.BytesIO(chunk))
    except pa.ArrowInvalid as error:
        conflict = _JSON_CONFLICT.search(str(error))
        if conflict:  # a key holding a number in one object and a string in a later one
            row = first_row + int(conflict["row"])
            raise DataError(origin, row, conflict["column"], conflict["what"]) from None
        where = f"in the rows from {first_row} on"
        raise StepError(f"{origin}: not valid JSON lines ({where}): {error}") from None
