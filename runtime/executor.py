"""The plan executor: carries out a `Plan`'s steps, in the plan's order, on the profile's
connections, and records the run in the state store.

Order. The plan lists its steps so that each comes after its `inputs`; the executor runs them
one at a time in that order. A step whose inputs did not all succeed does not run.

Atomicity: all or nothing, per run. A run that fails at any step leaves every table and file
it would have written exactly as it was:

- every DuckDB connection the run uses holds ONE transaction for the whole run (DuckDB's DDL
  is transactional): loads, SQL transforms, transfers, checks and table sinks all run inside
  it and see each other's uncommitted tables, while other readers keep seeing the old ones;
- file sinks (`parquet`, `csv`) are written completely under hidden names next to their
  targets (`sinks.stage_*`), from inside the transaction, and left there;
- only when every step, checks included, has succeeded are the transactions committed, and
  then the staged files moved into place (renames). On any failure (or Ctrl-C) the
  transactions are rolled back and the staged files deleted.

What this does not cover: with several DuckDB files, a commit failing after another file's
commit succeeded (commits of finished transactions do not fail in practice), and a crash
between the commits and the file renames (the staged files are left under their hidden
`.name.flowc-tmp-*` names). A parquet folder's rename itself is two renames (sinks.py).

Consequences of the run-long transaction: a read inside the run happens on the writing
connection, so a transfer into Python materializes its rows (an Arrow table) before the
Python block runs.

Timeouts. A step with a `timeout_s` that runs longer is stopped: its engines' running
statements are cancelled (`Interruptible`), Python code gets an exception (SIGALRM, when the
run is on the main thread), and the step fails as timed out (and the run rolls back).

Retries. A step that fails in a way that may go away on its own (`StepError.retryable`: a
Python block or loader raising a connection or timeout error; on Postgres a serialization
failure, a deadlock, a lock timeout) runs again, up to its `retries`, after `retry_delay_s`
doubling per attempt; each attempt is recorded. Only what can be undone is retried: a step
that used no connection (Python), or only connections with savepoints (`Savepoints`:
Postgres, where a step with retries starts with a SAVEPOINT and a retry rolls back to it).
A failed DuckDB statement aborts the run's transaction, so such a step fails the run. `http`
sources retry their downloads themselves (download.py).

Engines: DuckDB, Postgres (docs/postgres.md: one transaction per run too, and a run lock so
that two runs of one pipeline and profile take turns) and BigQuery. BigQuery has no
transactional DDL: its adapter builds a run's tables in a scratch dataset and copies them into
place at commit, one atomic copy per table (docs/bigquery.md). Engines that run jobs
(BigQuery) label them with the pipeline, run and step.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import math
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from flowc.compiler import config
from flowc.compiler.plan import SINCE, PipelineParam, Plan, Step
from flowc.runtime import csv_copy, sinks, sources
from flowc.runtime.engine import (
    CsvCopying,
    Engine,
    Interruptible,
    Query,
    RunLocking,
    Savepoints,
)
from flowc.runtime.engines import open_engine
from flowc.runtime.errors import StepError, StepTimeout
from flowc.runtime.state import StateStore, StepStatus

SAMPLE_ROWS = 5
DEFAULT_RETRY_DELAY_S = 1.0  # the first back-off when a node sets `retries` but no delay
_CSV_OPTIONS = frozenset({"header", "delimiter"})


# --- parameters -----------------------------------------------------------------------------


def parse_param(text: str, type_name: str) -> object:
    """A parameter's value from its text, by its declared type; `ValueError` when it does not
    fit.

    >>> parse_param("2020-11-01", "date")
    datetime.date(2020, 11, 1)
    >>> parse_param("7", "int")
    7
    """
    base = type_name.split("(")[0].strip().lower()
    if base in ("int", "integer", "smallint", "bigint"):
        return int(text)
    if base in ("float", "real", "double"):
        return float(text)
    if base in ("decimal", "numeric"):
        try:
            return decimal.Decimal(text)
        except decimal.InvalidOperation:
            raise ValueError(f"{text!r} is not a number") from None
    if base in ("boolean", "bool"):
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"{text!r} is not true or false")
        return lowered == "true"
    if base == "date":
        return dt.date.fromisoformat(text)
    if base in ("timestamp", "timestamptz"):
        return dt.datetime.fromisoformat(text)
    if base == "time":
        return dt.time.fromisoformat(text)
    return text


def bind_params(declared: list[PipelineParam], given: Mapping[str, str]) -> dict[str, object]:
    """The run's parameter values: `given` (text, parsed by type) over the defaults. A name
    that is not declared, or a value that does not fit, raises `ValueError`."""
    types = {p.name: p.type for p in declared}
    unknown = sorted(set(given) - set(types))
    if unknown:
        known = ", ".join(sorted(types)) or "none"
        raise ValueError(f"unknown parameter `{unknown[0]}` (declared: {known})")
    values: dict[str, object] = {}
    for param in declared:
        if param.name in given:
            text = given[param.name]
            try:
                values[param.name] = parse_param(text, param.type)
            except ValueError as error:
                raise ValueError(
                    f"--param {param.name}={text}: not a valid {param.type} ({error})"
                ) from None
        elif isinstance(param.default, str):
            values[param.name] = parse_param(param.default, param.type)
        else:
            values[param.name] = param.default
    return values


# --- selection ------------------------------------------------------------------------------


def select_steps(plan: Plan, patterns: list[str]) -> set[str]:
    """The ids of the steps `--select` patterns pick: `NODE` (its steps, checks included),
    `NODE+` (and everything downstream), `+NODE` (and everything upstream), `+NODE+`. A
    transfer that feeds a picked step from a connection is picked too (it copies the existing
    table). Steps left out count as done: their tables are read as they are. An unknown node
    raises `ValueError`.

    >>> select_steps(Plan.model_validate_json(_EMPTY_PLAN), [])
    set()
    """
    upstream: dict[str, set[str]] = {name: set() for name in plan.nodes}
    ids = {step.id: step for step in plan.steps}
    for step in plan.steps:
        for input_id in step.inputs:
            source = ids[input_id].node
            if source != step.node:
                upstream.setdefault(step.node, set()).add(source)
    downstream: dict[str, set[str]] = {name: set() for name in upstream}
    for node, feeders in upstream.items():
        for feeder_node in feeders:
            downstream.setdefault(feeder_node, set()).add(node)
    nodes: set[str] = set()
    for pattern in patterns:
        name = pattern.strip("+")
        if name not in plan.nodes:
            known = ", ".join(sorted(plan.nodes))
            raise ValueError(f"--select {pattern}: no node `{name}` (nodes: {known})")
        nodes.add(name)
        if pattern.endswith("+"):
            nodes |= _reach(name, downstream)
        if pattern.startswith("+"):
            nodes |= _reach(name, upstream)
    chosen = {step.id for step in plan.steps if step.node in nodes}
    for step in plan.steps:
        feeds = any(input_id not in chosen for input_id in step.inputs)
        if step.id in chosen and feeds:
            for input_id in step.inputs:
                feeder = ids[input_id]
                if feeder.transfer is not None and feeder.transfer.from_connection is not None:
                    chosen.add(input_id)
    consumers: dict[str, set[str]] = {}
    for step in plan.steps:
        for input_id in step.inputs:
            consumers.setdefault(input_id, set()).add(step.id)
    return {  # a transfer into Python that no picked step reads is left out
        step_id
        for step_id in chosen
        if not _into_python(ids[step_id]) or consumers.get(step_id, set()) & chosen
    }


def _into_python(step: Step) -> bool:
    return step.transfer is not None and step.transfer.to_connection is None


def _reach(start: str, edges: Mapping[str, set[str]]) -> set[str]:
    found: set[str] = set()
    todo = [start]
    while todo:
        for name in edges.get(todo.pop(), set()):
            if name not in found:
                found.add(name)
                todo.append(name)
    return found


_EMPTY_PLAN = (
    '{"connections": [], "nodes": {}, "params": [], "pipeline": {"dialect": "duckdb", '
    '"name": "p", "spec": "p.flow"}, "plan_version": 1, "profile": "dev", "project": "p", '
    '"steps": []}'
)


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepEvent:
    """A step starting (`running`) or ending (any other status)."""

    step: str
    node: str
    kind: str
    # running, waiting (for another run; message: for what), retrying (message: why),
    # succeeded, warned, failed, skipped
    status: str
    rows: int | None = None
    seconds: float | None = None
    message: str | None = None


@dataclass
class RunResult:
    run_id: str
    status: str  # succeeded, failed, interrupted
    failed_step: str | None = None
    error: str | None = None
    events: list[StepEvent] = field(default_factory=list)


Listener = Callable[[StepEvent], None]


# --- the executor ---------------------------------------------------------------------------


class Executor:
    """Runs one plan once. `root` is the project root (paths in the plan and the profile are
    relative to it)."""

    def __init__(
        self,
        plan: Plan,
        profile: config.Profile,
        root: Path,
        *,
        params: Mapping[str, object],
        store: StateStore,
        listener: Listener | None = None,
        only: set[str] | None = None,
        full_refresh: bool = False,
    ) -> None:
        self.plan = plan
        self.only = only
        self.full_refresh = full_refresh
        self.profile = profile
        self.root = root
        self.params = dict(params)
        self.store = store
        self.listener = listener
        self._engines: dict[str, Engine] = {}
        self._held: dict[str, pa.Table | pa.RecordBatchReader] = {}  # Python-side rows
        self._staged: list[sinks.Staged] = []
        self._consumers = _consumers(plan)
        self._labels: dict[str, str] = {"pipeline": plan.pipeline.name}
        self._step_engines: set[str] = set()  # the connections the current step used
        self._undoable: dict[str, Savepoints] = {}  # ... with a savepoint where it started
        self.sleep: Callable[[float], None] = time.sleep
        self._current: Step | None = None  # the step running

    # --- the run

    def run(self) -> RunResult:
        run_id = self.store.start_run(
            self.plan.pipeline.name, self.plan.pipeline.spec, self.plan.profile, self.params
        )
        result = RunResult(run_id, "running")
        done: dict[str, str] = {}
        try:
            for step in self.plan.steps:
                if self.only is not None and step.id not in self.only:
                    done[step.id] = "succeeded"  # not selected: its table is used as it is
                    continue
                if result.failed_step is not None or any(
                    done.get(i) not in ("succeeded", "warned") for i in step.inputs
                ):
                    self._skip(run_id, step, result)
                    done[step.id] = "skipped"
                    continue
                status = self._run_step(run_id, step, result)
                done[step.id] = status
            if result.failed_step is None:
                self._commit()
                result.status = "succeeded"
            else:
                self._rollback()
                result.status = "failed"
        except BaseException as error:  # Ctrl-C, or a bug in flowc: nothing is kept either
            self._rollback()
            interrupted = isinstance(error, KeyboardInterrupt)
            self.store.finish_run(run_id, "interrupted" if interrupted else "failed")
            raise
        finally:
            for engine in self._engines.values():
                engine.close()
        self.store.finish_run(run_id, "succeeded" if result.status == "succeeded" else "failed")
        return result

    def _run_step(self, run_id: str, step: Step, result: RunResult) -> str:
        self._emit(result, StepEvent(step.id, step.node, step.kind, "running"))
        self._labels.update(run=run_id, step=step.id)
        for engine in self._engines.values():
            _label(engine, self._labels)
        self._current = step
        started = time.perf_counter()
        status: StepStatus = "succeeded"
        message: str | None = None
        rows: int | None = None
        try:
            rows, message = self._with_retries(run_id, step, result)
            if message is not None:
                status = "warned"
        except StepError as error:
            status, message = "failed", str(error)
            result.failed_step = step.id
            result.error = self.store.redact(message)
        seconds = time.perf_counter() - started
        shown = self.store.redact(message)
        self._emit(result, StepEvent(step.id, step.node, step.kind, status, rows, seconds, shown))
        return status

    def _with_retries(
        self, run_id: str, step: Step, result: RunResult
    ) -> tuple[int | None, str | None]:
        """Run `step`, again (up to its `retries`, the delay doubling from `retry_delay`) while
        it fails in a way worth retrying and nothing it did is left to undo."""
        if not step.retries:
            return self._attempt(run_id, step, 1)
        from tenacity import (  # only steps with retries pay for the import
            RetryCallState,
            Retrying,
            retry_if_exception,
            stop_after_attempt,
            wait_exponential,
        )

        def worth_retrying(error: BaseException) -> bool:
            # a step is retried when what it did can be undone: nothing on a connection, or
            # only on connections with savepoints (a failed DuckDB statement aborts the run)
            undoable = self._step_engines <= self._undoable.keys()
            return isinstance(error, StepError) and error.retryable and undoable

        def announce(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            delay = state.upcoming_sleep
            text = (
                f"attempt {state.attempt_number} of {step.retries + 1} failed; retrying in "
                f"{delay:g}s: {getattr(error, 'message', error)}"
            )
            shown = self.store.redact(text)
            self._emit(result, StepEvent(step.id, step.node, step.kind, "retrying", message=shown))
            self._undo_step()

        retrying = Retrying(
            stop=stop_after_attempt(step.retries + 1),
            wait=wait_exponential(multiplier=step.retry_delay_s or DEFAULT_RETRY_DELAY_S),
            retry=retry_if_exception(worth_retrying),
            before_sleep=announce,
            sleep=self.sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._attempt(run_id, step, attempt.retry_state.attempt_number)
        raise AssertionError("tenacity ends with a result or the last exception")

    def _attempt(self, run_id: str, step: Step, attempt: int) -> tuple[int | None, str | None]:
        """One attempt at `step`, recorded in the state store as it starts and ends."""
        self.store.start_step(
            run_id,
            step.id,
            node=step.node,
            kind=step.kind,
            attempt=attempt,
            fingerprint=step.fingerprint,
        )
        self._step_engines.clear()
        self._undoable.clear()
        try:
            rows, message = self._within_timeout(step)
        except StepError as error:
            if error.node is None:
                error = StepError(
                    error.message,
                    node=step.node,
                    user_traceback=error.user_traceback,
                    retryable=error.retryable,
                )
            self.store.finish_step(run_id, step.id, "failed", attempt=attempt, error=str(error))
            raise error from None
        except BaseException as error:
            failure = type(error).__name__
            self.store.finish_step(run_id, step.id, "failed", attempt=attempt, error=failure)
            raise
        self._release_step()
        status: StepStatus = "succeeded" if message is None else "warned"
        self.store.finish_step(run_id, step.id, status, attempt=attempt, rows=rows, error=message)
        return rows, message

    def _within_timeout(self, step: Step) -> tuple[int | None, str | None]:
        """`_dispatch(step)`, stopped when it runs past the step's `timeout_s`."""
        if not step.timeout_s:
            return self._dispatch(step)
        deadline = _Deadline(step.timeout_s, self._interrupt_step)
        try:
            with deadline:
                return self._dispatch(step)
        except (Exception, _TimedOut) as error:  # whatever the cancelled code raised
            if not deadline.fired:
                raise
            raise StepTimeout(
                f"timed out after {step.timeout_s:g}s (its `timeout`)", retryable=True
            ) from error

    def _interrupt_step(self) -> None:
        """Cancel what the running step does on its connections (from the timer's thread)."""
        for name in list(self._step_engines):
            engine = self._engines.get(name)
            if isinstance(engine, Interruptible):
                engine.interrupt()

    def _skip(self, run_id: str, step: Step, result: RunResult) -> None:
        self.store.start_step(
            run_id, step.id, node=step.node, kind=step.kind, fingerprint=step.fingerprint
        )
        self.store.finish_step(run_id, step.id, "skipped")
        self._emit(result, StepEvent(step.id, step.node, step.kind, "skipped"))

    def _waiting(self, message: str) -> None:
        """A step waits (for another run's lock): said as a `waiting` event of that step."""
        step = self._current
        if step is not None and self.listener is not None:
            self.listener(StepEvent(step.id, step.node, step.kind, "waiting", message=message))

    def _emit(self, result: RunResult, event: StepEvent) -> None:
        result.events.append(event)
        if self.listener is not None:
            self.listener(event)

    def _commit(self) -> None:
        for engine in self._engines.values():
            engine.commit()
        for staged in self._staged:
            staged.commit()
        self._staged.clear()

    def _rollback(self) -> None:
        for engine in self._engines.values():
            if engine.in_transaction:
                with contextlib.suppress(StepError):  # the first failure is the one to report
                    engine.rollback()
        for staged in self._staged:
            staged.discard()
        self._staged.clear()

    # --- connections

    def engine(self, name: str | None) -> Engine:
        if name is None:
            raise StepError("the step names no connection")
        if name in self._engines:
            return self._used(name, self._engines[name])
        connection = self.profile.connections.get(name)
        if connection is None:
            raise StepError(f"profile `{self.profile.name}` has no connection `{name}`")
        engine = open_engine(connection, self.root)
        try:
            _label(engine, self._labels)
            engine.begin()
            if isinstance(engine, RunLocking):  # concurrent runs of this pipeline wait here
                plan = self.plan
                key = f"`{plan.pipeline.name}` of `{plan.project}` (profile `{plan.profile}`)"
                engine.lock_run(key, self._waiting)
        except StepError:
            engine.close()
            raise
        self._engines[name] = engine
        return self._used(name, engine)

    def _used(self, name: str, engine: Engine) -> Engine:
        """Note that the running step uses `engine`; for a step that may be retried, mark
        where it starts on engines that can go back there (savepoints)."""
        if name not in self._step_engines:
            self._step_engines.add(name)
            if (
                self._current is not None
                and self._current.retries
                and isinstance(engine, Savepoints)
            ):
                engine.savepoint()
                self._undoable[name] = engine
        return engine

    def _undo_step(self) -> None:
        """Before a retry: take back what the failed attempt did on its connections."""
        for engine in self._undoable.values():
            engine.rollback_to_savepoint()

    def _release_step(self) -> None:
        for engine in self._undoable.values():
            engine.release_savepoint()

    # --- the kinds of step

    def _dispatch(self, step: Step) -> tuple[int | None, str | None]:
        """Run `step`: (rows, a warning or None)."""
        handler: dict[str, Callable[[Step], tuple[int | None, str | None]]] = {
            "load": self._load,
            "sql": self._sql,
            "python": self._python,
            "check": self._check,
            "transfer": self._transfer,
            "export": self._export,
        }
        return handler[step.kind](step)

    def _statements(self, engine: Engine, step: Step) -> None:
        for statement in step.sql or []:
            engine.execute(statement, self.params)

    def _load(self, step: Step) -> tuple[int | None, str | None]:
        source = step.source
        if source is None or not step.outputs or step.outputs[0].name is None:
            raise StepError(f"load step `{step.id}` has no source or output table")
        engine = self.engine(step.connection)
        reader = self._read_source(step)
        table = step.outputs[0].name
        if step.sql:  # the table with its declared columns, then the rows by name
            self._statements(engine, step)
            if isinstance(engine, CsvCopying):  # the engine parses the CSV itself
                copied = csv_copy.load(engine, self.root, step)
                if copied is not None:
                    return copied, None
            return engine.append(table, reader), None
        rows = engine.replace_atomically(
            table, lambda staging: engine.create_table(staging, reader)
        )
        return rows, None

    def _read_source(self, step: Step) -> pa.RecordBatchReader:
        source = step.source
        assert source is not None
        if source.path is None:
            raise StepError(f"the `{source.kind}` source names no path")
        options: dict[str, Any] = dict(source.options)
        if source.kind == "table":
            raise StepError("a `table(...)` source is read where it is; it needs no load")
        file_format = source.format or source.kind
        if file_format != "csv" and options:
            raise StepError(f"options {sorted(options)} apply to csv sources only")
        unknown = sorted(set(options) - _CSV_OPTIONS)
        if unknown:
            raise StepError(f"unknown csv option(s) {', '.join(unknown)}")
        if source.kind == "http":
            from flowc.runtime import download  # urllib and tenacity: only http sources pay

            return download.read_http(source.path, file_format, columns=source.columns, **options)
        return sources.read_file(
            self.root, source.path, file_format, columns=source.columns, **options
        )

    def _sql(self, step: Step) -> tuple[int | None, str | None]:
        engine = self.engine(step.connection)
        output = step.outputs[0].name if step.outputs else None
        later = step.incremental is not None and not self.full_refresh
        exists = bool(later and output and engine.table_exists(output))
        if exists and output and self._add_new_rows(engine, step, output):
            return _count(engine, output), None
        self._statements(engine, step)
        if output is None or step.materialization == "view":
            return None, None
        return _count(engine, output), None

    def _add_new_rows(self, engine: Engine, step: Step, table: str) -> bool:
        """An incremental table's later run: the rows from the watermark (less the lookback)
        on replace the rows they supersede. False when the table is empty (built whole)."""
        incremental = step.incremental
        assert incremental is not None
        params = dict(self.params)
        if incremental.watermark is not None:
            found = engine.read_batches(Query(incremental.watermark)).read_all().to_pylist()
            newest = found[0]["watermark"] if found else None
            if newest is None:
                return False
            params[SINCE] = _less(newest, incremental.lookback_s)
        if incremental.duplicates is not None:
            repeated = engine.read_batches(Query(incremental.duplicates, params)).read_all()
            if repeated.num_rows:
                key = _row_text(repeated.to_pylist()[0])
                raise StepError(
                    f"the new rows repeat a `unique_key` ({key}): which one to keep is "
                    "ambiguous; make the key unique in the query"
                )
        for statement in incremental.update:
            engine.execute(statement, params)
        return True

    def _python(self, step: Step) -> tuple[int | None, str | None]:
        python = step.python
        if python is None:
            raise StepError(f"python step `{step.id}` names no function")
        entry = f"{python.path}:{python.function}"
        columns = step.outputs[0].columns if step.outputs else None
        node_info = self.plan.nodes.get(step.node)
        if node_info is not None and node_info.kind == "source":
            reader = sources.read_python(
                self.root, entry, columns=columns, params=self.params, node=step.node
            )
        else:
            from flowc.runtime import pyblocks  # imports pandas: only Python steps pay for it

            keep = step.retries > 0  # another attempt reads the same rows again
            inputs = {self.plan.step(i).node: self._take(i, keep=keep) for i in step.inputs}
            reader = pyblocks.run_transform(
                self.root, entry, inputs, columns=columns, node=step.node
            )
        self._hold(step.id, reader)
        return None, None

    def _check(self, step: Step) -> tuple[int | None, str | None]:
        check = step.check
        if check is None or not step.sql:
            raise StepError(f"check step `{step.id}` has no query")
        engine = self.engine(step.connection)
        for statement in step.sql[:-1]:
            engine.execute(statement, self.params)
        found = engine.read_batches(Query(step.sql[-1], self.params)).read_all()
        if found.num_rows == 0:
            return 0, None
        rows = found.to_pylist()
        failures = int(rows[0].get("_failures") or len(rows))
        samples = [{k: v for k, v in row.items() if k != "_failures"} for row in rows]
        shown = "\n".join(f"    {_row_text(row)}" for row in samples[:SAMPLE_ROWS])
        what = "row" if failures == 1 else "rows"
        message = f"expect {check.description} failed: {failures} {what}"
        if any(samples[0]):
            message += f"; sample:\n{shown}"
        if check.on_fail == "warn":
            return failures, message
        raise StepError(message, node=step.node)

    def _transfer(self, step: Step) -> tuple[int | None, str | None]:
        transfer = step.transfer
        if transfer is None:
            raise StepError(f"transfer step `{step.id}` has no details")
        if transfer.from_connection is not None and transfer.from_connection == (
            transfer.to_connection
        ):  # a copy on one connection: done by a query there
            if not step.sql or transfer.table is None:
                raise StepError(f"transfer step `{step.id}` has no query or table")
            engine = self.engine(transfer.to_connection)
            query = Query(step.sql[-1], self.params)
            rows = engine.replace_atomically(
                transfer.table, lambda staging: engine.create_table(staging, query)
            )
            return rows, None
        reader: pa.RecordBatchReader
        if transfer.from_connection is None:  # out of Python
            held = [i for i in step.inputs if i in self._held]
            if not held:
                raise StepError(f"no Python output reaches transfer `{step.id}`")
            reader = self._take(held[0])
        else:
            if not step.sql:
                raise StepError(f"transfer step `{step.id}` has no query")
            source = self.engine(transfer.from_connection)
            reader = source.read_batches(Query(step.sql[-1], self.params))
        if transfer.to_connection is None:  # into Python: held, materialized (see above)
            table = _spelled(reader.read_all(), step)
            self._hold(step.id, table)
            return table.num_rows, None
        if transfer.table is None:
            raise StepError(f"transfer step `{step.id}` names no table to create")
        target = self.engine(transfer.to_connection)
        name = transfer.table
        rows = target.replace_atomically(name, lambda staging: target.create_table(staging, reader))
        return rows, None

    def _export(self, step: Step) -> tuple[int | None, str | None]:
        sink = step.sink
        if sink is None:
            raise StepError(f"export step `{step.id}` has no sink")
        engine = self.engine(step.connection)
        if sink.kind == "table":
            if not step.sql or sink.table is None:
                raise StepError(f"export `{step.id}` to a table has no SQL")
            had: int | None = None
            if sink.mode == "append":
                had = _count(engine, sink.table) if engine.table_exists(sink.table) else 0
            self._statements(engine, step)
            rows = _count(engine, sink.table)  # append: the rows added; else the table's
            return (rows - had if rows is not None and had is not None else rows), None
        if not step.sql or sink.path is None:
            raise StepError(f"export `{step.id}` to a file has no query or path")
        query = Query(step.sql[-1], self.params)
        if sink.kind == "parquet":
            staged = sinks.stage_parquet_query(
                self.root, sink.path, engine, query, partition_by=sink.partition_by
            )
        else:
            staged = sinks.stage_csv(self.root, sink.path, engine.read_batches(query))
        self._staged.append(staged)
        return staged.rows, None

    # --- rows held in Python

    def _hold(self, step_id: str, data: pa.Table | pa.RecordBatchReader) -> None:
        if isinstance(data, pa.RecordBatchReader) and self._consumers.get(step_id, 0) > 1:
            data = data.read_all()  # read by several steps: kept whole
        self._held[step_id] = data

    def _take(self, step_id: str, *, keep: bool = False) -> pa.RecordBatchReader:
        """The rows a step holds in Python; a stream is read once, unless `keep`."""
        data = self._held.get(step_id)
        if data is None:
            raise StepError(f"the rows of step `{step_id}` are not available")
        if keep:  # held whole until the run ends: each attempt reads the rows again
            if isinstance(data, pa.RecordBatchReader):
                data = self._held[step_id] = data.read_all()
            return pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
        self._consumers[step_id] = self._consumers.get(step_id, 1) - 1
        if isinstance(data, pa.RecordBatchReader) or self._consumers[step_id] <= 0:
            del self._held[step_id]  # a stream is read once; a table until its last reader
        if isinstance(data, pa.Table):
            return pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
        return data


