"""The run-state store: `.flowc/state.db`, the history of every run and step.

An embedded SQLite database (the standard library's `sqlite3`) in WAL mode, so that
`flowc runs` can read while a run writes. Each step is recorded as it starts and again as it
ends, each in its own committed transaction: after a crash the store says exactly which steps
finished (with their fingerprints, for `--resume`) and which were running.

What is stored: pipeline parameters (they are part of what a run did), never connection
settings; error texts pass through `redact`, which masks every secret value the store was
given (the profile's passwords and tokens), so a driver's message that quotes a URL with a
password does not put it on disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
import sqlite3
import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from flowc.project.secrets import mask as mask_secrets
from flowc.runtime import resources
from flowc.runtime.errors import StepError

STATE_PATH = Path(".flowc") / "state.db"
SCHEMA_VERSION = 2
RunStatus = Literal["running", "succeeded", "failed", "interrupted"]
StepStatus = Literal["running", "succeeded", "failed", "skipped", "warned", "reused", "unchanged"]
DONE = ("succeeded", "warned")  # a step whose work stands

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    spec TEXT NOT NULL,
    profile TEXT NOT NULL,
    params TEXT NOT NULL,
    started TEXT NOT NULL,
    ended TEXT,
    status TEXT NOT NULL,
    stage TEXT,
    resumes TEXT,
    pid INTEGER,
    host TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(id),
    step_id TEXT NOT NULL,
    node TEXT NOT NULL,
    kind TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    started TEXT NOT NULL,
    ended TEXT,
    rows INTEGER,
    fingerprint TEXT,
    error TEXT,
    inputs TEXT,
    PRIMARY KEY (run_id, step_id, attempt)
);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs(started);
CREATE TABLE IF NOT EXISTS schedules (
    pipeline TEXT NOT NULL,
    profile TEXT NOT NULL,
    last_slot TEXT NOT NULL,
    PRIMARY KEY (pipeline, profile)
);
"""


@dataclass(frozen=True)
class RunRecord:
    id: str
    pipeline: str
    spec: str
    profile: str
    params: dict[str, object]
    started: datetime
    ended: datetime | None
    status: str
    steps: int  # steps that ran (each counted once)
    retries: int  # attempts beyond each step's first
    rows: int  # rows written or checked by its steps' last attempts
    stage: str | None = None  # where the run built its tables (runtime/run/executor.py)
    resumes: str | None = None  # the run it resumed
    loaded: int = 0  # rows its load steps read in (what `flowc runs` shows: not the checks')
    written: int = 0  # rows its sinks wrote


@dataclass(frozen=True)
class StepRecord:
    run_id: str
    step_id: str
    node: str
    kind: str
    attempt: int
    status: str
    started: datetime
    ended: datetime | None
    rows: int | None
    fingerprint: str | None
    error: str | None

    @property
    def seconds(self) -> float | None:
        return (self.ended - self.started).total_seconds() if self.ended else None


@dataclass(frozen=True)
class PublishedStep:
    run_id: str
    fingerprint: str | None
    inputs: str | None
    params: dict[str, object]


@dataclass(frozen=True)
class RunDetail:
    run: RunRecord
    steps: tuple[StepRecord, ...]


