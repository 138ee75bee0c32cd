"""The PostgreSQL adapter, on psycopg2: SQL runs inside Postgres, rows move by `COPY`.

Names. flowc keeps names as the spec declares them (docs/engines.md): every table, schema
and column is created and named quoted, so `VendorID` is the column `"VendorID"`, as on DuckDB
and BigQuery, and Arrow columns become columns of their own names. A connection with
`fold_names = true` has the old Postgres habit instead: every name folded to lower case (what
Postgres does with unquoted names), for databases that other tools read unquoted. Stage
schemas, flowc's own, are always lower case. Columns of an existing table are matched by name,
exactly first, else ignoring case.

Transactions. Postgres DDL is transactional, so the executor's one transaction per run
(`begin` .. `commit`) covers loads, CREATE TABLE AS, swaps and sinks alike: other sessions
see every table as it was until the commit, and a failure (or a killed client: the server
rolls back a transaction whose connection drops) leaves everything unchanged. Outside
`begin` each write is its own transaction (the connection is in autocommit mode).

Rows in. Arrow batches are written as CSV by pyarrow, a batch at a time, into one
`COPY ... FROM STDIN (FORMAT csv)`: never row-by-row INSERTs, never the whole data in memory.
`copy_csv` streams a CSV file's own bytes into COPY (the fast path of a CSV load, chosen by
the executor): the server parses and type-checks the values; a value it rejects fails the
step naming the file, the row and the column (from Postgres's COPY error context).

Rows out. A query's result is kept in a TEMP table and read back a range of pages at a
time (`ctid`), each range by `COPY ... TO STDOUT (FORMAT csv)` parsed by pyarrow's CSV reader
into the Arrow types of the result's columns: memory is bounded by a range (about
`batch_size` rows), and no value becomes a Python object. Types that CSV text cannot carry to
pyarrow (bytea, time, interval, ...) are read through a named cursor instead.

Concurrency. `lock_run` takes a session-level advisory lock keyed by the run's (project,
pipeline, profile): a second run of the same pipeline and profile waits, saying what it waits
for, until the first closes its connection (or its process dies: the server then ends the
session and frees the lock).

Stages (`Staging`, executor.py): a run builds its tables in a stage schema first on the
search path; `publish` moves them into the connection's schema (`ALTER ... SET SCHEMA`: no
copy) in the run's last transaction and drops the stage.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import hashlib
import io
import itertools
import os
import re
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import psycopg2
import psycopg2.extensions
import psycopg2.sql
import pyarrow as pa
import pyarrow.csv as pa_csv
from flowc.project.config import PostgresSettings
from flowc.runtime.engines.base import Data, Params, Query, Table, TableName, drop_in_stage
from flowc.runtime.errors import DataError, StepError

DIALECT = "postgres"
R = TypeVar("R")
COPY_CHUNK_BYTES = 1 << 20
LOCK_POLL_SECONDS = 0.2
_counter = itertools.count()


def quote_identifier(name: str) -> str:
    """`name` exactly, as a Postgres identifier: quoted, embedded quotes doubled.

    >>> quote_identifier('Vendor"ID')
    '"Vendor""ID"'
    """
    return '"' + name.replace('"', '""') + '"'


def fold(name: str) -> str:
    """`name` quoted as Postgres would read it unquoted (lower case): how flowc names what it
    creates on a connection with `fold_names`, and its stage schemas.

    >>> fold("VendorID")
    '"vendorid"'
    """
    return quote_identifier(name.lower())


class PostgresEngine:
    """An `Engine` over one Postgres connection, working in its schema (`db_schema`)."""

    dialect = DIALECT

    def __init__(
        self, connection: psycopg2.extensions.connection, *, secrets: Sequence[str] = ()
    ) -> None:
        self._con = connection
        self._con.autocommit = True
        self._secrets = sorted((s for s in secrets if s), key=len, reverse=True)
        self._in_transaction = False
        self._schema = "public"  # the connection's own schema
        self._fold = False  # `fold_names`: every name in lower case
        self._stage: str | None = None  # always lower case
        self._internal: str | None = None  # where unpublished nodes live (`use_internal`)
        self._reconnect: Callable[[], PostgresEngine] | None = None
        self._where = _server_address(connection)
        self._notes: list[str] = []  # what reads had to round, for the step to report

    @classmethod
    def connect(
        cls,
        dsn: str = "",
        *,
        schema: str = "public",
        secrets: Sequence[str] = (),
        fold_names: bool = False,
        **kwargs: Any,
    ) -> PostgresEngine:
        """Connect (`dsn`: a URL or `key=value` string, `kwargs`: libpq keywords), create
        `schema` when missing and put it first on the search path."""
        shown = [*secrets, str(kwargs.get("password") or "")]
        with _errors(shown, "cannot connect to Postgres"):
            settings = {**kwargs, **_standard_strings(dsn, kwargs)}
            connection = psycopg2.connect(dsn, application_name="flowc", **settings)
        engine = cls(connection, secrets=shown)
        engine._fold = fold_names
        engine._schema = engine._catalog_name(schema)
        engine._reconnect = lambda: cls.connect(
            dsn, schema=schema, secrets=secrets, fold_names=fold_names, **kwargs
        )
        try:
            # created only when missing: CREATE SCHEMA IF NOT EXISTS wants the right to
            # create schemas even when the schema is there
            if not engine._scalar(_SCHEMA_EXISTS, {"name": engine._schema}):
                engine.execute(f"CREATE SCHEMA IF NOT EXISTS {engine._ident(schema)}")
            engine._set_search_path()
            engine.execute("SET DateStyle TO ISO")  # the text form reads parse (_copy_out)
        except StepError:
            engine.close()
            raise
        return engine

    @classmethod
    def from_settings(cls, settings: PostgresSettings, root: Path) -> PostgresEngine:
        """The connection a profile declares: its `url`, or host/port/dbname/user/password."""
        keywords: dict[str, Any] = {
            "host": settings.host,
            "port": settings.port,
            "dbname": settings.dbname,
            "user": settings.user,
            "password": settings.password.get_secret_value() if settings.password else None,
            "sslmode": settings.sslmode,
            "connect_timeout": 10,
        }
        keywords = {k: v for k, v in keywords.items() if v not in (None, "")}
        dsn = settings.url.get_secret_value() if settings.url else ""
        secrets = [dsn, *_url_passwords(dsn)] if dsn else []
        return cls.connect(
            dsn,
            schema=settings.db_schema,
            secrets=secrets,
            fold_names=settings.fold_names,
            **keywords,
        )

    def __enter__(self) -> PostgresEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()

    # --- statements and reads -------------------------------------------------------------

    def execute(self, sql: str, params: Params | None = None) -> None:
        if self._stage or self._internal:
            where = fold(self._stage) if self._stage else quote_identifier(self._internal or "")
            sql = drop_in_stage(sql, where)
        with self._errors(), self._con.cursor() as cursor:
            # always with a mapping: the compiler doubles every literal `%` (docs/engines.md)
            cursor.execute(sql, dict(params or {}))

    def read_batches(
        self, source: Table | Query, *, batch_size: int = 65_536
    ) -> pa.RecordBatchReader:
        query = (
            source if isinstance(source, Query) else Query(f"SELECT * FROM {self.quote(source)}")
        )
        with self._errors(), self._con.cursor() as cursor:  # the result's columns, no rows
            cursor.execute(f"SELECT * FROM ({_body(query.sql)}) AS _q LIMIT 0", dict(query.params))
            description = list(cursor.description or ())
        copyable = all(c.type_code in _CSV_OIDS for c in description)
        if not copyable and not any(_loose(c) for c in description):
            return self._cursor_out(query, _arrow_schema(description, {}), batch_size)
        kept = self._keep(query, len(description))
        numbers = self._numbers(kept, description)
        schema = _arrow_schema(description, numbers)
        if copyable:
            return self._copy_out(kept, schema, numbers, batch_size)
        return self._cursor_out(Query(f"SELECT * FROM {kept.name}"), schema, batch_size, kept)

    def _keep(self, query: Query, width: int) -> _Kept:
        """The result in a TEMP table whose columns are `c0`, `c1`, ... (a result may repeat
        a name); dropped by its own read, at the latest with the run's transaction."""
        name = f"__flowc_read_{uuid.uuid4().hex[:12]}"
        on_commit = " ON COMMIT DROP" if self._in_transaction else ""
        columns = ", ".join(f"c{i}" for i in range(width))
        sql = f"CREATE TEMP TABLE {name}{on_commit} AS SELECT * FROM ({_body(query.sql)}) AS _q"
        with self._errors(), self._con.cursor() as cursor:
            cursor.execute(f"{sql} ({columns})" if width else sql, dict(query.params))
            rows = max(cursor.rowcount, 0)
            cursor.execute(_PAGES, {"table": name})
            pages = int(cursor.fetchone()[0])  # type: ignore[index]
        return _Kept(name, rows, pages)

    def _numbers(
        self, kept: _Kept, description: list[psycopg2.extensions.Column]
    ) -> dict[int, _Number]:
        """How each NUMERIC column without a precision Arrow can hold (a SUM, an AVG, a
        NUMERIC(100, 50)) is read: from the digits its values have, before and after the
        point, in one pass over the kept result."""
        loose = [i for i, column in enumerate(description) if _loose(column)]
        if not loose:
            return {}
        numbers = {}
        probed = self._probe(kept, description, loose)
        for index, (digits, scale, odd) in zip(loose, probed, strict=True):
            name = description[index].name
            if odd:
                self._drop_kept(kept)
                raise StepError(
                    f"column `{name}` holds NaN or Infinity, which no decimal holds: cast it "
                    "to double precision in the query to read it as a float"
                )
            numbers[index] = number = _number(name, int(digits or 0), int(scale or 0))
            if number.note is not None:
                self._notes.append(number.note)
        return numbers

    def _probe(
        self, kept: _Kept, description: list[psycopg2.extensions.Column], loose: list[int]
    ) -> list[tuple[Any, Any, Any]]:
        """Per loose column, in order: the most digits before the point, after it, and
        whether a NaN or Infinity is there. Plain columns in one pass; an array's elements
        each over its own unnested values (an empty array would hide a row's other values)."""
        plain = [i for i in loose if description[i].type_code != _NUMERIC_ARRAY]
        found: dict[int, tuple[Any, Any, Any]] = {}
        if plain:
            probes = ", ".join(_DIGITS.format(column=f"c{i}") for i in plain)
            row = self._scalar_row(f"SELECT {probes} FROM {kept.name}")
            found.update(zip(plain, _triples(row), strict=True))
        for i in loose:
            if i not in found:
                probe = _DIGITS.format(column="e")
                row = self._scalar_row(f"SELECT {probe} FROM {kept.name}, unnest(c{i}) AS _e(e)")
                found[i] = next(_triples(row))
        return [found[i] for i in loose]

    def _copy_out(
        self, kept: _Kept, schema: pa.Schema, numbers: Mapping[int, _Number], batch_size: int
    ) -> pa.RecordBatchReader:
        """The kept result read in page ranges (`ctid`, a TID range scan from Postgres 14 on),
        each by `COPY TO` parsed by pyarrow's CSV reader: C speed both sides, no Python object
        per value, memory bounded by a chunk."""
        pages = kept.pages
        chunk = max(1, -(-batch_size * pages // max(kept.rows, 1)))  # about batch_size rows
        batches = self._copy_chunks(
            kept, schema, [numbers.get(i) for i in range(len(schema))], chunk
        )
        return pa.RecordBatchReader.from_batches(schema, batches)

    def _copy_chunks(
        self, kept: _Kept, schema: pa.Schema, numbers: Sequence[_Number | None], chunk: int
    ) -> Iterator[pa.RecordBatch]:
        selected = ", ".join(
            _copied(f"c{i}", f.type, n)
            for i, (f, n) in enumerate(zip(schema, numbers, strict=True))
        )
        text_types = {f"c{i}": _text_type(f.type) for i, f in enumerate(schema)}
        read = pa_csv.ReadOptions(column_names=list(text_types), block_size=1 << 22)
        parse = pa_csv.ParseOptions(ignore_empty_lines=False)  # one NULL column: an empty line
        convert = pa_csv.ConvertOptions(
            column_types=text_types,
            true_values=["t"],
            false_values=["f"],
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,  # `""` is an empty string, a bare empty NULL
        )
        try:
            for start in range(0, kept.pages, chunk):
                sql = (
                    f"COPY (SELECT {selected} FROM {kept.name} WHERE ctid >= '({start},0)'::tid "
                    f"AND ctid < '({start + chunk},0)'::tid) TO STDOUT (FORMAT csv)"
                )
                buffer = io.BytesIO()
                with self._errors(), self._con.cursor() as cursor:
                    cursor.copy_expert(sql, buffer)
                if not buffer.tell():
                    continue
                buffer.seek(0)
                try:
                    table = pa_csv.read_csv(
                        buffer, read_options=read, parse_options=parse, convert_options=convert
                    )
                    for batch in table.to_batches():
                        arrays = [
                            a.cast(f.type) for a, f in zip(batch.columns, schema, strict=True)
                        ]
                        yield pa.RecordBatch.from_arrays(arrays, schema=schema)
                except pa.ArrowInvalid as error:  # a date before year 1
                    raise StepError(f"cannot read a value of the result: {error}") from None
        finally:
            self._drop_kept(kept)

    def _drop_kept(self, kept: _Kept) -> None:
        with contextlib.suppress(psycopg2.Error), self._con.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {kept.name}")

    def _cursor_out(
        self, query: Query, schema: pa.Schema, batch_size: int, kept: _Kept | None = None
    ) -> pa.RecordBatchReader:
        """Rows of types pyarrow's CSV reader cannot parse (bytea, time, interval, uuid, ...):
        a named cursor on the server, `batch_size` rows at a time, converted by psycopg2."""
        name = f"flowc_read_{next(_counter)}"
        # outside a run's transaction the cursor must outlive the statement's own (WITH HOLD)
        cursor = self._con.cursor(name, withhold=not self._in_transaction)
        cursor.itersize = batch_size
        with self._errors():
            cursor.execute(query.sql, dict(query.params))
        batches = self._batches(cursor, schema, batch_size, kept)
        return pa.RecordBatchReader.from_batches(schema, batches)

    def _batches(
        self,
        cursor: psycopg2.extensions.cursor,
        schema: pa.Schema,
        batch_size: int,
        kept: _Kept | None,
    ) -> Iterator[pa.RecordBatch]:
        try:
            while True:
                with self._errors():
                    rows = cursor.fetchmany(batch_size)
                if not rows:
                    return
                yield _record_batch(rows, schema)
        finally:
            with contextlib.suppress(psycopg2.Error):
                cursor.close()
            if kept is not None:
                self._drop_kept(kept)

    def analyze(self, table: Table) -> None:
        """`ANALYZE` a table flowc just loaded or built (`Analyzing`): without statistics
        the planner guesses, and a join of two fresh tables can take minutes, not
        milliseconds (TPC-H q20 at scale 0.01: 40 s)."""
        self.execute(f"ANALYZE {self.quote(table)}")

    def take_notes(self) -> list[str]:
        """What reads since the last call had to round (`Noting`)."""
        notes, self._notes = self._notes, []
        return notes

    # --- writes ---------------------------------------------------------------------------

    def load_batches(
        self, table: Table, schema: pa.Schema, batches: Iterator[pa.RecordBatch]
    ) -> int:
        return self.create_table(table, pa.RecordBatchReader.from_batches(schema, batches))

    def create_table(self, table: Table, data: Data) -> int:
        target = TableName.parse(table)
        with self._transaction():
            self._ensure_schema(target)
            if isinstance(data, Query):
                sql = f"CREATE TABLE {self.quote(target)} AS {_body(data.sql)}"
                return self._rowcount(sql, data)
            columns = ", ".join(
                f"{self._ident(f.name)} {postgres_type(f.type)}" for f in data.schema
            )
            self.execute(f"CREATE TABLE {self.quote(target)} ({columns})")
            names = [self._catalog_name(n) for n in data.schema.names]
            return self._copy_batches(target, names, data)

    def replace_atomically(self, table: Table, build: Callable[[TableName], R]) -> R:
        target = TableName.parse(table)
        staging = target.with_name(f"__flowc_staging_{target.name}_{uuid.uuid4().hex[:8]}")
        with self._transaction():
            result = build(staging)
            self._drop(target)
            self.execute(f"ALTER TABLE {self.quote(staging)} RENAME TO {self._ident(target.name)}")
        return result

    def append(self, table: Table, data: Data) -> int:
        target = TableName.parse(table)
        with self._transaction():
            existing = self.table_schema(target)
            if existing is None:
                return self.create_table(target, data)
            names = existing.names
            if isinstance(data, Query):
                return self._insert_query(target, names, data)
            columns = _match_columns(data.schema.names, names, target)
            return self._copy_batches(target, columns, data)

    def merge(self, table: Table, key: Sequence[str], data: Data) -> int:
        target = TableName.parse(table)
        if not key:
            raise StepError(f"a merge into {target} needs a `key`")
        with self._transaction():
            existing = self.table_schema(target)
            if existing is None:
                return self.create_table(target, data)
            key = _match_columns(key, existing.names, target)
            staged = TableName(f"__flowc_merge_{uuid.uuid4().hex[:8]}")
            self.create_table(staged, data)
            self._check_unique(staged, key, target)
            match = " AND ".join(f"t.{quote_identifier(k)} = s.{quote_identifier(k)}" for k in key)
            self.execute(
                f"DELETE FROM {self.quote(target)} AS t USING {self.quote(staged)} AS s "
                f"WHERE {match}"
            )
            rows = self.append(target, Query(f"SELECT * FROM {self.quote(staged)}"))
            self.execute(f"DROP TABLE {self.quote(staged)}")
        return rows

    def copy_csv(
        self,
        table: Table,
        columns: Sequence[str],
        data: io.BufferedIOBase | io.RawIOBase,
        *,
        origin: str,
        header: bool = True,
        delimiter: str = ",",
        new_table: bool = False,
    ) -> int:
        """Append the rows of a CSV byte stream to `table`; `columns` are the table's columns
        in the file's order. The server parses and checks every value; a value it rejects
        fails naming `origin`, its row (1-based, after the header) and its column.

        `new_table`: the table was created in the open transaction, so the rows may be
        written frozen (`FREEZE`: no hint bits for the next reader to set; about 10% faster
        here), which Postgres allows only while this session holds no cursor."""
        target = TableName.parse(table)
        names = ", ".join(quote_identifier(c) for c in columns)
        quoted = psycopg2.sql.Literal(delimiter).as_string(self._con)  # libpq's quoting
        options = f"FORMAT csv, HEADER {'true' if header else 'false'}, DELIMITER {quoted}"
        if new_table and self._in_transaction and not self._scalar(_OPEN_CURSORS, {}):
            options += ", FREEZE"
        sql = f"COPY {self.quote(target)} ({names}) FROM STDIN ({options})"
        with self._transaction(), self._con.cursor() as cursor:
            try:
                cursor.copy_expert(sql, data, size=COPY_CHUNK_BYTES)
            except psycopg2.Error as error:
                raise self._copy_error(error, origin, header) from None
            return int(cursor.rowcount)

    # --- a transaction the caller holds open -----------------------------------------------

    @property
    def in_transaction(self) -> bool:
        return self._in_transaction

    def begin(self) -> None:
        if self._in_transaction:
            raise StepError("a transaction is already open on this Postgres connection")
        with self._errors():
            self._con.autocommit = False  # psycopg2 opens the transaction at the next statement
        self._in_transaction = True

    def commit(self) -> None:
        self._in_transaction = False
        with self._errors():
            self._con.commit()
            self._con.autocommit = True

    def rollback(self) -> None:
        self._in_transaction = False
        with self._errors():
            self._con.rollback()
            self._con.autocommit = True

    def interrupt(self) -> None:
        """Cancel the running statement (from another thread): a step's timeout."""
        with contextlib.suppress(psycopg2.Error):  # nothing running, or the connection gone
            self._con.cancel()

    def savepoint(self) -> None:
        """Mark where a step starts inside the run's transaction (a retry goes back to it)."""
        with self._errors():
            self._con.cursor().execute("SAVEPOINT flowc_step")

    def rollback_to_savepoint(self) -> None:
        """Undo the step since `savepoint`; the run's transaction goes on."""
        with self._errors():
            self._con.cursor().execute("ROLLBACK TO SAVEPOINT flowc_step")

    def release_savepoint(self) -> None:
        with self._errors():
            self._con.cursor().execute("RELEASE SAVEPOINT flowc_step")

    def lock_run(self, key: str, on_wait: Callable[[str], None]) -> None:
        """Hold the run lock named `key` for as long as this session lasts; when another
        session holds it, tell `on_wait` so, then wait for it."""
        number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        if self._scalar("SELECT pg_try_advisory_lock(%(k)s)", {"k": number}):
            return
        holder = self._scalar(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = %(high)s AND objid = %(low)s AND objsubid = 1",
            {"high": (number >> 32) & 0xFFFFFFFF, "low": number & 0xFFFFFFFF},
        )
        who = f" (Postgres backend {holder})" if holder is not None else ""
        on_wait(f"waiting for another run of {key} to finish{who}")
        # polled, not a blocking pg_advisory_lock: a blocked libpq call would not see
        # Ctrl-C, a sleep does
        while not self._scalar("SELECT pg_try_advisory_lock(%(k)s)", {"k": number}):
            time.sleep(LOCK_POLL_SECONDS)

    # --- a run built aside (`Staging`) -----------------------------------------------------

    def use_stage(self, stage: str | None) -> None:
        if stage is not None and not self._scalar(_SCHEMA_EXISTS, {"name": stage}):
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(stage)}")
        self._stage = stage
        self._set_search_path()

    def use_internal(self, schema: str | None, names: Collection[str] = ()) -> None:
        if schema is not None:
            schema = self._catalog_name(schema)
            if not self._scalar(_SCHEMA_EXISTS, {"name": schema}):
                self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
        self._internal = schema
        self._set_search_path()

    def publish(self, stage: str, names: Sequence[str], internal: Sequence[str] = ()) -> None:
        """Moves the stage's tables and views into the connection's schema (`internal`: into
        the internal schema), replacing what has their names there, then drops the stage."""
        moves = [(n, self._schema) for n in names]
        moves += [(n, self._internal or self._schema) for n in internal]
        for name, into in moves:
            source = TableName(name, stage)
            kind = self._relkind(source)
            if kind is None:
                raise StepError(f"the run's stage has no `{name}` to publish")
            self._drop(TableName(name, into))
            what = "VIEW" if kind == "v" else "TABLE"
            schema = quote_identifier(into)
            self.execute(f"ALTER {what} {self.quote(source)} SET SCHEMA {schema}")
        self.execute(f"DROP SCHEMA IF EXISTS {quote_identifier(stage)} CASCADE")

    def unpublish(self, names: Sequence[str]) -> None:
        """Nothing to do: `publish` moves tables, it leaves no views behind."""

    def drop_stages(self, prefix: str, keep: Collection[str]) -> None:
        found = self._column(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %(p)s) ORDER BY 1",
            {"p": prefix.lower()},
        )
        kept = {k.lower() for k in keep}
        for schema in found:
            if schema not in kept:
                self.execute(f"DROP SCHEMA IF EXISTS {quote_identifier(schema)} CASCADE")

    def worker(self) -> PostgresEngine:
        """A new session with the same settings, search path and stage."""
        if self._reconnect is None:
            raise StepError("this Postgres connection cannot open another session")
        engine = self._reconnect()
        if self._internal is not None:
            engine.use_internal(self._internal)
        engine.use_stage(self._stage)
        return engine

    def _set_search_path(self) -> None:
        # unqualified CREATEs go to the first schema: the stage, else the internal schema
        path = [quote_identifier(s) for s in (self._stage, self._internal) if s]
        path += [quote_identifier(self._schema)] + (["public"] if self._schema != "public" else [])
        self.execute(f"SET search_path TO {', '.join(path)}")

    def scalar(self, sql: str, params: Params | None = None) -> Any:
        """The first value of a query's first row (None when it has none)."""
        return self._scalar(sql, params or {})

    def _scalar_row(self, sql: str) -> tuple[Any, ...]:
        with self._errors(), self._con.cursor() as cursor:
            cursor.execute(sql, {})
            return tuple(cursor.fetchone() or ())

    def _column(self, sql: str, params: Params) -> list[Any]:
        with self._errors(), self._con.cursor() as cursor:
            cursor.execute(sql, dict(params))
            return [row[0] for row in cursor.fetchall()]

    # --- catalog --------------------------------------------------------------------------

    def table_exists(self, table: Table) -> bool:
        return self._relkind(TableName.parse(table)) is not None

    def table_schema(self, table: Table) -> pa.Schema | None:
        if not self.table_exists(table):
            return None
        return self.read_batches(Query(f"SELECT * FROM {self.quote(table)} LIMIT 0")).schema

    def quote(self, table: Table) -> str:
        name = TableName.parse(table)
        quoted = self._ident(name.name)
        return f"{self._ident(name.schema)}.{quoted}" if name.schema else quoted

    def _ident(self, name: str) -> str:
        """A name flowc creates or reads, quoted as the connection names it."""
        return quote_identifier(self._catalog_name(name))

    def _catalog_name(self, name: str) -> str:
        """The name as the catalog holds it: as written, or in lower case (`fold_names`)."""
        return name.lower() if self._fold else name

    # --- helpers --------------------------------------------------------------------------

    def _copy_batches(
        self, target: TableName, columns: Sequence[str], data: pa.RecordBatchReader
    ) -> int:
        names = ", ".join(quote_identifier(c) for c in columns)
        sql = f"COPY {self.quote(target)} ({names}) FROM STDIN (FORMAT csv)"
        stream = _CsvStream(data)
        with self._errors(), self._con.cursor() as cursor:
            try:
                cursor.copy_expert(sql, stream, size=COPY_CHUNK_BYTES)
            except psycopg2.Error:
                stream.reraise()  # a source's own error (a DataError) says more
                raise
            return int(cursor.rowcount)

    def _insert_query(self, target: TableName, names: Sequence[str], data: Query) -> int:
        with self._errors(), self._con.cursor() as cursor:
            cursor.execute(f"SELECT * FROM ({_body(data.sql)}) AS _q LIMIT 0", dict(data.params))
            given = [d.name for d in cursor.description or ()]
        columns = _match_columns(given, names, target)
        into = ", ".join(quote_identifier(c) for c in columns)
        picked = ", ".join('_q."' + g.replace('"', '""') + '"' for g in given)
        rows = f"({_body(data.sql)}) AS _q"
        sql = f"INSERT INTO {self.quote(target)} ({into}) SELECT {picked} FROM {rows}"
        return self._rowcount(sql, data)

    def _rowcount(self, sql: str, data: Query) -> int:
        with self._errors(), self._con.cursor() as cursor:
            cursor.execute(sql, dict(data.params))
            return max(int(cursor.rowcount), 0)

    def _scalar(self, sql: str, params: Params) -> Any:
        with self._errors(), self._con.cursor() as cursor:
            cursor.execute(sql, dict(params))
            row = cursor.fetchone()
        return row[0] if row else None

    def _relkind(self, table: TableName) -> str | None:
        sql = (
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = coalesce(%(schema)s, current_schema()) AND c.relname = %(name)s"
        )
        schema = self._catalog_name(table.schema) if table.schema else None
        kind = self._scalar(sql, {"schema": schema, "name": self._catalog_name(table.name)})
        return str(kind) if kind is not None else None

    def _ensure_schema(self, table: TableName) -> None:
        if table.schema:
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {self._ident(table.schema)}")

    def _drop(self, table: TableName) -> None:
        kind = self._relkind(table)
        if kind is not None:
            what = "VIEW" if kind == "v" else "MATERIALIZED VIEW" if kind == "m" else "TABLE"
            self.execute(f"DROP {what} {self.quote(table)} CASCADE")

    def _check_unique(self, staged: TableName, key: Sequence[str], target: TableName) -> None:
        columns = ", ".join(quote_identifier(k) for k in key)
        row = self._scalar(
            f"SELECT ROW({columns})::text FROM {self.quote(staged)} "
            f"GROUP BY {columns} HAVING count(*) > 1 LIMIT 1",
            {},
        )
        if row is not None:
            raise StepError(
                f"merge into {target}: the new rows repeat the key {row} of ({columns})"
            )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction; nested uses, and the executor's run, join the outer one."""
        if self._in_transaction:
            yield
            return
        self.begin()
        try:
            yield
        except BaseException:
            with contextlib.suppress(StepError):
                self.rollback()
            raise
        self.commit()

    @contextmanager
    def _errors(self, what: str = "Postgres") -> Iterator[None]:
        try:
            with _errors(self._secrets, what):
                yield
        except (StepError, SystemError) as error:
            # the cause of a broken connection is that the server went away, whatever the
            # driver's wording (`invalid socket`, AdminShutdown, a failed decode callback)
            if not self._gone(error.__cause__ or error.__context__ or error):
                raise
            raise StepError(self._gone_text()) from None

    def _gone(self, error: BaseException) -> bool:
        """Whether the server went away (stopped, restarted, crashed): this connection is
        dead, and every statement on it fails until a new one is made."""
        if getattr(error, "pgcode", None) in SERVER_GONE_SQLSTATES:
            return True
        return bool(self._con.closed) or isinstance(error, psycopg2.InterfaceError)

    def _gone_text(self) -> str:
        return (
            f"the Postgres server closed the connection (server at {self._where} went away: "
            "it was stopped, restarted or crashed); nothing the run did there is kept"
        )

    def _copy_error(self, error: psycopg2.Error, origin: str, header: bool) -> StepError:
        """A COPY failure as the user's: `origin, row N, column c: problem`."""
        if self._gone(error):
            return StepError(f"{origin}: {self._gone_text()}")
        diag = error.diag
        problem = self._redact(diag.message_primary or str(error).strip())
        found = _COPY_CONTEXT.search(diag.context or "")
        if found is None:
            return StepError(f"{origin}: Postgres COPY: {problem}")
        line = int(found.group("line"))
        row = line - 1 if header else line
        column = found.group("column") or diag.column_name
        where = f" (line {line})"
        if column is None:
            return StepError(f"{origin}, row {row}{where}: {problem}")
        return DataError(origin, row, column, problem, line=where)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


