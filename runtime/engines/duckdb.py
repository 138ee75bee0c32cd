"""The DuckDB adapter: the embedded default engine, in-process.

Arrow goes in and out without pandas: DuckDB scans a registered `RecordBatchReader` as it
pulls batches (so a load streams) and hands query results back as a `RecordBatchReader`.

Names. DuckDB compares identifiers case-insensitively, quoted or not, and keeps the case of
the definition (compiler/analysis/schema.py): every identifier is quoted, which keeps a declared
`VendorID` as `VendorID` and makes any name safe, and finds it under any case.

Atomicity. DuckDB's DDL is transactional and its readers see snapshots: a replace builds a
staging table next to the target, then drops the old table and renames the staging table in
one transaction. A reader that started before the commit keeps seeing the old table; one
that starts after sees the new; a failure before or during the swap rolls back to the old.

Stages (`Staging`, executor.py): a run builds in a stage schema first on the search path;
`publish` puts views under the real names over the stage's tables (DuckDB cannot move a
table to another schema without copying it), and `drop_stages` drops the stages no view
reads any more.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
from flowc.project.config import DuckDBSettings
from flowc.runtime import resources
from flowc.runtime.engines.base import Data, Params, Query, Table, TableName, drop_in_stage
from flowc.runtime.errors import EngineBusy, StepError
from flowc.runtime.io.columns import match_names

DIALECT = "duckdb"
MEMORY = ":memory:"
# DuckDB's buffer pool per database, unless flow.toml sets `memory_limit`: a quarter of the
# machine's memory (or of the container's, when it has less). DuckDB's own default is 80%;
# the rest is left to Python blocks, Arrow batches and other runs. Beyond the limit DuckDB
# evicts written blocks and spills joins, sorts and aggregates to `temp_directory`; below it
# the tables a run writes stay cached, so a long run's RSS grows up to the limit.
MEMORY_SHARE = 0.25
# A database file admits one writing process: a second run waits this long (flow.toml:
# `lock_timeout`) for the first to let go, as runs on Postgres wait for its run lock.
LOCK_TIMEOUT_S = 600.0
LOCK_POLL_S = 0.2  # polled: DuckDB has no blocking open
_LOCK_HELD = re.compile(r"Could not set lock on file.*?(?:\(PID (\d+)\)|$)", re.DOTALL)
OWN_SCHEMA = "main"  # where published names live (stage names are `_flowc_[a-z0-9_]*`)
R = TypeVar("R")
_counter = itertools.count()


def _busy(path: Path | str, holder: int | None, waited_s: float) -> EngineBusy:
    who = f" (pid {holder})" if holder is not None else ""
    return EngineBusy(
        f"the DuckDB database {path} is in use by another process{who}, still after waiting "
        f"{waited_s:g}s (a DuckDB file admits one writing process); run again once it has "
        "finished, or raise `lock_timeout` of the connection in flow.toml"
    )


def default_memory_limit() -> str:
    """`MEMORY_SHARE` of the memory this process can have, in MB (DuckDB's own rule, 80%,
    also looks at the container's limit)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        total = min(total, int(text)) if text.isdigit() else total
    except OSError:
        pass
    return f"{max(int(total * MEMORY_SHARE) // 2**20, 256)}MiB"


def quote_identifier(name: str) -> str:
    """`name` as a DuckDB identifier: always quoted, embedded quotes doubled.

    >>> quote_identifier('Vendor"ID')
    '"Vendor""ID"'
    """
    return '"' + name.replace('"', '""') + '"'


class DuckDBEngine:
    """An `Engine` over one DuckDB database file (or `:memory:`)."""

    dialect = DIALECT

    def __init__(self, connection: duckdb.DuckDBPyConnection, pool: _Pool | None = None) -> None:
        self._con = connection
        self._pool = pool or _Pool(None)
        self._stale_views: list[str] = []
        self._in_transaction = False
        self._stage: str | None = None
        self._internal: str | None = None  # where unpublished nodes live (`use_internal`)
        self._notes: list[str] = []  # what loads had to round, for the step to report

    @classmethod
    def connect(
        cls,
        path: Path | str,
        *,
        read_only: bool = False,
        memory_limit: str | None = None,
        threads: int | None = None,
        temp_directory: Path | str | None = None,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
        on_wait: Callable[[int | None], None] | None = None,
    ) -> DuckDBEngine:
        """Open (creating the file and its folder) the database at `path`. While another
        process holds the file, wait for it (up to `lock_timeout_s`), first telling `on_wait`
        that process's pid (None when DuckDB does not say).

        >>> DuckDBEngine.connect(":memory:").table_exists("t")
        False
        """
        if str(path) != MEMORY and not read_only:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": memory_limit or default_memory_limit(),
            # the data of small writes waits in memory for a checkpoint, which comes when
            # the WAL reaches this size (DuckDB: 16MB, 130 MB of tables in a long run)
            "checkpoint_threshold": "4MB",
        }
        if threads is not None:
            config["threads"] = threads
        if temp_directory is not None:
            config["temp_directory"] = str(temp_directory)
        deadline: float | None = None
        while True:
            try:
                connection = duckdb.connect(str(path), read_only=read_only, config=config)
            except duckdb.IOException as error:
                held = _LOCK_HELD.search(str(error))
                if held is None:
                    raise StepError(f"cannot open the DuckDB database {path}: {error}") from None
                holder = int(held.group(1)) if held.group(1) else None
                if deadline is None:
                    deadline = time.monotonic() + lock_timeout_s
                    if on_wait is not None:
                        on_wait(holder)
                if time.monotonic() >= deadline:
                    raise _busy(path, holder, lock_timeout_s) from None
                time.sleep(LOCK_POLL_S)
                continue
            except duckdb.Error as error:
                raise StepError(f"cannot open the DuckDB database {path}: {error}") from None
            # a session setting (cursors start without it): it would print on flowc's stdout
            connection.execute("SET enable_progress_bar = false")
            return cls(connection, _Pool(str(config["memory_limit"])))

    @classmethod
    def from_settings(
        cls,
        settings: DuckDBSettings,
        root: Path,
        on_wait: Callable[[int | None], None] | None = None,
    ) -> DuckDBEngine:
        """The connection a profile declares; `path` and `temp_directory` are relative to
        the project root."""
        path = settings.path if settings.path == MEMORY else root / settings.path
        temp = root / settings.temp_directory if settings.temp_directory else None
        return cls.connect(
            path,
            read_only=settings.read_only,
            memory_limit=settings.memory_limit,
            threads=settings.threads,
            temp_directory=temp,
            lock_timeout_s=LOCK_TIMEOUT_S
            if settings.lock_timeout_s is None
            else settings.lock_timeout_s,
            on_wait=on_wait,
        )

    def __enter__(self) -> DuckDBEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()

    # --- statements and reads -------------------------------------------------------------

    def execute(self, sql: str, params: Params | None = None) -> None:
        if self._stage or self._internal:
            sql = drop_in_stage(sql, quote_identifier(self._stage or self._internal or ""))
        with _engine_errors():
            # DuckDB wants every result consumed before the next statement: a statement's
            # result is at most a row count
            self._con.execute(sql, _used_params(sql, params)).fetchall()

    def read_batches(
        self, source: Table | Query, *, batch_size: int = 65_536
    ) -> pa.RecordBatchReader:
        query = (
            source if isinstance(source, Query) else Query(f"SELECT * FROM {self.quote(source)}")
        )
        # its own snapshot, so writes on the engine go on meanwhile; inside an open
        # transaction the connection itself, whose uncommitted writes a cursor cannot see
        cursor = self._con if self._in_transaction else self._cursor()
        with _engine_errors():
            relation = cursor.sql(query.sql, params=_used_params(query.sql, query.params))
            return _reader(relation, batch_size)

    # --- writes ---------------------------------------------------------------------------

    def load_batches(
        self, table: Table, schema: pa.Schema, batches: Iterator[pa.RecordBatch]
    ) -> int:
        return self.create_table(table, pa.RecordBatchReader.from_batches(schema, batches))

    def create_table(self, table: Table, data: Data) -> int:
        target = TableName.parse(table)
        self._ensure_schema(target)
        rows = self._write(f"CREATE TABLE {self.quote(target)} AS SELECT * FROM {{}}", data)
        if not isinstance(data, Query):
            for column in _wide(data.schema):
                self._narrow(target, column)
        return rows

    def _narrow(self, table: TableName, column: str) -> None:
        """A column that came as decimals wider than DuckDB's (38 digits; `_write` took them
        as text) becomes the DECIMAL(38, s) that holds every value exactly; where none
        does, rounded to the places 38 digits leave (or a DOUBLE), and said so."""
        quoted = quote_identifier(column)
        digits, scale = self.scalar(
            f"SELECT coalesce(max(length(ltrim(split_part(ltrim({quoted}, '-'), '.', 1), '0'))), "
            f"0), coalesce(max(length(rtrim(split_part({quoted}, '.', 2), '0'))), 0) "
            f"FROM {self.quote(table)}",
            row=True,
        )
        if digits + scale <= _DECIMAL_DIGITS:
            kind = f"DECIMAL({_DECIMAL_DIGITS}, {scale})"
        elif digits >= _DECIMAL_DIGITS:
            kind = "DOUBLE"
            self._notes.append(
                f"column `{column}` has values of {digits} digits, more than "
                "a DuckDB decimal holds (38): stored as DOUBLE"
            )
        else:  # a digit left for what rounding carries (9.5 -> 10)
            places = _DECIMAL_DIGITS - 1 - digits
            kind = f"DECIMAL({_DECIMAL_DIGITS}, {places})"
            self._notes.append(
                f"column `{column}` has values of {digits} digits and {scale} decimal "
                f"places, more than a DuckDB decimal holds (38): rounded to {places} places"
            )
        self.execute(
            f"ALTER TABLE {self.quote(table)} ALTER {quoted} TYPE {kind} "
            f"USING CAST({quoted} AS {kind})"
        )

    def take_notes(self) -> list[str]:
        """What loads since the last call had to round (`Noting`)."""
        notes, self._notes = self._notes, []
        return notes

    def replace_atomically(self, table: Table, build: Callable[[TableName], R]) -> R:
        target = TableName.parse(table)
        self._ensure_schema(target)
        staging = target.with_name(f"__flowc_staging_{target.name}_{uuid.uuid4().hex[:8]}")
        try:
            result = build(staging)
            with self._transaction():
                self._drop(target)
                self.execute(
                    f"ALTER TABLE {self.quote(staging)} RENAME TO {quote_identifier(target.name)}"
                )
        except BaseException:
            self._drop_quietly(staging)
            raise
        return result

    def append(self, table: Table, data: Data) -> int:
        target = TableName.parse(table)
        with self._transaction():
            if not self.table_exists(target):
                return self.create_table(target, data)
            return self._write(f"INSERT INTO {self.quote(target)} BY NAME SELECT * FROM {{}}", data)

    def merge(self, table: Table, key: Sequence[str], data: Data) -> int:
        if not key:
            raise StepError(f"a merge into {TableName.parse(table)} needs a `key`")
        target = TableName.parse(table)
        if not self.table_exists(target):
            return self.append(target, data)
        staged = f"__flowc_merge_{next(_counter)}"
        with self._transaction():
            self._write(f"CREATE TEMP TABLE {staged} AS SELECT * FROM {{}}", data)
            self._check_unique(staged, key, target)
            match = " AND ".join(f"t.{quote_identifier(k)} = s.{quote_identifier(k)}" for k in key)
            self.execute(f"DELETE FROM {self.quote(target)} AS t USING {staged} AS s WHERE {match}")
            rows = self._write(
                f"INSERT INTO {self.quote(target)} BY NAME SELECT * FROM {{}}",
                Query(f"SELECT * FROM {staged}"),
            )
            self.execute(f"DROP TABLE {staged}")
        return rows

    def interrupt(self) -> None:
        """Cancel the running statement (from another thread): a step's timeout."""
        self._con.interrupt()

    # --- files ------------------------------------------------------------------------------

    def export_parquet(self, query: Query, folder: Path, partition_by: Sequence[str] = ()) -> int:
        """Write the rows of `query` as Parquet into the new `folder` (created): Hive-style
        `col=value/part-0.parquet` folders with `partition_by`, else one `part-0.parquet`;
        the rows written. DuckDB's own writer: it streams, in parallel, and no Arrow table
        or Python batch is made (the Arrow route holds a partitioned output in memory)."""
        params = _used_params(query.sql, query.params)
        with _engine_errors():
            columns = self._con.sql(query.sql, params=params).columns
        names = match_names(list(partition_by), columns, "the sink's input")
        options = "FORMAT parquet"
        if partition_by:
            keys = ", ".join(quote_identifier(n) for n in names.values() if n is not None)
            options += f", PARTITION_BY ({keys}), FILENAME_PATTERN 'part-{{i}}'"
            destination = folder
        else:
            folder.mkdir(parents=True)
            destination = folder / "part-0.parquet"
        path = str(destination).replace("'", "''")
        return self._count(f"COPY ({query.sql}) TO '{path}' ({options})", params)

    # --- a transaction the caller holds open -----------------------------------------------

    @property
    def in_transaction(self) -> bool:
        return self._in_transaction

    def begin(self) -> None:
        """Open a transaction that every later write joins (the executor holds one for a
        whole run). Reads inside it run on this connection, so they see its writes; each
        read must then be consumed before the next statement runs."""
        if self._in_transaction:
            raise StepError("a transaction is already open on this DuckDB connection")
        with _engine_errors():
            self._con.begin()
        self._in_transaction = True
        self._pool.enter()

    def commit(self) -> None:
        self._in_transaction = False
        try:
            with _engine_errors():
                self._con.commit()
        finally:
            self._pool.leave(self._con)

    def rollback(self) -> None:
        self._in_transaction = False
        try:
            with _engine_errors():
                self._con.rollback()
        finally:
            self._pool.leave(self._con)
        for view in self._stale_views:
            with contextlib.suppress(duckdb.Error):
                self._con.unregister(view)
        self._stale_views.clear()

    # --- a run built aside (`Staging`) -----------------------------------------------------

    def use_stage(self, stage: str | None) -> None:
        if stage is not None:
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(stage)}")
        self._stage = stage
        self._set_search_path(self._con)

    def use_internal(self, schema: str | None, names: Collection[str] = ()) -> None:
        if schema is not None and not self._schema_exists(schema):  # a read-only file may
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
        self._internal = schema
        self._set_search_path(self._con)

    def publish(self, stage: str, names: Sequence[str], internal: Sequence[str] = ()) -> None:
        """Views under the real names over the stage's tables: DuckDB cannot move a table to
        another schema, and a copy would cost as much as building it (the stage stays, as
        the storage of what the views show, until no view reads it: `drop_stages`)."""
        self._publish_into(OWN_SCHEMA, stage, names)
        if internal:
            self._publish_into(self._internal or OWN_SCHEMA, stage, internal)

    def _publish_into(self, schema: str, stage: str, names: Sequence[str]) -> None:
        with _engine_errors():  # one catalog query: each costs milliseconds in a big one
            existing = dict(
                self._con.execute(
                    "SELECT lower(table_name), table_type FROM information_schema.tables "
                    "WHERE table_catalog = current_database() AND table_schema = $schema",
                    {"schema": schema},
                ).fetchall()
            )
        for name in names:
            target = TableName(name, schema)
            kind = existing.get(name.lower())
            if kind is not None:
                self.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} {self.quote(target)}")
            source = f"{quote_identifier(stage)}.{quote_identifier(name)}"
            self.execute(f"CREATE VIEW {self.quote(target)} AS SELECT * FROM {source}")

    def unpublish(self, names: Sequence[str]) -> None:
        for schema in dict.fromkeys([OWN_SCHEMA, self._internal or OWN_SCHEMA]):
            published = {name for name, sql in self._views(schema) if "_flowc_" in sql}
            for name in names:
                if name.lower() in published:
                    self.execute(f"DROP VIEW {self.quote(TableName(name, schema))}")

    def drop_stages(self, prefix: str, keep: Collection[str]) -> None:
        with _engine_errors():
            schemas = self._con.execute(
                "SELECT schema_name FROM duckdb_schemas() WHERE database_name = "
                "current_database() AND starts_with(schema_name, $prefix)",
                {"prefix": prefix},
            ).fetchall()
        read = " ".join(sql for _, sql in self._views())
        for (schema,) in schemas:
            if schema not in keep and schema not in read:  # DuckDB keeps views unquoted
                self.execute(f"DROP SCHEMA {quote_identifier(schema)} CASCADE")

    def _schema_exists(self, schema: str) -> bool:
        with _engine_errors():
            return bool(
                self._con.execute(
                    "SELECT 1 FROM duckdb_schemas() WHERE database_name = current_database() "
                    "AND schema_name = $schema",
                    {"schema": schema},
                ).fetchall()
            )

    def _views(self, schema: str | None = None) -> list[tuple[str, str]]:
        """(lower-case name, SQL) of the database's own views; of `schema` only, if given."""
        with _engine_errors():
            found = self._con.execute(
                "SELECT lower(view_name), sql FROM duckdb_views() WHERE NOT internal AND "
                "database_name = current_database() AND schema_name = coalesce($schema, "
                "schema_name)",
                {"schema": schema},
            ).fetchall()
        return [(str(name), str(sql)) for name, sql in found]

    def worker(self) -> DuckDBEngine:
        """A cursor: DuckDB's own connection to the same database (`:memory:` too)."""
        engine = DuckDBEngine(self._con.cursor(), self._pool)
        engine._internal = self._internal
        engine.use_stage(self._stage)
        return engine

    def scalar(self, sql: str, params: Params | None = None, *, row: bool = False) -> Any:
        """The first value of a query's first row (None when it has none); `row`: the
        whole first row."""
        with _engine_errors():
            # every row fetched: DuckDB refuses the next statement while a result is open
            rows = self._con.execute(sql, _used_params(sql, params)).fetchall()
        if row:
            return rows[0] if rows else None
        return rows[0][0] if rows else None

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = self._con.cursor()  # a new connection: it has the default search path
        if self._stage is not None or self._internal is not None:
            self._set_search_path(cursor)
        return cursor

    def _set_search_path(self, connection: duckdb.DuckDBPyConnection) -> None:
        # unqualified CREATEs go to the first schema: the stage, else the internal schema
        path = ",".join(s for s in (self._stage, self._internal, OWN_SCHEMA) if s)
        with _engine_errors():
            connection.execute(f"SET search_path = '{path}'")

    # --- catalog --------------------------------------------------------------------------

    def table_exists(self, table: Table) -> bool:
        return self._table_type(TableName.parse(table)) is not None

    def table_schema(self, table: Table) -> pa.Schema | None:
        if not self.table_exists(table):
            return None
        return self.read_batches(Query(f"SELECT * FROM {self.quote(table)} LIMIT 0")).schema

    def quote(self, table: Table) -> str:
        name = TableName.parse(table)
        quoted = quote_identifier(name.name)
        return f"{quote_identifier(name.schema)}.{quoted}" if name.schema else quoted

    # --- helpers --------------------------------------------------------------------------

    def _write(self, template: str, data: Data) -> int:
        """Run `template` with `{}` standing for the rows of `data`; the rows it wrote."""
        if isinstance(data, Query):
            sql = template.format(f"({data.sql})")
            return self._count(sql, _used_params(data.sql, data.params))
        tap = _Tap(_as_text(data, _wide(data.schema)))
        view = f"__flowc_arrow_{next(_counter)}"
        self._con.register(view, tap.reader())
        try:
            return self._count(template.format(view), None)
        except StepError:
            tap.reraise()
            raise
        finally:
            self._unregister(view)

    def _unregister(self, view: str) -> None:
        """Drop a registered stream; in an aborted transaction, once it has rolled back."""
        try:
            self._con.unregister(view)
        except duckdb.Error:
            self._stale_views.append(view)

    def _count(self, sql: str, params: Params | None) -> int:
        with _engine_errors():
            result = self._con.execute(sql, params).fetchall()
        return int(result[0][0]) if result else 0

    def _table_type(self, table: TableName) -> str | None:
        sql = (
            "SELECT table_type FROM information_schema.tables WHERE table_catalog = "
            "current_database() AND lower(table_name) = lower($name) AND lower(table_schema) "
            "= lower(coalesce($schema, current_schema()))"
        )
        params = {"schema": table.schema, "name": table.name}
        with _engine_errors():
            result = self._con.execute(sql, params).fetchall()
        return str(result[0][0]) if result else None

    def _ensure_schema(self, table: TableName) -> None:
        if table.schema:
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(table.schema)}")

    def _drop(self, table: TableName) -> None:
        kind = self._table_type(table)
        if kind is not None:
            self.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} {self.quote(table)}")

    def _drop_quietly(self, table: TableName) -> None:
        # the original failure matters more than a leftover staging table
        with contextlib.suppress(StepError):
            self.execute(f"DROP TABLE IF EXISTS {self.quote(table)}")

    def _check_unique(self, staged: str, key: Sequence[str], target: TableName) -> None:
        columns = ", ".join(quote_identifier(k) for k in key)
        sql = f"SELECT {columns} FROM {staged} GROUP BY ALL HAVING count(*) > 1 LIMIT 1"
        with _engine_errors():
            result = self._con.execute(sql).fetchall()
        if result:
            row = result[0]
            raise StepError(
                f"merge into {target}: the new rows repeat the key {row!r} of ({columns})"
            )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction; nested uses join the outer one."""
        if self._in_transaction:
            yield
            return
        self.begin()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()


class _Tap:
    """Wraps a batch stream so that an exception raised while DuckDB pulls it (a `DataError`
    from a source, say) reaches the caller as itself, not as DuckDB's text about it."""

    def __init__(self, reader: pa.RecordBatchReader) -> None:
        self._source = reader
        self.error: BaseException | None = None

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self._source.schema, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._source
        except BaseException as error:
            self.error = error
            raise

    def reraise(self) -> None:
        if self.error is not None:
            raise self.error


