"""The fast path of a CSV load into an engine that parses CSV itself (`CsvCopying`: Postgres
`COPY ... FROM STDIN (FORMAT csv)`): the (gunzipped) bytes of each file stream straight into
the declared table, which the load step has just created with the declared types and
`not null`s, so the server does the parsing, the casts and the checks that `columns.py`
does on the Arrow path, at the speed of one COPY, in constant client memory.

It applies when every file's header names exactly the declared columns (compared ignoring
case, in any order, each once); otherwise (`None`) the load takes the Arrow path, which also
reports a missing column or skips undeclared ones. Differences from the Arrow path, where the
server is more lenient: Postgres rounds a decimal to the declared scale (`8.555` into
`decimal(10, 2)` is `8.56`, where the Arrow path fails), and accepts what its own input
functions accept (`1e3` as a double, `yes` as a boolean).
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from flowc.compiler.plan import LoadStep
from flowc.runtime.engines.base import CsvCopying
from flowc.runtime.errors import StepError
from flowc.runtime.io import sources


def load(engine: CsvCopying, root: Path, step: LoadStep) -> int | None:
    """Copy the step's CSV files into its (created, empty) table; the rows, or None when the
    files do not map onto the declared columns (nothing was copied then)."""
    source = step.source
    if source.kind != "csv" or source.path is None:
        return None
    output = step.outputs[0]
    declared = [c.name for c in source.columns or []]
    table_columns = [c.name for c in output.columns or []]
    if not declared or len(declared) != len(table_columns):
        return None
    header = bool(source.options.get("header", True))
    delimiter = str(source.options.get("delimiter", ","))
    if len(delimiter) != 1:  # a CSV reader takes more: the engine's COPY does not
        return None
    to_table = dict(zip((n.lower() for n in declared), table_columns, strict=True))
    files = sources.resolve_paths(root, source.path)
    plans: list[tuple[Path, list[str]]] = []
    for path in files:
        names = _header(path, delimiter) if header else declared
        columns = _columns(names, to_table)
        if columns is None:
            return None
        plans.append((path, columns))
    rows = 0
    for path, columns in plans:
        origin = _origin(root, path)
        with _open(path, origin) as data:
            reading = _Reading(data)
            with _damaged(origin, reading):
                rows += engine.copy_csv(
                    step.table,
                    columns,
                    reading,
                    origin=origin,
                    header=header,
                    delimiter=delimiter,
                    new_table=True,  # the step's statements have just created it
                )
    return rows


_BROKEN = (EOFError, zlib.error, gzip.BadGzipFile)


class _Reading(io.RawIOBase):
    """The bytes of a file as the COPY reads them, remembering why they stopped short: the
    driver reports a failed read as its own error, in its own words."""

    def __init__(self, data: io.BufferedIOBase) -> None:
        super().__init__()
        self._data = data
        self.failure: BaseException | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return self._data.read(size)
        except _BROKEN as error:
            self.failure = error
            raise


@contextmanager
def _damaged(origin: str, reading: _Reading) -> Iterator[None]:
    """A compressed file that cannot be read to its end (cut short, corrupt) fails the load
    naming the file; the COPY it fed is rolled back with the step."""
    try:
        yield
    except (StepError, *_BROKEN) as error:
        failure = reading.failure or (error if isinstance(error, _BROKEN) else None)
        if failure is None:
            raise
        if isinstance(failure, EOFError):
            text = f"the compressed file is truncated (it ends early: {failure})"
        else:
            text = f"the compressed file is damaged ({failure})"
        raise StepError(f"{origin}: {text}; download or copy it again") from None


def _columns(names: Sequence[str] | None, to_table: dict[str, str]) -> list[str] | None:
    """The table's column for each of the file's columns; None unless they are a one-to-one
    match with the declared ones."""
    if names is None:
        return None
    keys = [n.lower() for n in names]
    if len(set(keys)) != len(keys) or set(keys) != set(to_table):
        return None
    return [to_table[k] for k in keys]


def _header(path: Path, delimiter: str) -> list[str] | None:
    try:
        with sources.open_text(path) as text:
            return next(csv.reader(text, delimiter=delimiter), None)
    except sources.UNREADABLE_HEADER:
        return None  # the Arrow path reports it, naming the file


def _open(path: Path, origin: str) -> io.BufferedIOBase:
    try:
        return sources.open_binary(path)
    except OSError as error:
        raise StepError(f"{origin}: cannot read it: {error}") from None


def _origin(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