# Failures another attempt may not meet: the transaction lost a race, not a mistake. The run's
# transaction survives them (rolled back to the step's savepoint), so the step can run again.
TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available (lock_timeout)
    }
)
# The server ends the session: admin_shutdown (`pg_ctl stop -m fast`, a terminated backend),
# crash_shutdown (another backend crashed, or `-m immediate`), cannot_connect_now.
SERVER_GONE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
_OPEN_CURSORS = "SELECT count(*) FROM pg_cursors"
_SCHEMA_EXISTS = "SELECT count(*) FROM pg_namespace WHERE nspname = %(name)s"
_COPY_CONTEXT = re.compile(r"COPY [^,]+, line (?P<line>\d+)(?:, column (?P<column>[^:]+))?")


@contextmanager
def _errors(secrets: Sequence[str], what: str) -> Iterator[None]:
    """The server's (or libpq's) failures are the user's to fix; never a password shown."""
    try:
        yield
    except psycopg2.Error as error:
        text = (getattr(error, "pgerror", None) or str(error)).strip()
        text = text.removeprefix("ERROR:").strip()
        for secret in sorted((s for s in secrets if s), key=len, reverse=True):
            text = text.replace(secret, "***")
        retryable = getattr(error, "pgcode", None) in TRANSIENT_SQLSTATES
        raise StepError(f"{what}: {text}", retryable=retryable) from None


