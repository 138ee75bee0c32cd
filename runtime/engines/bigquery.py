"""The BigQuery adapter, on the official client (`google-cloud-bigquery`) and pyarrow.

SQL runs as query jobs, `:params` bound as query parameters (the plan writes them `@name`).
Rows go in by load jobs, never row inserts: Arrow batches are streamed into a temporary Parquet
file, which one load job uploads. Rows come out of query results as Arrow record batches, page
by page over the REST API (no Storage API session, so no extra permission).

Names. BigQuery resolves `dataset.table`, and a bare `table` in the connection's `dataset` (the
default dataset of every job). Every identifier is quoted with backticks.

Atomicity (docs/bigquery.md). BigQuery has no transactional DDL, so a run's writes are
redirected: `begin` creates a scratch dataset, and from then on every table a statement creates
or changes is built there instead (its SQL is rewritten with sqlglot: each write target, and
every later reference to it, names the scratch copy). A table changed in place (INSERT, MERGE,
...) is first copied into the scratch dataset. Reads within the run see the scratch tables;
everyone else sees the old ones. `commit` copies each scratch table onto its real name (a copy
job with WRITE_TRUNCATE replaces one table atomically), recreates the run's views there, and
deletes the scratch dataset; `rollback` only deletes it. The gap: the commit is one atomic step
per table, not one for all of them.

Retries. Every API call uses the client's own retry policy for transient errors (`_RETRY`),
and query jobs that fail with a retryable error are re-run (`_JOB_RETRY`); an upload is
retried whole from its file.
"""

from __future__ import annotations

import contextlib
import decimal
import re
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from flowc.project.config import BigQuerySettings
from flowc.runtime.engines.base import Data, Params, Query, Table, TableName
from flowc.runtime.errors import StepError
from google.api_core import exceptions as api_errors
from google.cloud import bigquery
from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY
from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

DIALECT = "bigquery"
R = TypeVar("R")
SCOPES = ("https://www.googleapis.com/auth/bigquery",)
SCRATCH_PREFIX = "_flowc_run_"
_RETRY = bigquery.DEFAULT_RETRY.with_deadline(600)
# the first call of a run: an endpoint that does not answer is reported soon, not in minutes
_FIRST_RETRY = bigquery.DEFAULT_RETRY.with_deadline(20)
_JOB_RETRY = DEFAULT_JOB_RETRY
_TRANSIENT = (
    api_errors.InternalServerError,
    api_errors.ServiceUnavailable,
    api_errors.TooManyRequests,
    api_errors.GatewayTimeout,
    ConnectionError,
)
_PARAM = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")
_LABEL_VALUE = re.compile(r"[^a-z0-9_-]")
_WRITES = (
    exp.Create,
    exp.Insert,
    exp.Merge,
    exp.Delete,
    exp.Update,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
)


def quote_identifier(name: str) -> str:
    r"""`name` as a GoogleSQL identifier: backticks, embedded ones escaped.

    >>> quote_identifier("a`b")
    '`a\\`b`'
    """
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def label_value(text: str) -> str:
    """A job label's value: lowercase letters, digits, `_` and `-`, at most 63 characters.

    >>> label_value("Green_Taxi.clean trips")
    'green_taxi_clean_trips'
    """
    return _LABEL_VALUE.sub("_", text.lower())[:63]


@dataclass(frozen=True)
class _Ref:
    """A table in the connection's project: its dataset and name."""

    dataset: str
    name: str

    def sql(self, project: str) -> str:
        return ".".join(quote_identifier(p) for p in (project, self.dataset, self.name))