def _label(engine: Engine, labels: Mapping[str, str]) -> None:
    """Name pipeline, run and step on the engine's jobs, where it has jobs (BigQuery)."""
    set_labels = getattr(engine, "set_labels", None)
    if set_labels is not None:
        set_labels(labels)


class _TimedOut(BaseException):
    """Raised in the main thread by SIGALRM when a step's time is up (not an `Exception`, so
    that a user's `except Exception` does not swallow it)."""


class _Deadline:
    """A step's time limit. When it passes, `on_expiry` runs on a timer thread (to cancel a
    statement running in an engine) and, in the main thread, SIGALRM raises `_TimedOut`
    (to stop Python code: a block, a loader, flowc's own streaming)."""

    def __init__(self, seconds: float, on_expiry: Callable[[], None]) -> None:
        self.seconds = seconds
        self.fired = False
        self._on_expiry = on_expiry
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._alarm = threading.current_thread() is threading.main_thread()
        self._previous: Any = None

    def __enter__(self) -> _Deadline:
        if self._alarm:
            self._previous = signal.signal(signal.SIGALRM, self._ring)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        if self._alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)

    def _expire(self) -> None:
        self.fired = True
        self._on_expiry()

    def _ring(self, signum: int, frame: object) -> None:
        self.fired = True
        raise _TimedOut