def _server_address(connection: psycopg2.extensions.connection) -> str:
    """`host:port` of the server (a Unix socket's folder as its host), for messages."""
    info = connection.info
    return f"{info.host}:{info.port}"


def _body(sql: str) -> str:
    """A query to nest in another statement: without its final `;`.

    >>> _body("SELECT 1;\n")
    'SELECT 1'
    """
    return sql.strip().rstrip(";").rstrip()


def _url_passwords(url: str) -> list[str]:
    """The password inside a connection URL, as written and decoded, to keep out of messages."""
    with contextlib.suppress(psycopg2.Error):
        password = psycopg2.extensions.parse_dsn(url).get("password")
        if password:
            return [password, quote(password, safe="")]
    return []


def _match_columns(given: Sequence[str], existing: Sequence[str], target: TableName) -> list[str]:
    """The existing column each given column goes into: of the same name, else of the same
    name ignoring case (a table made with `fold_names`, or by another tool)."""
    exact = set(existing)
    by_key: dict[str, str] = {}
    for name in existing:
        by_key.setdefault(name.lower(), name)
    found = {name: name if name in exact else by_key.get(name.lower()) for name in given}
    unknown = [name for name, column in found.items() if column is None]
    if unknown:
        listed = ", ".join(f"`{n}`" for n in unknown)
        raise StepError(f"{target} has no column {listed} (it has {', '.join(existing)})")
    return [found[name] or name for name in given]