class BigQueryEngine:
    """An `Engine` over one BigQuery project (the client of a connection)."""

    dialect = DIALECT

    def __init__(
        self,
        client: bigquery.Client,
        *,
        dataset: str | None = None,
        location: str | None = None,
        endpoint: str = "https://bigquery.googleapis.com",
    ) -> None:
        self._client = client
        self._endpoint = endpoint
        self._project: str = client.project
        self._dataset = dataset
        self._location = location
        self._labels: dict[str, str] = {}
        self._scratch: str | None = None  # the run's dataset while a transaction is open
        self._internal: str | None = None  # where the unpublished nodes' tables live
        self._internal_names: set[str] = set()  # those tables, unqualified (lower case)
        self._moved: dict[_Ref, _Ref] = {}  # real table -> its copy in the scratch dataset
        self._views: dict[_Ref, str] = {}  # views the run defined, by their statement
        self._known_datasets: set[str] = set()

    @classmethod
    def from_settings(cls, settings: BigQuerySettings, root: Path) -> BigQueryEngine:
        """The connection a profile declares: a service-account file (relative to the project
        root), else application default credentials; `api_endpoint` means anonymous access
        (emulators, private endpoints)."""
        options: dict[str, Any] = {"project": settings.project, "location": settings.location}
        if settings.api_endpoint:
            from google.auth.credentials import AnonymousCredentials

            options["credentials"] = AnonymousCredentials()
            options["client_options"] = {"api_endpoint": settings.api_endpoint}
        elif settings.credentials is not None:
            options["credentials"] = _service_account(settings.credentials.get_secret_value(), root)
        try:
            client = bigquery.Client(**options)
        except Exception as error:  # google.auth's DefaultCredentialsError, among others
            raise StepError(
                f"cannot connect to BigQuery project {settings.project}: "
                f"{type(error).__name__} (set `credentials`, or run "
                "`gcloud auth application-default login`)"
            ) from None
        endpoint = settings.api_endpoint or "https://bigquery.googleapis.com"
        return cls(client, dataset=settings.dataset, location=settings.location, endpoint=endpoint)

    def __enter__(self) -> BigQueryEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def set_labels(self, labels: Mapping[str, str]) -> None:
        """Labels for every job from now on (the executor names pipeline, run and step)."""
        self._labels = {f"flowc_{k}": label_value(v) for k, v in labels.items() if v}

    # --- statements and reads -------------------------------------------------------------

    def execute(self, sql: str, params: Params | None = None) -> None:
        for statement in _split(sql):
            self._statement(statement, params)

    def read_batches(
        self, source: Table | Query, *, batch_size: int = 65_536
    ) -> pa.RecordBatchReader:
        query = (
            source if isinstance(source, Query) else Query(f"SELECT * FROM {self.quote(source)}")
        )
        sql = self._rewrite(_parse_one(query.sql)) if self._rewrites else query.sql
        job = self._query(sql, query.params)
        with _engine_errors():
            rows = job.result(page_size=batch_size, retry=_RETRY)
            batches = rows.to_arrow_iterable(bqstorage_client=None)
            first = next(iter(batches), None)
            if first is None:  # no page at all: the schema comes from an empty table
                empty = job.result(retry=_RETRY).to_arrow(create_bqstorage_client=False)
                return pa.RecordBatchReader.from_batches(empty.schema, [])
        return pa.RecordBatchReader.from_batches(first.schema, _chain(first, batches))

    # --- writes ---------------------------------------------------------------------------

    def load_batches(
        self, table: Table, schema: pa.Schema, batches: Iterator[pa.RecordBatch]
    ) -> int:
        return self.create_table(table, pa.RecordBatchReader.from_batches(schema, batches))

    def create_table(self, table: Table, data: Data) -> int:
        target = self._ref(table)
        self._ensure_dataset(target.dataset)
        if isinstance(data, Query):
            self.execute(f"CREATE TABLE {self.quote(table)} AS {data.sql}", data.params)
            return self._rows(self._resolve(target))
        destination = self._claim(target, copy=True)
        if self._exists(destination):
            raise StepError(f"table {_show(target)} already exists")
        return self._load(destination, data, "WRITE_EMPTY")

    def replace_atomically(self, table: Table, build: Callable[[TableName], R]) -> R:
        target = TableName.parse(table)
        staging = target.with_name(f"__flowc_staging_{target.name}_{uuid.uuid4().hex[:8]}")
        if self._scratch is not None:  # built in the scratch dataset; `commit` swaps it in
            try:
                result = build(staging)
            except BaseException:
                self._moved.pop(self._ref(staging), None)  # never committed
                raise
            self._moved[self._ref(target)] = self._moved.pop(self._ref(staging))
            self._views.pop(self._ref(target), None)
            return result
        try:
            result = build(staging)
            self._install(self._ref(staging), self._ref(target))
        finally:
            self._delete_quietly(self._ref(staging))
        return result

    def append(self, table: Table, data: Data) -> int:
        if not self.table_exists(table):
            return self.create_table(table, data)
        with self._staged(data) as staged:
            columns = ", ".join(quote_identifier(c) for c in staged.columns)
            sql = (
                f"INSERT INTO {self.quote(table)} ({columns}) "
                f"SELECT {columns} FROM {staged.name.sql(self._project)}"
            )
            return self._dml(sql)

    def merge(self, table: Table, key: Sequence[str], data: Data) -> int:
        target = self._ref(table)
        if not key:
            raise StepError(f"a merge into {_show(target)} needs a `key`")
        if not self.table_exists(table):
            return self.append(table, data)
        with self._staged(data) as staged:
            self._check_unique(staged, key, target)
            match = " AND ".join(f"T.{quote_identifier(k)} = S.{quote_identifier(k)}" for k in key)
            names = [quote_identifier(c) for c in staged.columns]
            updates = ", ".join(
                f"{c} = S.{c}" for c in names if c not in set(map(quote_identifier, key))
            )
            sql = (
                f"MERGE {self.quote(table)} AS T USING {staged.name.sql(self._project)} AS S "
                f"ON {match} "
                + (f"WHEN MATCHED THEN UPDATE SET {updates} " if updates else "")
                + f"WHEN NOT MATCHED THEN INSERT ({', '.join(names)}) "
                f"VALUES ({', '.join(f'S.{c}' for c in names)})"
            )
            self._dml(sql)
            return staged.rows

    # --- the run-long "transaction": a scratch dataset -------------------------------------

    @property
    def in_transaction(self) -> bool:
        return self._scratch is not None

    def begin(self) -> None:
        """Create the run's scratch dataset, next to the connection's dataset (created if
        missing) and in its location: a copy job does not cross locations."""
        if self._scratch is not None:
            raise StepError("a run is already open on this BigQuery connection")
        try:
            if self._dataset:
                home = self._client.create_dataset(
                    self._new_dataset(self._dataset), exists_ok=True, retry=_FIRST_RETRY, timeout=10
                )
                self._location = self._location or home.location
                self._known_datasets.add(self._dataset)
            scratch = self._new_dataset(f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:12]}")
            scratch.labels = {"flowc": "scratch", **self._labels}
            scratch.description = "flowc: the tables of one run until it commits; safe to delete"
            self._client.create_dataset(scratch, retry=_FIRST_RETRY, timeout=10)
        except api_errors.RetryError as error:
            raise StepError(
                f"BigQuery does not answer at {self._endpoint} ({type(error.cause).__name__})"
            ) from None
        except api_errors.GoogleAPIError as error:
            raise StepError(f"BigQuery: {_message(error)}") from error
        self._scratch = scratch.dataset_id

    def _new_dataset(self, name: str) -> bigquery.Dataset:
        dataset = bigquery.Dataset(f"{self._project}.{name}")
        dataset.location = self._location
        return dataset

    def use_internal(self, schema: str | None, names: Collection[str] = ()) -> None:
        """An unqualified name among `names` means `schema.name` from now on: the nodes that
        are not published live in dataset `schema` (created on the first write)."""
        self._internal = schema
        self._internal_names = {n.lower() for n in names} if schema else set()

    def commit(self) -> None:
        """Copy every table the run built onto its real name (atomic per table), then
        recreate the run's views, then drop the scratch dataset."""
        if self._scratch is None:
            return
        for real, copy in self._moved.items():
            if real in self._views:
                continue
            if self._exists(copy):
                self._ensure_dataset(real.dataset)
                self._install(copy, real)
            else:  # dropped by the run
                self._delete_quietly(real)
        for real, statement in self._views.items():
            self._ensure_dataset(real.dataset)
            self._query(statement, None).result(retry=_RETRY)
        self._end()

    def rollback(self) -> None:
        self._end()

    def _end(self) -> None:
        scratch, self._scratch = self._scratch, None
        self._moved.clear()
        self._views.clear()
        if scratch is not None:
            with _engine_errors():
                self._client.delete_dataset(
                    scratch, delete_contents=True, not_found_ok=True, retry=_RETRY
                )

    # --- catalog --------------------------------------------------------------------------

    def table_exists(self, table: Table) -> bool:
        return self._exists(self._resolve(self._ref(table)))

    def table_schema(self, table: Table) -> pa.Schema | None:
        if not self.table_exists(table):
            return None
        return self.read_batches(Query(f"SELECT * FROM {self.quote(table)} LIMIT 0")).schema

    def quote(self, table: Table) -> str:
        name = TableName.parse(table)
        quoted = quote_identifier(name.name)
        return f"{quote_identifier(name.schema)}.{quoted}" if name.schema else quoted

    # --- statements -----------------------------------------------------------------------

    def _statement(self, statement: exp.Expr, params: Params | None) -> bigquery.QueryJob | None:
        if isinstance(statement, exp.Create) and statement.kind == "SCHEMA":
            table = statement.this
            self._ensure_dataset(table.db if isinstance(table, exp.Table) else str(table))
            return None
        statement = self._qualified(statement)
        if self._scratch is None:
            return self._query(statement.sql(DIALECT), params)
        original = statement.sql(DIALECT)
        view = isinstance(statement, exp.Create) and statement.kind == "VIEW"
        target = self._write_target(statement)
        written = dict(self._moved)  # what the statement reads: the tables as they are now
        if target is not None and target.dataset != self._scratch:
            replacing = isinstance(statement, exp.Create) and bool(statement.args.get("replace"))
            self._claim(target, copy=not replacing and not isinstance(statement, exp.Drop))
        job = self._query(self._rewrite(statement, written), params)
        if target is not None:
            if view:
                self._views[target] = original
            else:
                self._views.pop(target, None)
        return job

    def _qualified(self, statement: exp.Expr) -> exp.Expr:
        """`statement` with each unqualified name of an unpublished node's table (a read or
        the write target, not a CTE) named in the internal dataset: also the text a view is
        recreated from at the commit."""
        if not self._internal or not self._internal_names:
            return statement
        statement = statement.copy()
        for table in relations(statement):
            if not table.db and not table.catalog and table.name.lower() in self._internal_names:
                table.set("db", exp.to_identifier(self._internal, quoted=True))
        return statement

    def _write_target(self, statement: exp.Expr) -> _Ref | None:
        """The table `statement` writes, None for a query. Within a run, a statement flowc
        cannot redirect (not a query nor a known write, or a write to another project's
        table) is refused: it would change a table before the commit."""
        if not isinstance(statement, _WRITES):
            if isinstance(statement, exp.Query):
                return None
            raise StepError(
                f"BigQuery: flowc cannot run `{statement.sql(DIALECT)[:60]}` inside a run "
                "(only queries and writes of tables)"
            )
        table = _target(statement) or statement.find(exp.Table)
        if table is None:
            return None
        ref = self._table_ref(table)
        if ref is None:
            raise StepError(
                f"BigQuery: a run writes tables of project {self._project} only, "
                f"not {table.catalog}.{table.db}.{table.name}"
            )
        return ref

    def _rewrite(self, statement: exp.Expr, written: Mapping[_Ref, _Ref] | None = None) -> str:
        """The statement with every table this run wrote named by its scratch copy; its
        write target by the copy it writes, its reads by those `written` before it (by
        default, every copy: `CREATE OR REPLACE TABLE t AS SELECT ... FROM t` reads the `t`
        of before). Names are resolved, not matched: a reference to a CTE (in the scopes
        that see it, so not the CTE's own body, nor the table a statement creates) stays as
        it is, whatever tables share its name; a renamed reference keeps the name it had as
        its alias, so columns qualified by it (`store_sales.ss_sold_date_sk`) still resolve."""
        target = _target(statement)
        reads = self._moved if written is None else written
        for table in relations(statement):
            ref = self._table_ref(table)
            copies = self._moved if table is target else reads
            moved = copies.get(ref) if ref is not None else None
            if moved is None and ref is not None and not table.db and ref.dataset != self._dataset:
                moved = ref  # an unpublished node's table: in the internal dataset
            if moved is None:
                continue
            replacement = exp.table_(
                moved.name, db=moved.dataset, catalog=self._project, quoted=True
            )
            alias = table.args.get("alias")
            if alias is None and table is not target:
                alias = exp.TableAlias(this=exp.to_identifier(table.name, quoted=True))
            if alias is not None:
                replacement.set("alias", alias)
            table.replace(replacement)
        rewritten = statement.sql(DIALECT)
        if self._scratch is not None:
            self._check_redirected(statement)
        return rewritten

    @property
    def _rewrites(self) -> bool:
        """Whether queries need their names rewritten: within a run, or with internal names."""
        return self._scratch is not None or bool(self._internal_names)

    def _check_redirected(self, statement: exp.Expr) -> None:
        """Within a run a write goes to the scratch dataset, always: a rewrite that left it
        aimed at a real table would change it before the commit (a bug, never run)."""
        target = _target(statement)
        ref = self._table_ref(target) if target is not None else None
        if ref is not None and ref.dataset != self._scratch:
            raise StepError(
                f"BigQuery: flowc would write {_show(ref)} outside the run's scratch dataset; "
                "nothing was run (please report this)"
            )

    def _table_ref(self, table: exp.Table) -> _Ref | None:
        if table.catalog and table.catalog != self._project:
            return None  # another project's table: read where it is, never written by a run
        return self._ref(TableName(table.name, table.db or None))

    def _claim(self, real: _Ref, *, copy: bool) -> _Ref:
        """Where a write to `real` goes: itself, outside a run; else its scratch copy, made
        now (holding the current rows when `copy`) on the first write of the run."""
        if self._scratch is None or real.dataset == self._scratch:
            return real
        if real not in self._moved:
            moved = _Ref(self._scratch, f"{real.dataset}__{real.name}")
            if copy and self._is_table(real):
                self._copy(real, moved)
            self._moved[real] = moved
        return self._moved[real]

    def _resolve(self, real: _Ref) -> _Ref:
        return self._moved.get(real, real)

    # --- jobs -----------------------------------------------------------------------------

    def _query(self, sql: str, params: Params | None) -> bigquery.QueryJob:
        config = bigquery.QueryJobConfig(
            query_parameters=_parameters(sql, params),
            labels=dict(self._labels),
        )
        if self._dataset:
            self._ensure_dataset(self._dataset)  # a job's default dataset must exist
            config.default_dataset = f"{self._project}.{self._dataset}"
        with _engine_errors():
            job = self._client.query(
                sql, job_config=config, location=self._location, retry=_RETRY, job_retry=_JOB_RETRY
            )
            job.result(retry=_RETRY)  # errors surface here, inside the translation
        return job

    def _dml(self, sql: str) -> int:
        job = self._statement(_parse_one(sql), None)
        return int(job.num_dml_affected_rows or 0) if job is not None else 0

    def _load(self, destination: _Ref, reader: pa.RecordBatchReader, disposition: str) -> int:
        """One load job of the rows, streamed through a temporary Parquet file."""
        self._ensure_dataset(destination.dataset)
        with tempfile.TemporaryDirectory(prefix="flowc-bq-") as folder:
            path = Path(folder) / "rows.parquet"
            with pq.ParquetWriter(path, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
            return self._upload(path, destination, disposition)

    @retry(
        retry=retry_if_exception_type(_TRANSIENT),
        stop=stop_after_attempt(4),
        wait=wait_exponential(multiplier=1, max=30),
        reraise=True,
    )
    def _upload(self, path: Path, destination: _Ref, disposition: str) -> int:
        parquet = bigquery.ParquetOptions()
        parquet.enable_list_inference = True
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=disposition,
            labels=dict(self._labels),
        )
        config.parquet_options = parquet
        # decimals land as NUMERIC where it holds them (38 digits, 9 places), else as
        # BIGNUMERIC (76 digits, 38 places); BigQuery's default for Parquet is NUMERIC only
        config.decimal_target_types = ["NUMERIC", "BIGNUMERIC"]
        table = _path(self._project, destination)
        with path.open("rb") as file, _engine_errors(transient=False):
            job = self._client.load_table_from_file(
                file, table, job_config=config, location=self._location, rewind=True
            )
            job.result(retry=_RETRY)
        return int(job.output_rows or 0)

    def _copy(self, source: _Ref, destination: _Ref) -> None:
        """Replace `destination` by a copy of `source`, atomically (one copy job)."""
        config = bigquery.CopyJobConfig(
            write_disposition="WRITE_TRUNCATE", labels=dict(self._labels)
        )
        with _engine_errors():
            job = self._client.copy_table(
                _path(self._project, source),
                _path(self._project, destination),
                job_config=config,
                location=self._location,
                retry=_RETRY,
            )
            job.result(retry=_RETRY)

    def _install(self, copy: _Ref, real: _Ref) -> None:
        """Replace `real` by the run's `copy` with one copy job (atomic), keeping the copy's
        partitioning and clustering. BigQuery copies no table onto one laid out otherwise: a
        change of layout (or a view in the way) drops `real` first, the one non-atomic case.
        Where the copy loses the layout (emulators do), one CREATE OR REPLACE ... AS SELECT
        puts it back."""
        built = self._get(copy)
        layout = _layout(built) if built is not None else ""
        existing = self._get(real)
        if existing is not None and (existing.table_type != "TABLE" or _layout(existing) != layout):
            with _engine_errors():
                self._client.delete_table(_path(self._project, real), retry=_RETRY)
        self._copy(copy, real)
        installed = self._get(real)
        if layout and (installed is None or _layout(installed) != layout):
            sql = f"CREATE OR REPLACE TABLE {real.sql(self._project)} {layout} AS SELECT * FROM "
            self._query(sql + copy.sql(self._project), None)

    @contextmanager
    def _staged(self, data: Data) -> Iterator[_Staged]:
        """`data` as a table of its own (loaded or queried), dropped afterwards."""
        where = self._scratch or self._dataset
        if where is None:
            raise StepError("a BigQuery connection needs a `dataset` for flowc's staging tables")
        name = _Ref(where, f"__flowc_stage_{uuid.uuid4().hex[:12]}")
        self._ensure_dataset(where)
        try:
            if isinstance(data, Query):
                sql = self._rewrite(_parse_one(data.sql)) if self._rewrites else data.sql
                self._query(f"CREATE TABLE {name.sql(self._project)} AS {sql}", data.params)
                rows = self._rows(name)
            else:
                rows = self._load(name, data, "WRITE_EMPTY")
            with _engine_errors():
                table = self._client.get_table(_path(self._project, name), retry=_RETRY)
            yield _Staged(name, [field.name for field in table.schema], rows)
        finally:
            self._delete_quietly(name)

    def _check_unique(self, staged: _Staged, key: Sequence[str], target: _Ref) -> None:
        columns = ", ".join(quote_identifier(k) for k in key)
        sql = (
            f"SELECT {columns} FROM {staged.name.sql(self._project)} "
            f"GROUP BY {columns} HAVING COUNT(*) > 1 LIMIT 1"
        )
        repeated = self.read_batches(Query(sql)).read_all().to_pylist()
        if repeated:
            row = tuple(repeated[0].values())
            raise StepError(
                f"merge into {_show(target)}: the new rows repeat the key {row!r} of ({columns})"
            )

    # --- catalog helpers ------------------------------------------------------------------

    def _ref(self, table: Table) -> _Ref:
        name = TableName.parse(table)
        internal = self._internal if name.name.lower() in self._internal_names else None
        dataset = name.schema or internal or self._dataset
        if dataset is None:
            raise StepError(
                f"table `{name}` names no dataset, and its BigQuery connection sets no `dataset`"
            )
        return _Ref(dataset, name.name)

    def _get(self, ref: _Ref) -> bigquery.Table | None:
        try:
            return self._client.get_table(_path(self._project, ref), retry=_RETRY)
        except api_errors.NotFound:
            return None
        except api_errors.GoogleAPIError as error:
            raise StepError(f"BigQuery: {_message(error)}") from None

    def _exists(self, ref: _Ref) -> bool:
        return self._get(ref) is not None

    def _is_table(self, ref: _Ref) -> bool:
        found = self._get(ref)
        return found is not None and found.table_type == "TABLE"

    def _rows(self, ref: _Ref) -> int:
        found = self._get(ref)
        if found is not None and found.num_rows is not None:
            return int(found.num_rows)
        counted = self.read_batches(Query(f"SELECT COUNT(*) AS n FROM {ref.sql(self._project)}"))
        return int(counted.read_all().to_pylist()[0]["n"])

    def _ensure_dataset(self, name: str) -> None:
        if name in self._known_datasets:
            return
        with _engine_errors():
            self._client.create_dataset(self._new_dataset(name), exists_ok=True, retry=_RETRY)
        self._known_datasets.add(name)

    def _delete_quietly(self, ref: _Ref) -> None:
        # the original failure matters more than a leftover staging table
        with contextlib.suppress(api_errors.GoogleAPIError):
            self._client.delete_table(_path(self._project, ref), not_found_ok=True, retry=_RETRY)


