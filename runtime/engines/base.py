"""The small interface every engine adapter implements (ARCHITECTURE.md, "Engines are
adapters").

The executor only ever talks to an `Engine`: it runs SQL, loads Arrow batches into a table,
reads Arrow batches back out, and changes tables in ways that are all-or-nothing. Adapters
live in `flowc.runtime.engines`, one module per engine, each with a `DIALECT` constant.

Atomicity is the adapter's job, not the caller's: `replace_atomically` builds the new table
under a staging name and swaps it in within one transaction, so readers see the old table or
the new one, and a failure leaves the old one exactly as it was; `append` and `merge` commit
all their rows or none.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

import pyarrow as pa
from flowc.runtime.errors import StepError

R = TypeVar("R")
Params = Mapping[str, object]


@dataclass(frozen=True)
class TableName:
    """A table, optionally qualified by its schema (a dataset on BigQuery).

    >>> TableName.parse("ny_taxi.green_taxi")
    TableName(name='green_taxi', schema='ny_taxi')
    """

    name: str
    schema: str | None = None

    @classmethod
    def parse(cls, dotted: str | TableName) -> TableName:
        """`name` or `schema.name`; a TableName is returned as it is."""
        if isinstance(dotted, TableName):
            return dotted
        parts = dotted.split(".")
        if len(parts) > 2 or not all(parts):
            raise StepError(f"`{dotted}` is not a table name of the form `schema.table`")
        return cls(parts[-1], parts[0] if len(parts) == 2 else None)

    def with_name(self, name: str) -> TableName:
        """A table of another name in the same schema (staging tables live next to theirs)."""
        return TableName(name, self.schema)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class Query:
    """Rows defined by SQL on the same engine, with its bound parameters."""

    sql: str
    params: Params = field(default_factory=dict)


Table = str | TableName
Data = pa.RecordBatchReader | Query  # rows to write: streamed from elsewhere, or a query here


class Engine(Protocol):
    """One database connection, as the runtime uses it. Table names are given as written in
    the spec (`schema.table`); the adapter quotes them as its engine needs."""

    dialect: str

    def execute(self, sql: str, params: Params | None = None) -> None:
        """Run one statement (or several, without params), parameters bound, never pasted."""

    def read_batches(
        self, source: Table | Query, *, batch_size: int = 65_536
    ) -> pa.RecordBatchReader:
        """Stream a table's rows, or a query's (a plain `str` is a table name)."""

    def load_batches(
        self, table: Table, schema: pa.Schema, batches: Iterator[pa.RecordBatch]
    ) -> int:
        """Create `table` (which must not exist) from streamed batches; the number of rows."""

    def create_table(self, table: Table, data: Data) -> int:
        """Create `table` (which must not exist) from rows streamed or queried here."""

    def replace_atomically(self, table: Table, build: Callable[[TableName], R]) -> R:
        """`build` creates the staging table it is given; then it replaces `table` at once."""

    def append(self, table: Table, data: Data) -> int:
        """Add rows (matched by column name) in one transaction; creates a missing table."""

    def merge(self, table: Table, key: Sequence[str], data: Data) -> int:
        """Upsert by `key`: rows whose key exists are replaced, others added; one transaction."""

    def table_exists(self, table: Table) -> bool:
        """Whether the table (or view) exists, its name compared as the engine compares."""

    def table_schema(self, table: Table) -> pa.Schema | None:
        """The Arrow schema of an existing table, None when there is no such table."""

    def quote(self, table: Table) -> str:
        """The table's name as SQL of this engine, quoted per the compiler's policy."""

    # The executor holds a transaction per step on engines that stage, and one for the run's
    # last part (executor.py, "Stages"): every write between `begin` and `commit` joins it,
    # and nothing of it is visible to other sessions until `commit`.

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction opened by `begin` is still open."""

    def begin(self) -> None:
        """Open the transaction every later write joins; reads see its uncommitted writes."""

    def commit(self) -> None:
        """Make every write since `begin` visible at once."""

    def rollback(self) -> None:
        """Undo every write since `begin`: each table is as it was before."""

    def close(self) -> None:
        """Release the connection; the engine is unusable afterwards."""


@runtime_checkable
class Interruptible(Protocol):
    """An engine whose running statement can be cancelled from another thread (step
    timeouts); the transaction it ran in is then aborted, and the run rolls back."""

    def interrupt(self) -> None:
        """Cancel the statement running now, if any."""


# --- optional capabilities: the executor checks for them with isinstance --------------------