# --- Arrow <-> Postgres types ---------------------------------------------------------------


def postgres_type(kind: pa.DataType) -> str:
    """The Postgres column type for an Arrow type.

    >>> postgres_type(pa.decimal128(10, 2))
    'NUMERIC(10, 2)'
    >>> postgres_type(pa.list_(pa.string()))
    'TEXT[]'
    """
    if pa.types.is_decimal(kind):
        return f"NUMERIC({kind.precision}, {kind.scale})"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMPTZ" if kind.tz else "TIMESTAMP"
    if isinstance(kind, pa.ListType | pa.LargeListType):
        return f"{postgres_type(kind.value_type)}[]"
    for test, name in _TYPE_NAMES:
        if test(kind):
            return name
    raise StepError(f"Arrow type {kind} has no Postgres column type in flowc")


_TYPE_NAMES: list[tuple[Callable[[pa.DataType], bool], str]] = [
    (lambda t: pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t), "SMALLINT"),
    (lambda t: pa.types.is_int32(t) or pa.types.is_uint16(t), "INTEGER"),
    (lambda t: pa.types.is_int64(t) or pa.types.is_uint32(t), "BIGINT"),
    (pa.types.is_uint64, "NUMERIC(20, 0)"),
    (lambda t: pa.types.is_float16(t) or pa.types.is_float32(t), "REAL"),
    (pa.types.is_float64, "DOUBLE PRECISION"),
    (pa.types.is_boolean, "BOOLEAN"),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "TEXT"),
    (pa.types.is_null, "TEXT"),
    (pa.types.is_date, "DATE"),
    (pa.types.is_time, "TIME"),
    (pa.types.is_duration, "INTERVAL"),
    (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "BYTEA"),
]