@dataclass(frozen=True)
class _Staged:
    name: _Ref
    columns: list[str]
    rows: int


def relations(statement: exp.Expr) -> list[exp.Table]:
    """The table references of `statement` that name tables (or views), not CTEs: sqlglot's
    scopes say which CTE each scope sees (one of an enclosing WITH, defined before the CTE
    that holds the reference), as BigQuery resolves them.

    >>> sql = "CREATE TABLE c AS WITH c AS (SELECT * FROM c) SELECT * FROM c"
    >>> [t.sql() for t in relations(sqlglot.parse_one(sql, read="bigquery"))]
    ['c', 'c']
    """
    ctes: set[int] = set()
    for query in _outermost_queries(statement):
        for scope in traverse_scope(query):
            for table in scope.tables:
                if isinstance(scope.sources.get(table.alias_or_name), Scope):
                    ctes.add(id(table))
    return [
        table
        for table in statement.find_all(exp.Table)
        if isinstance(table.this, exp.Identifier) and table.name and id(table) not in ctes
    ]


def _outermost_queries(statement: exp.Expr) -> list[exp.Query]:
    found = []
    for query in statement.find_all(exp.Query):
        parent = query.parent
        while parent is not None and not isinstance(parent, exp.Query):
            parent = parent.parent
        if parent is None:
            found.append(query)
    return found