class StateStore:
    """The store of one project; safe to share between the threads of one run.

    >>> store = StateStore.open_path(Path(":memory:"))
    >>> run = store.start_run("p", "specs/p.flow", "dev", {"day": "2020-10-01"})
    >>> store.finish_run(run, "succeeded")
    >>> store.show_run(run).run.status
    'succeeded'
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        secret_values: Collection[str] = (),
        path: Path = Path(":memory:"),
    ):
        self._db = connection
        self._path = path
        self._lock = threading.Lock()
        self._secrets = sorted((s for s in secret_values if s), key=len, reverse=True)
        self.recovered: str | None = None  # what `open(recover=True)` did with a broken store

    @classmethod
    def open(
        cls, root: Path, secret_values: Collection[str] = (), *, recover: bool = False
    ) -> StateStore:
        """The store of the project at `root` (`.flowc/state.db`, created if missing); see
        `open_path` for `recover`."""
        return cls.open_path(root / STATE_PATH, secret_values, recover=recover)

    @classmethod
    def open_path(
        cls, path: Path, secret_values: Collection[str] = (), *, recover: bool = False
    ) -> StateStore:
        """The store at `path`. One that cannot be read (not a database, damaged, tables
        that are not flowc's) is a `StepError` saying what to do, unless `recover`: then it
        is moved aside (never deleted) and an empty one started, and `recovered` says so. A
        store of a newer flowc is an error either way (it is not damaged)."""
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            store = cls(_connect(path), secret_values, path)
        except _Unreadable as problem:
            if not recover:
                raise StepError(_unreadable_text(path, problem.cause)) from None
            db, moved = _recovered(path)
            store = cls(db, secret_values, path)
            if moved is not None:
                store.recovered = _recovered_text(path, moved, problem.cause)
        return store

    def close(self) -> None:
        self._db.close()

    # --- writing ----------------------------------------------------------------------------

    @staticmethod
    def new_run_id() -> str:
        """A run id, sortable by start time: `20201101-060000-3fa9c1`."""
        return f"{_now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"

    def start_run(
        self,
        pipeline: str,
        spec: str,
        profile: str,
        params: Mapping[str, object],
        *,
        run_id: str | None = None,
        stage: str | None = None,
        resumes: str | None = None,
    ) -> str:
        """Record a new run as `running` (building in `stage`, resuming run `resumes`)."""
        run_id = run_id or self.new_run_id()
        if str(self._path) != ":memory:":
            resources.reserve(self._path.parent)
        self._end_dead_runs()
        params_text = self._params(params)
        values = (run_id, pipeline, spec, profile, params_text, _iso(_now()), stage, resumes)
        self._write(
            "INSERT INTO runs (id, pipeline, spec, profile, params, started, status, stage, "
            "resumes, pid, host) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
            (*values, os.getpid(), socket.gethostname()),
        )
        return run_id

    def _end_dead_runs(self) -> None:
        """Mark `interrupted` the runs still `running` whose process (on this machine) is
        gone: killed, or the machine restarted under it."""
        rows = self._read(
            "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?",
            (socket.gethostname(),),
        )
        for row in rows:
            if row["pid"] is not None and not _alive(int(row["pid"])):
                self._write(
                    "UPDATE runs SET status = 'interrupted' WHERE id = ? AND status = 'running'",
                    (row["id"],),
                )

    def running_run_of(self, pid: int) -> str | None:
        """The run going on in process `pid` of this machine, if it is one of this project's."""
        found = self._read(
            "SELECT id FROM runs WHERE status = 'running' AND pid = ? AND host = ? "
            "ORDER BY started DESC LIMIT 1",
            (pid, socket.gethostname()),
        )
        return str(found[0]["id"]) if found else None

    def finish_run(self, run_id: str, status: RunStatus) -> None:
        self._write(
            "UPDATE runs SET ended = ?, status = ? WHERE id = ?", (_iso(_now()), status, run_id)
        )

    def start_step(
        self,
        run_id: str,
        step_id: str,
        *,
        node: str,
        kind: str,
        attempt: int = 1,
        fingerprint: str | None = None,
        inputs: str | None = None,
    ) -> None:
        """`inputs`: what the step read from outside the pipeline (a digest of its source
        files), for `--skip-unchanged`."""
        self._write(
            "INSERT INTO steps (run_id, step_id, node, kind, attempt, status, started, "
            "fingerprint, inputs) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)",
            (run_id, step_id, node, kind, attempt, _iso(_now()), fingerprint, inputs),
        )

    def finish_step(
        self,
        run_id: str,
        step_id: str,
        status: StepStatus,
        *,
        attempt: int = 1,
        rows: int | None = None,
        error: str | None = None,
    ) -> None:
        self._write(
            "UPDATE steps SET status = ?, ended = ?, rows = ?, error = ? "
            "WHERE run_id = ? AND step_id = ? AND attempt = ?",
            (status, _iso(_now()), rows, self.redact(error), run_id, step_id, attempt),
        )

    def set_last_slot(self, pipeline: str, profile: str, slot: datetime) -> None:
        """Remember the last scheduled slot the scheduler dealt with (runtime/scheduler.py)."""
        self._write(
            "INSERT INTO schedules (pipeline, profile, last_slot) VALUES (?, ?, ?) "
            "ON CONFLICT (pipeline, profile) DO UPDATE SET last_slot = excluded.last_slot",
            (pipeline, profile, _iso(slot)),
        )

    def last_slot(self, pipeline: str, profile: str) -> datetime | None:
        found = self._read(
            "SELECT last_slot FROM schedules WHERE pipeline = ? AND profile = ?",
            (pipeline, profile),
        )
        return _time(found[0][0]) if found else None

    def redact(self, text: str | None) -> str | None:
        """`text` with every secret value masked."""
        if text is None:
            return None
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return mask_secrets(text, ())  # and the password of any URL in it

    # --- reading ----------------------------------------------------------------------------

    def list_runs(self, *, spec: str | None = None, limit: int = 20) -> list[RunRecord]:
        """The latest runs, newest first; only those of `spec` when given."""
        self._end_dead_runs()
        where, args = ("WHERE spec = ?", (spec,)) if spec else ("", ())
        rows = self._read(
            f"{_RUNS} {where} ORDER BY started DESC, rowid DESC LIMIT ?", (*args, limit)
        )
        return [_run(row) for row in rows]

    def show_run(self, run_id: str) -> RunDetail | None:
        """One run and its steps (every attempt, in start order); a unique id prefix will do."""
        runs = self._read(f"{_RUNS} WHERE id LIKE ? ORDER BY id LIMIT 2", (f"{run_id}%",))
        if len(runs) != 1:
            return None
        run = _run(runs[0])
        steps = self._read(
            "SELECT * FROM steps WHERE run_id = ? ORDER BY started, step_id, attempt", (run.id,)
        )
        return RunDetail(run, tuple(_step(row) for row in steps))

    def run_ids(self, prefix: str, *, limit: int = 10) -> list[str]:
        """The ids that start with `prefix` (`last`: the latest run's), for `flowc show`."""
        if prefix == "last":
            rows = self._read("SELECT id FROM runs ORDER BY started DESC, rowid DESC LIMIT 1", ())
        else:
            query = "SELECT id FROM runs WHERE id LIKE ? ORDER BY id LIMIT ?"
            rows = self._read(query, (f"{prefix}%", limit))
        return [str(row["id"]) for row in rows]

    def latest_run(self, pipeline: str, profile: str) -> RunRecord | None:
        """The last run started of `pipeline` with `profile`."""
        rows = self._read(
            f"{_RUNS} WHERE pipeline = ? AND profile = ? ORDER BY started DESC, rowid DESC LIMIT 1",
            (pipeline, profile),
        )
        return _run(rows[0]) if rows else None

    def staged_steps(self, stage: str) -> dict[str, str | None]:
        """Step id → fingerprint of the steps whose work stands in `stage` (done by the runs
        that built there: a run and the runs that resumed it), for `--resume`."""
        rows = self._read(
            "SELECT step_id, fingerprint FROM steps JOIN runs ON runs.id = steps.run_id "
            "WHERE runs.stage = ? AND steps.status IN ('succeeded', 'warned', 'reused') "
            "ORDER BY steps.started",
            (stage,),
        )
        return {str(row["step_id"]): row["fingerprint"] for row in rows}

    def published_steps(self, pipeline: str, profile: str) -> dict[str, PublishedStep]:
        """Per step, its last success in a run that succeeded (for `--skip-unchanged`)."""
        rows = self._read(
            "SELECT steps.step_id, steps.fingerprint, steps.inputs, runs.params, runs.id "
            "FROM steps JOIN runs ON runs.id = steps.run_id WHERE runs.pipeline = ? AND "
            "runs.profile = ? AND runs.status = 'succeeded' AND steps.status IN "
            "('succeeded', 'warned', 'reused', 'unchanged') ORDER BY runs.started, steps.rowid",
            (pipeline, profile),
        )
        return {
            str(row["step_id"]): PublishedStep(
                row["id"], row["fingerprint"], row["inputs"], json.loads(row["params"])
            )
            for row in rows  # later runs overwrite earlier ones
        }

    def params_text(self, params: Mapping[str, object]) -> str:
        """Parameters as the store keeps them (JSON, secrets masked), for comparisons."""
        return self._params(params)

    # --- plumbing ---------------------------------------------------------------------------

    def _params(self, params: Mapping[str, object]) -> str:
        text = json.dumps(dict(params), sort_keys=True, default=str)
        return self.redact(text) or "{}"

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        try:
            with self._lock, self._damage(), self._transaction():
                self._db.execute(sql, args)
        except sqlite3.OperationalError as error:
            if not resources.disk_full(error):
                raise
            # a full disk: the reserve made at the run's start gives the room to record it
            if not resources.release(self._path.parent):
                where = f"the run history {self._path}"
                raise StepError(resources.disk_full_text(where, error)) from None
            self._write(sql, args)

    def _read(self, sql: str, args: tuple[object, ...]) -> list[sqlite3.Row]:
        with self._lock, self._damage():
            cursor = self._db.execute(sql, args)
            cursor.row_factory = sqlite3.Row
            return list(cursor.fetchall())

    @contextmanager
    def _damage(self) -> Iterator[None]:
        """Damage found past the checks at open (deep in a large store) is a `StepError`
        saying what to do, and is noted next to the store, so that the next run moves it
        aside instead of meeting it again."""
        try:
            yield
        except sqlite3.DatabaseError as error:
            if not _damaged(error) or str(self._path) == ":memory:":
                raise
            _marker(self._path).write_text(f"{error}\n")
            raise StepError(_unreadable_text(self._path, str(error))) from None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def _add_columns(db: sqlite3.Connection) -> None:
    """Bring a store written by an older flowc up to date (new columns are nullable)."""
    added = (
        ("runs", "stage", "TEXT"),
        ("runs", "resumes", "TEXT"),
        ("runs", "pid", "INTEGER"),
        ("runs", "host", "TEXT"),
        ("steps", "inputs", "TEXT"),
    )
    for table, column, kind in added:
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


# --- opening, and a store that cannot be read --------------------------------------------------


class _Unreadable(Exception):
    """The store's file is not a readable flowc history (`cause` says why)."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


_EXPECTED = {
    "runs": {"id", "pipeline", "spec", "profile", "params", "started", "ended", "status"},
    "steps": {"run_id", "step_id", "node", "kind", "attempt", "status", "started", "error"},
    "schedules": {"pipeline", "profile", "last_slot"},
}


def _connect(path: Path) -> sqlite3.Connection:
    """The store's connection, its schema brought up to date; `_Unreadable` when the file
    is no readable history, a `StepError` when it cannot be opened for another reason (a
    lock, permissions, a newer flowc's store)."""
    if path.is_dir():
        raise StepError(f"the run history {path} is a folder; move it away (flowc makes a file)")
    marker = _marker(path)
    if marker.exists():  # damage a run met (see `StateStore._damage`)
        raise _Unreadable(marker.read_text().strip() or "damaged")
    db = None
    try:
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StepError(_newer_text(path, version))
        _check_tables(db)
        db.executescript(_SCHEMA)
        _add_columns(db)
        _probe(db, path)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException as error:
        if db is not None:
            db.close()
        if isinstance(error, sqlite3.DatabaseError) and _damaged(error):
            raise _Unreadable(str(error)) from None
        if isinstance(error, sqlite3.Error):
            raise StepError(f"cannot open the run history {path}: {error}") from None
        raise
    return db


def _damaged(error: sqlite3.DatabaseError) -> bool:
    """A file that is not (or no more) a database, as opposed to one that is busy, locked,
    read-only or on a full disk (those are `OperationalError`s, and pass)."""
    if not isinstance(error, sqlite3.OperationalError):
        return True  # "file is not a database", "database disk image is malformed"
    text = str(error)
    return "malformed" in text or "no such column" in text or "not flowc's" in text


_CHECKED_BYTES = 8 << 20  # a store up to this size is checked whole at open (~4 ms per MB)


def _probe(db: sqlite3.Connection, path: Path) -> None:
    """Damage that opening does not see: a small store is checked whole (`quick_check`); a
    larger one where a truncated file breaks first, the last pages of each table and index."""
    size = path.stat().st_size if str(path) != ":memory:" and path.exists() else 0
    if size <= _CHECKED_BYTES:
        found = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if found != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed: {found}")
        return
    for table in _EXPECTED:
        db.execute(f"SELECT * FROM {table} ORDER BY rowid DESC LIMIT 1").fetchall()
    db.execute("SELECT started FROM runs ORDER BY started DESC LIMIT 1").fetchall()


def _marker(path: Path) -> Path:
    return path.with_name(f"{path.name}.damaged")


def _check_tables(db: sqlite3.Connection) -> None:
    """The tables there are flowc's (those not there yet are made)."""
    for table, columns in _EXPECTED.items():
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        missing = sorted(columns - have)
        if have and missing:
            raise sqlite3.OperationalError(
                f"its table `{table}` is not flowc's (no column {', '.join(missing)})"
            )


def _recovered(path: Path) -> tuple[sqlite3.Connection, Path | None]:
    """Move the unreadable store at `path` aside and open a new, empty one; under a lock,
    so that of two runs starting at once one moves it and the other uses the new store."""
    with (
        path.with_name(f"{path.name}.lock").open("a") as lock,
        contextlib.ExitStack() as unlock,
    ):
        fcntl.flock(lock, fcntl.LOCK_EX)
        unlock.callback(fcntl.flock, lock, fcntl.LOCK_UN)
        try:
            return _connect(path), None  # another process has just done it
        except _Unreadable:
            pass
        aside = _aside(path)
        for suffix in ("", "-wal", "-shm", ".damaged"):
            kept = Path(f"{path}{suffix}")
            if kept.exists():
                kept.rename(Path(f"{aside}{suffix}"))
        return _connect(path), aside


def _aside(path: Path) -> Path:
    stamp = f"{_now():%Y%m%d-%H%M%S}"
    aside = path.with_name(f"{path.name}.unreadable-{stamp}")
    number = 1
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.unreadable-{stamp}-{number}")
    return aside


_LOST = (
    "flowc no longer sees the runs recorded there: `flowc runs` and `flowc show` do not list "
    "them, `--resume` cannot finish them, `--skip-unchanged` has no earlier success to "
    "compare with (every step runs once), and `flowc schedule` waits for the next slot"
)


def _unreadable_text(path: Path, cause: str) -> str:
    return (
        f"the run history {path} cannot be read ({cause}). The next `flowc run` moves it "
        f"aside (to {path.name}.unreadable-<time>, next to it) and starts an empty one; "
        f"{_LOST}. To try to rescue its rows first: `sqlite3 {path} .recover`"
    )


def _recovered_text(path: Path, aside: Path, cause: str) -> str:
    return (
        f"the run history {path} could not be read ({cause}): it was moved aside to "
        f"{aside} and an empty history started; {_LOST}. The old file is kept: "
        f"`sqlite3 {aside} .recover` may get its rows back"
    )


def _newer_text(path: Path, version: int) -> str:
    return (
        f"the run history {path} was written by a newer flowc (its schema version is "
        f"{version}; this flowc knows up to {SCHEMA_VERSION}): run the newer flowc, or move "
        f"the file aside (`mv {path} {path}.newer`) to start an empty history here; {_LOST}"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# A run with what its steps did: how many ran, the attempts beyond their first, their rows.
_RUNS = (
    "SELECT runs.*, "
    "(SELECT count(DISTINCT step_id) FROM steps WHERE run_id = runs.id "
    " AND status NOT IN ('skipped', 'reused', 'unchanged')) AS step_count, "
    "(SELECT count(*) - count(DISTINCT step_id) FROM steps WHERE run_id = runs.id) "
    " AS retry_count, "
    "(SELECT coalesce(sum(rows), 0) FROM steps WHERE run_id = runs.id "
    " AND status IN ('succeeded', 'warned')) AS row_count, "
    "(SELECT coalesce(sum(rows), 0) FROM steps WHERE run_id = runs.id AND kind = 'load' "
    " AND status IN ('succeeded', 'warned')) AS loaded_count, "
    "(SELECT coalesce(sum(rows), 0) FROM steps WHERE run_id = runs.id AND kind = 'export' "
    " AND status IN ('succeeded', 'warned')) AS written_count "
    "FROM runs"
)


def _run(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        pipeline=row["pipeline"],
        spec=row["spec"],
        profile=row["profile"],
        params=json.loads(row["params"]),
        started=datetime.fromisoformat(row["started"]),
        ended=_time(row["ended"]),
        status=row["status"],
        steps=row["step_count"],
        retries=row["retry_count"],
        rows=row["row_count"],
        loaded=row["loaded_count"],
        written=row["written_count"],
        stage=row["stage"],
        resumes=row["resumes"],
    )


def _step(row: sqlite3.Row) -> StepRecord:
    return StepRecord(
        run_id=row["run_id"],
        step_id=row["step_id"],
        node=row["node"],
        kind=row["kind"],
        attempt=row["attempt"],
        status=row["status"],
        started=datetime.fromisoformat(row["started"]),
        ended=_time(row["ended"]),
        rows=row["rows"],
        fingerprint=row["fingerprint"],
        error=row["error"],
    )