# result column type OIDs (pg_type) -> Arrow
_OID_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    26: pa.int64(),
    700: pa.float32(),
    701: pa.float64(),
    1082: pa.date32(),
    1083: pa.time64("us"),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    1186: pa.duration("us"),
    17: pa.binary(),
}
_NUMERIC = 1700
# one-dimensional array types (pg_type.typarray) -> their element's OID
_ARRAY_ELEMENTS: dict[int, int] = {
    1000: 16,
    1005: 21,
    1007: 23,
    1016: 20,
    1021: 700,
    1022: 701,
    1009: 25,
    1015: 1043,
    1014: 1042,
    1182: 1082,
    1183: 1083,
    1115: 1114,
    1185: 1184,
    1187: 1186,
    1231: _NUMERIC,
}
_NUMERIC_ARRAY = 1231
# result types whose COPY text pyarrow's CSV reader parses into the Arrow type above
_CSV_OIDS = frozenset({16, 20, 21, 23, 26, 700, 701, _NUMERIC, 1082, 1114, 1184, 25, 1043, 1042})
_PAGES = "SELECT pg_relation_size(%(table)s::regclass) / current_setting('block_size')::int"
_DECIMAL128_DIGITS = 38
_DECIMAL256_DIGITS = 76
# per NUMERIC column: the most digits before the point, the most after it, any NaN/Infinity
_DIGITS = (
    "max(CASE WHEN abs({column}) < 1 THEN 0 ELSE length(trunc(abs({column}))::text) END) "
    "FILTER (WHERE scale({column}) IS NOT NULL), max(scale({column})), "
    "coalesce(bool_or(scale({column}) IS NULL AND {column} IS NOT NULL), false)"
)