def _target(statement: exp.Expr) -> exp.Table | None:
    """The table a write names as its target (`CREATE TABLE t (...)`, `INSERT INTO t (a)`:
    inside a schema), None for a query."""
    if not isinstance(statement, _WRITES):
        return None
    node = statement.this
    if isinstance(node, exp.Schema):
        node = node.this
    return node if isinstance(node, exp.Table) else None


def _path(project: str, ref: _Ref) -> str:
    return f"{project}.{ref.dataset}.{ref.name}"


def _layout(table: bigquery.Table) -> str:
    """The table's `PARTITION BY ... CLUSTER BY ...` clauses, as GoogleSQL ("" for none)."""
    clauses = []
    partitioning = table.time_partitioning
    if partitioning is not None and partitioning.field:
        column = quote_identifier(partitioning.field)
        types = {f.name: f.field_type for f in table.schema}
        kind = types.get(partitioning.field, "DATE")
        unit = partitioning.type_ or "DAY"
        if kind == "DATE" and unit == "DAY":
            clauses.append(f"PARTITION BY {column}")
        elif unit == "DAY":
            clauses.append(f"PARTITION BY DATE({column})")
        else:
            clauses.append(f"PARTITION BY {kind}_TRUNC({column}, {unit})")
    if table.clustering_fields:
        columns = ", ".join(quote_identifier(c) for c in table.clustering_fields)
        clauses.append(f"CLUSTER BY {columns}")
    return " ".join(clauses)