_DECIMAL_DIGITS = 38  # DuckDB's widest DECIMAL


def _wide(schema: pa.Schema) -> list[str]:
    """The columns of decimals wider than DuckDB's (Arrow decimal256: BigQuery's BIGNUMERIC,
    a Postgres NUMERIC of more than 38 digits), which DuckDB cannot scan from Arrow."""
    return [f.name for f in schema if isinstance(f.type, pa.Decimal256Type)]


def _as_text(reader: pa.RecordBatchReader, columns: Sequence[str]) -> pa.RecordBatchReader:
    """`reader` with `columns` as exact decimal text (`12.50`, never `1.25E+1`), a batch at a
    time: DuckDB takes them as VARCHAR, `_narrow` gives them their type."""
    if not columns:
        return reader
    wide = set(columns)
    schema = pa.schema(
        [pa.field(f.name, pa.string()) if f.name in wide else f for f in reader.schema]
    )

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            arrays = [
                pa.array(
                    [None if v is None else format(v, "f") for v in a.to_pylist()], pa.string()
                )
                if name in wide
                else a
                for name, a in zip(batch.schema.names, batch.columns, strict=True)
            ]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


class _Pool:
    """DuckDB's buffer pool of one database, shared by its engine and the engine's workers.

    Within `memory_limit` DuckDB keeps the blocks of every table it has written, evicting
    them only when a query needs the room: a run of 2,000 steps over small tables grew to
    the limit (700 MB at 384MB) though no step needed more than a few MB. So when the last
    open transaction on the database ends and the written tables' blocks take more than
    twice `CACHE`, the limit is lowered for them to fit in `CACHE`, then set back: DuckDB
    evicts the blocks (written, so nothing is lost; a later read fetches them from the file,
    or the OS's cache of it) and the memory goes back to the system. Only then: a running
    query is never squeezed. (Trimming to 32 MB at every step instead: 279 MB, but 60% slower
    than this; benchmarks/README.md.)"""

    CACHE = 16 * 2**20

    def __init__(self, limit: str | None) -> None:
        self.limit = limit  # None: not flowc's connection (a test's); never trimmed
        self.open = 0
        self.lock = threading.Lock()

    def enter(self) -> None:
        with self.lock:
            self.open += 1

    def leave(self, connection: duckdb.DuckDBPyConnection) -> None:
        with self.lock:
            self.open = max(self.open - 1, 0)
            if self.open == 0 and self.limit is not None:
                self._trim(connection)

    def _trim(self, connection: duckdb.DuckDBPyConnection) -> None:
        try:
            rows = connection.execute(_POOL_USED).fetchall()  # fetchone leaves the result open
            found = rows[0] if rows else None
            written, used = (found or (0, 0))[0] or 0, (found or (0, 0))[1] or 0
            if written <= 2 * self.CACHE:  # then down to CACHE: a SET now and then
                return
            # room for all but the written tables' blocks beyond CACHE: those are what go
            # (data not yet checkpointed would go to temporary files, for nothing)
            lowered = (used - written + self.CACHE) // 2**20
            try:
                connection.execute(f"SET memory_limit = '{lowered}MiB'")
            finally:
                connection.execute(f"SET memory_limit = '{self.limit}'")
        except duckdb.Error:
            pass  # a cache left as it is: memory, not correctness


_POOL_USED = (
    "SELECT sum(memory_usage_bytes) FILTER (WHERE tag = 'BASE_TABLE'), "
    "sum(memory_usage_bytes) FROM duckdb_memory()"
)


def _reader(relation: duckdb.DuckDBPyRelation, batch_size: int) -> pa.RecordBatchReader:
    to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
    reader: pa.RecordBatchReader = to_reader(batch_size)
    return reader


_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def _used_params(sql: str, params: Params | None) -> dict[str, object] | None:
    """The parameters `sql` names (DuckDB rejects unused ones): the executor may pass all."""
    if not params:
        return None
    used = set(_PARAM.findall(sql))
    return {name: value for name, value in params.items() if name in used} or None


@contextmanager
def _engine_errors() -> Iterator[None]:
    """DuckDB's own failures (bad SQL, a failed cast at run time) are the user's to fix."""
    try:
        yield
    except duckdb.Error as error:
        cause = resources.duckdb_cause(str(error))  # a full disk, no memory: what to change
        raise StepError(cause or f"DuckDB: {error}") from error