@dataclass(frozen=True)
class _Kept:
    """A result kept in a TEMP table to be read: its name, rows and pages."""

    name: str
    rows: int
    pages: int


@dataclass(frozen=True)
class _Number:
    """How a NUMERIC column is read: its Arrow type and, when its values have more digits
    than an Arrow decimal holds (76), the scale they are rounded to on the server, said in
    `note`."""

    kind: pa.DataType
    round_to: int | None = None
    note: str | None = None


def _number(name: str, digits: int, scale: int) -> _Number:
    """The Arrow type that holds every value of a NUMERIC column exactly, given the most
    digits its values have before the point and after it.

    >>> _number("avg_qty", 2, 20).kind
    Decimal128Type(decimal128(38, 20))
    >>> _number("big", 30, 20).kind
    Decimal256Type(decimal256(76, 20))
    >>> _number("huge", 70, 20).round_to
    5
    """
    if digits + scale <= _DECIMAL128_DIGITS:
        return _Number(pa.decimal128(_DECIMAL128_DIGITS, scale))
    if digits + scale <= _DECIMAL256_DIGITS:
        return _Number(pa.decimal256(_DECIMAL256_DIGITS, scale))
    where = f"column `{name}` has values of {digits} digits and {scale} decimal places"
    if digits < _DECIMAL256_DIGITS:  # a digit left for what rounding carries (9.5 -> 10)
        kept = _DECIMAL256_DIGITS - 1 - digits
        note = f"{where}, more than a decimal holds (76 digits): rounded to {kept} places"
        return _Number(pa.decimal256(_DECIMAL256_DIGITS, kept), kept, note)
    note = f"{where}, more than a decimal holds (76 digits): read as double precision"
    return _Number(pa.float64(), None, note)