@runtime_checkable
class CsvCopying(Protocol):
    """An engine that parses CSV itself (Postgres `COPY`): a CSV load whose header maps onto
    the declared columns streams the file's bytes straight into the declared table."""

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
        """Append a CSV stream's rows to `table` (its `columns`, in the file's order); a value
        the engine rejects is a `DataError` naming `origin`, the row and the column.
        `new_table`: the table was created in the open transaction (the engine may use it)."""
        ...


@runtime_checkable
class Noting(Protocol):
    """An engine that says what it could not carry exactly (values with more digits than any
    decimal type it can hand over, rounded): the step reports it as a warning."""

    def take_notes(self) -> list[str]:
        """What happened since the last call, one sentence each; then forgotten."""
        ...


@runtime_checkable
class Analyzing(Protocol):
    """An engine whose planner needs statistics that a bulk write leaves stale: Postgres
    has none for a table it just loaded or created until autovacuum comes by, and plans
    joins over it blind (a nested loop over 60,000 rows it guesses are a few hundred)."""

    def analyze(self, table: Table) -> None:
        """Collect the planner's statistics of `table` now."""
        ...


@runtime_checkable
class RunLocking(Protocol):
    """An engine shared by concurrent runs (a database server): each run holds a lock named
    by its project, pipeline and profile for as long as its connection lasts."""

    def lock_run(self, key: str, on_wait: Callable[[str], None]) -> None:
        """Take the lock `key` for the session; `on_wait` hears why, if it waits."""
        ...


@runtime_checkable
class Savepoints(Protocol):
    """An engine that can undo one step inside the run's transaction (Postgres), so that a
    step failing in a way worth retrying can run again without failing the run."""

    def savepoint(self) -> None:
        """Mark the start of a step."""

    def rollback_to_savepoint(self) -> None:
        """Undo everything since the last `savepoint`; the transaction goes on."""

    def release_savepoint(self) -> None:
        """Forget the last `savepoint` (the step succeeded)."""


_UNQUALIFIED_DROP = re.compile(
    r'^(\s*DROP\s+(?:TABLE|VIEW|MATERIALIZED\s+VIEW)\s+IF\s+EXISTS\s+)("(?:[^"]|"")*")(?!\s*\.)',
    re.IGNORECASE,
)


def drop_in_stage(sql: str, stage: str) -> str:
    """`sql` with a DROP of an unqualified name narrowed to `stage` (quoted): on a search
    path that goes on to the real schema, `DROP TABLE IF EXISTS "t"` would otherwise drop the
    real `t` when the stage has none (the compiler writes Postgres replaces that way).

    >>> drop_in_stage('DROP TABLE IF EXISTS "t" CASCADE', '"s"')
    'DROP TABLE IF EXISTS "s"."t" CASCADE'
    >>> drop_in_stage('DROP TABLE IF EXISTS "x"."t"', '"s"')
    'DROP TABLE IF EXISTS "x"."t"'
    """
    return _UNQUALIFIED_DROP.sub(lambda m: f"{m[1]}{stage}.{m[2]}", sql, count=1)


@runtime_checkable
class Internal(Protocol):
    """An engine that keeps the nodes that are not published in an internal schema (BigQuery:
    dataset) of their own, apart from where users read. DuckDB, Postgres, BigQuery."""

    def use_internal(self, schema: str | None, names: Collection[str] = ()) -> None:
        """Schema `schema` (created when missing) holds the nodes that are not published,
        `names` (their tables): on engines with a search path it comes after the stage and
        before the connection's own schema, and takes the unqualified CREATEs when there is
        no stage; on BigQuery each of `names`, unqualified, means `schema.name`. None: none."""


@runtime_checkable
class Staging(Protocol):
    """An engine that builds a run aside (executor.py, "Stages"): every step commits on its own
    into a stage schema of the run, which later steps read first; at the end one transaction
    publishes what the stage holds under the real names. DuckDB and Postgres."""

    def use_stage(self, stage: str | None) -> None:
        """From now on unqualified names resolve in schema `stage` (created when missing)
        first, then in the connection's own schema, and unqualified CREATEs go to `stage`;
        None: the connection's own schema only."""

    def publish(self, stage: str, names: Sequence[str], internal: Sequence[str] = ()) -> None:
        """Inside the open transaction: each of `names` (tables or views built in `stage`)
        replaces whatever has its name in the connection's own schema; each of `internal`,
        what has its name in the internal schema."""

    def drop_stages(self, prefix: str, keep: Collection[str]) -> None:
        """Drop the stage schemas whose names start with `prefix`, except those in `keep` and
        those that published names still read."""

    def unpublish(self, names: Sequence[str]) -> None:
        """Inside the open transaction: what `publish` left under `names` in the connection's
        own schema is dropped (the run's last transaction builds tables there instead)."""

    def worker(self) -> Engine:
        """Another connection to the same database, for a step running alongside."""
        ...