def _service_account(path_text: str, root: Path) -> Any:
    from google.oauth2 import service_account

    path = Path(path_text).expanduser()
    path = path if path.is_absolute() else root / path
    try:
        return service_account.Credentials.from_service_account_file(str(path), scopes=SCOPES)
    except (OSError, ValueError) as error:
        # the file's path is a secret of the profile: not shown
        raise StepError(
            f"cannot read the BigQuery service-account file (`credentials`): {type(error).__name__}"
        ) from None


def _split(sql: str) -> list[exp.Expr]:
    with _parse_errors(sql):
        return [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]


def _parse_one(sql: str) -> exp.Expr:
    statements = _split(sql)
    if len(statements) != 1:
        raise StepError(f"expected one GoogleSQL statement, found {len(statements)}")
    return statements[0]


@contextmanager
def _parse_errors(sql: str) -> Iterator[None]:
    try:
        yield
    except sqlglot.errors.ParseError as error:
        first = str(error).splitlines()[0]
        raise StepError(f"BigQuery: cannot read the statement: {first}") from None


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    with _engine_errors():
        yield from rest


def _parameters(sql: str, params: Params | None) -> list[bigquery.ScalarQueryParameter]:
    """The parameters `sql` names, typed from their Python values."""
    if not params:
        return []
    used = set(_PARAM.findall(sql))
    return [
        bigquery.ScalarQueryParameter(name, _param_type(value), value)  # type: ignore[arg-type]
        for name, value in params.items()
        if name in used
    ]


def _param_type(value: object) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, decimal.Decimal):
        return "BIGNUMERIC"
    if isinstance(value, datetime):
        return "TIMESTAMP" if value.tzinfo is not None else "DATETIME"
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, time):
        return "TIME"
    return "STRING"


def _show(ref: _Ref) -> str:
    return f"{ref.dataset}.{ref.name}"


_REQUEST = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) \S+: ")


def _message(error: api_errors.GoogleAPIError) -> str:
    """BigQuery's own words, without the request's URL."""
    details = getattr(error, "errors", None) or []
    first = details[0] if details and isinstance(details[0], dict) else {}
    text = first.get("message") or getattr(error, "message", None) or str(error)
    return _REQUEST.sub("", str(text)).strip()


@contextmanager
def _engine_errors(*, transient: bool = True) -> Iterator[None]:
    """BigQuery's refusals (bad SQL, a failed cast, a missing table) are the user's to fix;
    with `transient=False` the retryable ones pass through (to the caller's retry)."""
    try:
        yield
    except api_errors.GoogleAPIError as error:
        if not transient and isinstance(error, _TRANSIENT):
            raise
        raise StepError(f"BigQuery: {_message(error)}") from error