def _loose(column: psycopg2.extensions.Column) -> bool:
    """A NUMERIC whose declaration says nothing an Arrow decimal could hold (a SUM, an
    AVG, a NUMERIC(100, 50)), or an array of NUMERIC (a result says no element type
    modifier): its values decide."""
    if column.type_code == _NUMERIC_ARRAY:
        return True
    return column.type_code == _NUMERIC and _declared(column) is None


def _declared(column: psycopg2.extensions.Column) -> pa.DataType | None:
    """NUMERIC(p, s) as decimal(p, s), where Arrow has it (p <= 76); an unconstrained
    NUMERIC says precision 65535."""
    precision, scale = column.precision, column.scale
    if precision is None or scale is None or not 0 < precision <= _DECIMAL256_DIGITS:
        return None
    if precision <= _DECIMAL128_DIGITS:
        return pa.decimal128(precision, scale)
    return pa.decimal256(precision, scale)


def _arrow_schema(
    description: Sequence[psycopg2.extensions.Column], numbers: Mapping[int, _Number]
) -> pa.Schema:
    fields = []
    for index, column in enumerate(description):
        if index in numbers:
            kind = numbers[index].kind
            if column.type_code == _NUMERIC_ARRAY:
                kind = pa.list_(kind)
        elif column.type_code in _ARRAY_ELEMENTS:
            kind = pa.list_(_OID_TYPES.get(_ARRAY_ELEMENTS[column.type_code], pa.string()))
        elif column.type_code == _NUMERIC:
            kind = _declared(column) or pa.decimal128(_DECIMAL128_DIGITS, 0)
        else:
            kind = _OID_TYPES.get(column.type_code, pa.string())
        fields.append(pa.field(column.name, kind))
    return pa.schema(fields)