def _consumers(plan: Plan) -> dict[str, int]:
    found: dict[str, int] = {}
    for step in plan.steps:
        for name in step.inputs:
            found[name] = found.get(name, 0) + 1
    return found


def _spelled(table: pa.Table, step: Step) -> pa.Table:
    """`table` with its columns named as the spec spells them (the transfer's output columns)
    where the engine folded their case (Postgres: `vendorid` is the spec's `VendorID`)."""
    declared = [c.name for c in step.outputs[0].columns or []] if step.outputs else []
    names = table.column_names
    if len(declared) != len(names) or declared == names:
        return table
    if [n.lower() for n in declared] != [n.lower() for n in names]:
        return table
    return table.rename_columns(declared)


def _count(engine: Engine, table: str) -> int | None:
    found = engine.read_batches(Query(f"SELECT count(*) AS n FROM {engine.quote(table)}"))
    rows = found.read_all().to_pylist()
    return int(rows[0]["n"]) if rows else None


def _less(newest: object, lookback_s: float | None) -> object:
    """The watermark less the lookback (a date moves back whole days, rounded up)."""
    if not lookback_s:
        return newest
    if isinstance(newest, dt.datetime):
        return newest - dt.timedelta(seconds=lookback_s)
    if isinstance(newest, dt.date):
        return newest - dt.timedelta(days=math.ceil(lookback_s / 86_400))
    if isinstance(newest, int):  # a sequence number, or epoch seconds
        return newest - math.ceil(lookback_s)
    if isinstance(newest, float):
        return newest - lookback_s
    return newest


def _row_text(row: Mapping[str, object]) -> str:
    """`VendorID=3, fare_amount=8.50, ehail_fee=NULL`"""
    return ", ".join(f"{k}={'NULL' if v is None else v}" for k, v in row.items())


def run_plan(
    plan: Plan,
    profile: config.Profile,
    root: Path,
    *,
    params: Mapping[str, object],
    listener: Listener | None = None,
    only: set[str] | None = None,
    full_refresh: bool = False,
) -> RunResult:
    """Execute `plan` once (only the steps `only` names, when given), recording it in the
    project's `.flowc/state.db`."""
    store = StateStore.open(root, config.secret_values(profile))
    try:
        executor = Executor(
            plan,
            profile,
            root,
            params=params,
            store=store,
            listener=listener,
            only=only,
            full_refresh=full_refresh,
        )
        return executor.run()
    finally:
        store.close()