def _triples(row: Sequence[Any]) -> Iterator[tuple[Any, Any, Any]]:
    for start in range(0, len(row), 3):
        yield row[start], row[start + 1], row[start + 2]


def _copied(column: str, kind: pa.DataType, number: _Number | None) -> str:
    """How COPY selects a kept column: timestamptz as UTC wall time (its text then needs no
    session time zone), a NUMERIC rounded where it must be, or as a float."""
    if pa.types.is_timestamp(kind) and kind.tz:
        return f"({column} AT TIME ZONE 'UTC')"
    if number is not None and number.round_to is not None:
        return f"round({column}, {number.round_to})"
    if number is not None and pa.types.is_floating(kind):
        return f"{column}::float8"
    return column


def _text_type(kind: pa.DataType) -> pa.DataType:
    """The type pyarrow's CSV reader parses a column's COPY text into (then cast to `kind`):
    it has no decimal256, and timestamptz comes as UTC wall time."""
    if pa.types.is_timestamp(kind):
        return pa.timestamp("us")
    if isinstance(kind, pa.Decimal256Type):
        return pa.string()
    return kind


def _record_batch(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    arrays = [_array(list(values), f.type) for values, f in zip(columns, schema, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _array(values: list[Any], kind: pa.DataType) -> pa.Array[Any]:
    return pa.array(_values(values, kind), type=kind)


def _values(values: list[Any], kind: pa.DataType) -> list[Any]:
    """psycopg2's values in the form pyarrow builds `kind` from; a list's elements by
    their own type."""
    if isinstance(kind, pa.ListType | pa.LargeListType):
        flat = _values([v for value in values if value is not None for v in value], kind.value_type)
        elements = iter(flat)
        return [None if value is None else [next(elements) for _ in value] for value in values]
    if pa.types.is_string(kind):
        values = [v if v is None or isinstance(v, str) else str(v) for v in values]
    elif pa.types.is_decimal(kind):
        quantum = decimal.Decimal(1).scaleb(-kind.scale)
        # Postgres rounds half away from zero; the context holds any Arrow decimal
        context = decimal.Context(prec=_DECIMAL256_DIGITS + 2, rounding=decimal.ROUND_HALF_UP)
        values = [
            v.quantize(quantum, context=context)
            if isinstance(v, decimal.Decimal) and v.is_finite()
            else v
            for v in values
        ]
    elif pa.types.is_floating(kind):
        values = [float(v) if isinstance(v, decimal.Decimal) else v for v in values]
    elif pa.types.is_timestamp(kind) and kind.tz:
        values = [v.astimezone(dt.UTC) if isinstance(v, dt.datetime) else v for v in values]
    elif pa.types.is_binary(kind):
        values = [bytes(v) if v is not None else None for v in values]
    return values


def _is_list(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_large_list(kind)


class _CsvStream(io.RawIOBase):
    """Arrow batches as CSV bytes, written a batch at a time as COPY reads them. Strings are
    always quoted, so an empty string stays one and an unquoted empty field is NULL."""

    def __init__(self, reader: pa.RecordBatchReader) -> None:
        self._batches = iter(reader)
        self._buffer = b""
        self._options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = self._next_chunk()
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def _next_chunk(self) -> bytes | None:
        try:
            batch = next(self._batches, None)
        except BaseException as error:  # kept to re-raise once COPY has been aborted
            self.error = error
            raise
        if batch is None:
            return None
        sink = io.BytesIO()
        pa_csv.write_csv(_copyable(batch), sink, self._options)
        return sink.getvalue()

    def reraise(self) -> None:
        if self.error is not None:
            raise self.error


def _copyable(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Columns whose CSV text Postgres would not read as such, in a form it does: bytes as
    `\\x` hex, durations as microseconds."""
    arrays = []
    for array in batch.columns:
        if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
            text = ["\\x" + v.hex() if v is not None else None for v in array.to_pylist()]
            array = pa.array(text, pa.string())
        elif pa.types.is_duration(array.type):
            micros = array.cast(pa.duration("us")).cast(pa.int64()).to_pylist()
            array = pa.array([f"{v} microseconds" if v is not None else None for v in micros])
        elif _is_list(array.type):
            array = pa.array([_array_literal(v) for v in array.to_pylist()], pa.string())
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _array_literal(value: list[Any] | None) -> str | None:
    """A list as Postgres array input text: every element double-quoted (Postgres reads a
    quoted element as any type), NULL bare.

    >>> _array_literal(["a", None, 'say "hi"'])
    '{"a",NULL,"say \\\\"hi\\\\""}'
    """
    if value is None:
        return None
    return "{" + ",".join(_array_element(v) for v in value) + "}"


def _array_element(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, list):
        return _array_literal(value) or "NULL"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, bytes):
        text = "\\x" + value.hex()
    else:
        text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _standard_strings(dsn: str, kwargs: Mapping[str, Any]) -> dict[str, str]:
    """libpq `options` that start the session with `standard_conforming_strings = on`, after
    any the connection sets. The SQL flowc generates writes standard strings (`'a\\b'` is a
    backslash and a `b`): a server or database set to `off` would read the backslash as an
    escape, change a literal's value or end it early. Set at the start, not by a later `SET`:
    psycopg2 picks its own quoting of bound values from the setting the session began with.
    An `options` parameter replaces libpq's `PGOPTIONS`, so that one is kept too.

    >>> _standard_strings("host=h options='-c search_path=x'", {})
    {'options': '-c search_path=x -c standard_conforming_strings=on'}
    """
    given = (
        kwargs.get("options")
        or (dsn and psycopg2.extensions.parse_dsn(dsn).get("options"))
        or os.environ.get("PGOPTIONS")
    )
    pinned = "-c standard_conforming_strings=on"
    return {"options": f"{given or ''} {pinned}".strip()}
