"""The plan executor: carries out a `Plan`'s steps, in the plan's order, on the profile's
connections, and records the run in the state store.

Order. The plan lists its steps so that each comes after its `inputs`; with `jobs = 1` the
executor runs them one at a time in that order; with more, up to `jobs` steps whose inputs
have all succeeded run at once, each on a worker thread with its own connections (DuckDB:
cursors of the one database; Postgres: sessions). Events reach the listener in the `jobs = 1`
order whatever the completion order, so logs are deterministic. A step whose inputs did not
all succeed does not run.

Stages: all or nothing, per run, yet resumable (runtime/run/stages.py). On DuckDB and Postgres a
run builds aside: every step writes into the run's stage schema (`_flowc_<pipeline>_<run>`,
first on the connection's search path, so later steps read the stage's tables and fall back
to the published ones) and commits on its own. Nothing is visible under the real names until
every step and check has succeeded; then one last transaction per connection publishes the
stage (Postgres moves the tables and views into the connection's schema; DuckDB, which cannot
move a table, puts views over the stage's tables under the real names) and runs the deferred
steps: table sinks, incremental models, steps on BigQuery, and their downstream. File sinks
are written under hidden names next to their targets and renamed after the commit.

So a run that fails, or whose process is killed, leaves every real table and file as it was,
and its stage keeps what finished: `flowc run --resume` reruns only the rest (a step is kept
when the state store says it finished in that stage with the same fingerprint; Python steps
rerun when a step reading their rows runs, as rows handed to Python live in memory only).
`--skip-unchanged` leaves out the steps whose fingerprint, parameter values and source files
are those of their last successful run (their published tables are read). A successful run
drops the pipeline's stage schemas that nothing published reads any more.

What this does not cover: with several connections, a commit failing after another's commit
succeeded (commits of finished transactions do not fail in practice), and a crash between
the commits and the file renames (the staged files are left under their hidden
`.name.flowc-tmp-*` names). A parquet folder's rename itself is two renames (sinks.py).
BigQuery has no transactional DDL: its adapter builds a run's tables in a scratch dataset and
copies them into place at commit, one atomic copy per table (docs/bigquery.md), so steps on
BigQuery all run in the last transaction and are not resumable one by one.

A read inside a transaction happens on the writing connection, so a transfer into Python
materializes its rows (an Arrow table) before the Python block runs.

Timeouts. A step with a `timeout_s` that runs longer is stopped: its engines' running
statements are cancelled (`Interruptible`), Python code gets an exception (SIGALRM on the
main thread, an asynchronous exception on a worker's), and the step fails as timed out,
saying where the user's code was (also when the code caught the stop and returned late).

Endings. However a step's Python code ends (`sys.exit`, `os._exit`, any `BaseException`) it
is a failed step (runtime/usercode/endings.py); `isolate` runs a block in a worker process
(runtime/usercode/isolated.py). Ctrl-C and SIGTERM stop the run: the running statements are
cancelled at once (from a watcher thread), Python code is interrupted (on workers, given
`STOP_GRACE_S`), everything open rolls back, and `run` returns the result `interrupted`, as
it returns `failed` for a bug in flowc (with the exception, for the CLI to report): a run
always comes back with its story, never as an exception.

Retries. A step that fails in a way that may go away on its own (`StepError.retryable`: a
Python block or loader raising a connection or timeout error; on Postgres a serialization
failure, a deadlock, a lock timeout) runs again, up to its `retries`, after `retry_delay_s`
doubling per attempt; each attempt is recorded. Only what can be undone is retried: a staged
step (its transaction is rolled back), and in the last transaction a step that used no
connection (Python) or only connections with savepoints (`Savepoints`: Postgres, where such
a step starts with a SAVEPOINT and a retry rolls back to it; a failed DuckDB statement aborts
the transaction). `http` sources retry their downloads themselves (download.py).

Engines: DuckDB, Postgres (docs/postgres.md; a run lock so that two runs of one pipeline and
profile take turns) and BigQuery. Engines that run jobs (BigQuery) label them with the
pipeline, run and step.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import math
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pyarrow as pa
from flowc.compiler import ir
from flowc.compiler.diagnostics import did_you_mean
from flowc.compiler.plan import (
    SINCE,
    CheckStep,
    ExportStep,
    FileSink,
    LoadStep,
    PipelineParam,
    Plan,
    PythonStep,
    SqlStep,
    Step,
    TableSink,
    TransferStep,
)
from flowc.project import config, secrets
from flowc.project.spans import Span
from flowc.runtime.engines import open_engine
from flowc.runtime.engines.base import (
    Analyzing,
    CsvCopying,
    Engine,
    Internal,
    Interruptible,
    Noting,
    Query,
    RunLocking,
    Savepoints,
    Staging,
    TableName,
)
from flowc.runtime.errors import ConnectionFailed, EngineBusy, StepError, StepTimeout
from flowc.runtime.io import csv_copy, outputs, sinks, sources
from flowc.runtime.io.columns import flow_type
from flowc.runtime.run import spec_position
from flowc.runtime.run.rebind import Rebinder
from flowc.runtime.run.stages import (
    STAGING_TYPES,
    connections_of,
    deferred_steps,
    failpoint,
    input_digest,
    internal_names,
    needed_again,
    published_names,
    stage_name,
    stage_prefix,
    unchanged_steps,
)
from flowc.runtime.state import RunRecord, RunStatus, StateStore, StepStatus
from flowc.runtime.usercode import endings

SAMPLE_ROWS = 5
DEFAULT_RETRY_DELAY_S = 1.0  # the first back-off when a node sets `retries` but no delay
STOP_GRACE_S = 5.0  # after Ctrl-C, how long Python blocks on worker threads get to stop


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
            hint = did_you_mean(name, plan.nodes)
            raise ValueError(
                f"--select {pattern}: no node `{name}`"
                + (f"; {hint}" if hint else "")
                + f" (nodes: {known})"
            )
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
                if isinstance(feeder, TransferStep) and feeder.transfer.from_connection:
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
    return isinstance(step, TransferStep) and step.transfer.to_connection is None


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
    '"name": "p", "spec": "p.flow"}, "plan_version": 2, "profile": "dev", "project": "p", '
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
    status: RunStatus  # succeeded, failed, interrupted
    failed_step: str | None = None
    error: str | None = None
    events: list[StepEvent] = field(default_factory=list)
    signal: int | None = None  # interrupted: the signal that stopped the run
    crash: BaseException | None = None  # failed by a bug in flowc: the exception
    busy: bool = False  # failed because another process held a database: run again later
    unreachable: str | None = None  # failed because this connection could not be opened
    hint: str | None = None  # what to do instead of fixing and resuming


Listener = Callable[[StepEvent], None]


class DataTestFailed(StepError):
    """A check found failing rows: its query ran, so the other checks can run too (after a
    SQL error, a transaction may be aborted: the run stops there)."""


# --- the executor ---------------------------------------------------------------------------


@dataclass
class _Lane:
    """What one thread that runs steps holds: its connections, and the step it runs. The
    main thread's lane holds the run's own connections (the run lock, the publish)."""

    engines: dict[str, Engine] = field(default_factory=dict)
    step: Step | None = None
    used: set[str] = field(default_factory=set)  # the connections the step used
    undoable: dict[str, Savepoints] = field(default_factory=dict)  # ... with a savepoint
    busy: bool = False  # a worker's step is running on it
    attempt: int = 1  # of the step


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
        resume: RunRecord | None = None,
        skip_unchanged: bool = False,
        jobs: int = 1,
    ) -> None:
        self.plan = plan
        self.only = only
        self.full_refresh = full_refresh
        self.resume = resume
        self.skip_unchanged = skip_unchanged
        self.jobs = max(1, jobs)
        self.profile = profile
        self.root = root
        self.params = dict(params)
        self.store = store
        self.listener = listener
        self.run_id = store.new_run_id()
        self.stage = resume.stage if resume and resume.stage else stage_name(plan, self.run_id)
        self._main = _Lane()
        self._lanes: list[_Lane] = []  # of the worker threads (`--jobs`)
        self._local = threading.local()
        self._lock = threading.RLock()  # engines opened, rows held, events in order
        self._publishing = False  # the run's last transaction: publish, then deferred steps
        self._held: dict[str, pa.Table | pa.RecordBatchReader] = {}  # Python-side rows
        self._staged: list[sinks.Staged] = []
        self._consumers = _consumers(plan)
        self._read_by_sql = {i for s in plan.steps if s.kind == "sql" for i in s.inputs}
        self._labels: dict[str, str] = {"pipeline": plan.pipeline.name}
        self._inputs: dict[str, str | None] = {}  # step id -> digest of its source files
        self.sleep: Callable[[float], None] = time.sleep
        self._events: _InOrder | None = None
        self._built: set[str] = set()  # staged steps whose outputs the stage holds
        self._only_checks_failed = True  # (so far): the other checks still run
        self._unstaged: set[str] = set()  # connections where the stage cannot be created
        # connections another process held too long, or that could not be opened: tried once
        self._busy: dict[str, EngineBusy | ConnectionFailed] = {}
        self._first: Step | None = None  # the run's first step
        self._rebinder = Rebinder(plan, root)  # steps written once columns are known

    # --- the run

    def run(self) -> RunResult:
        plan = self.plan
        self.store.start_run(
            plan.pipeline.name,
            plan.pipeline.spec,
            plan.profile,
            self.params,
            run_id=self.run_id,
            stage=self.stage,
            resumes=self.resume.id if self.resume else None,
        )
        if self.resume is not None and self.resume.status == "running":  # its process died
            self.store.finish_run(self.resume.id, "interrupted")
        result = RunResult(self.run_id, "running")
        with endings.interrupts(on_stop=self._interrupt_lanes):
            try:
                self._run_all(result)
            except BaseException as error:  # Ctrl-C, or a bug in flowc: nothing is kept either
                with endings.quiet():
                    self._stopped(result, error)
            finally:
                with endings.quiet():
                    self._close()
        with endings.quiet():
            try:
                self.store.finish_run(self.run_id, result.status)
            except StepError as unrecorded:  # a full disk: the run's own outcome still counts
                if result.status == "succeeded":  # committed: it did succeed
                    return result
                if not result.error:
                    result.error = unrecorded.message
                elif unrecorded.message not in result.error:
                    result.error = f"{result.error}; {unrecorded.message}"
        return result

    def _run_all(self, result: RunResult) -> None:
        plan = self.plan
        wanted = [s for s in plan.steps if self.only is None or s.id in self.only]
        wanted_ids = {s.id for s in wanted}
        status = {s.id: "succeeded" for s in plan.steps if s.id not in wanted_ids}
        self._first = wanted[0] if wanted else None
        if any(isinstance(step, PythonStep) and step.isolate for step in wanted):
            from flowc.runtime.usercode import isolated

            isolated.warm_up()
        self._open_staging(wanted)
        deferred = deferred_steps(plan, self._staging_connections())
        done = self._done_before(wanted, wanted_ids, deferred)
        staged = [s for s in wanted if s.id not in deferred]
        last = [s for s in wanted if s.id in deferred]
        self._events = _InOrder([s.id for s in staged + last], self._emit_now)
        if self._blocked_sink(wanted, result) or self._unbuilt_input(wanted, result):
            result.status = "failed"
            return
        self._run_part(staged, done, status, result)
        if result.failed_step is None:
            endings.raise_if_stopped()
            failpoint("kill-before", "publish")
            self._publish({s.id for s in last})
            self._run_part(last, done, status, result)
        else:
            for step in last:  # the run's last transaction never opened
                self._skip(step, result)
        if result.failed_step is None:
            endings.raise_if_stopped()
            with endings.quiet():  # a Ctrl-C from here on comes too late: the run publishes
                self._commit()
            result.status = "succeeded"
        else:
            self._rollback()
            result.status = "failed"

    def _stopped(self, result: RunResult, error: BaseException) -> None:
        """The run ends early: interrupted (Ctrl-C, SIGTERM), or by a bug in flowc. Its open
        transactions roll back; the events held back for order are passed on."""
        self._rollback()
        if isinstance(error, KeyboardInterrupt) or endings.stop_requested() is not None:
            signum = getattr(error, "signum", None) or endings.stop_requested() or signal.SIGINT
            result.status, result.signal = "interrupted", signum
            result.error = str(endings.RunInterrupted(signum))
            self._left_running(result)
        if self._events is not None:
            with self._lock:
                self._events.flush()
        if result.status == "interrupted":
            return
        result.status, result.crash = "failed", error
        result.error = f"internal error: {type(error).__name__}"

    def _left_running(self, result: RunResult) -> None:
        """The steps still running on workers when an interrupted run stops (a Python block
        inside a long C call): recorded and reported as failed, the first as where the run
        stopped."""
        with self._lock:
            left = [lane for lane in self._lanes if lane.busy and lane.step is not None]
        for lane in left:
            step = lane.step
            assert step is not None
            text = f"{result.error}; still running when flowc stopped"
            self.store.finish_step(self.run_id, step.id, "failed", attempt=lane.attempt, error=text)
            self._emit(result, StepEvent(step.id, step.node, step.kind, "failed", message=text))
            result.failed_step = result.failed_step or step.id

    def _staging_connections(self) -> set[str]:
        """The connections whose engines build a run aside (`Staging`): DuckDB, Postgres,
        unless the user may not create the stage schema there."""
        return {
            name
            for name, connection in self.profile.connections.items()
            if connection.type in STAGING_TYPES and name not in self._unstaged
        }

    def _open_staging(self, wanted: list[Step]) -> None:
        """Open the run's connections that may stage, first: whether each can (a Postgres
        user without the right to create schemas cannot) decides which steps are deferred."""
        used = {c for step in wanted for c in connections_of(step)}
        for name in sorted(used & self._staging_connections()):
            try:
                self._home(name, probing=True)
            except (EngineBusy, ConnectionFailed) as error:  # tried once: the first step
                self._busy[name] = error  # using it fails so, without waiting again
            except StepError:  # the first step using it fails, saying why
                pass

    def _run_part(
        self,
        steps: list[Step],
        done: Mapping[str, StepStatus],
        status: dict[str, str],
        result: RunResult,
    ) -> None:
        """Record the steps of `steps` whose work stands (`done`), run the others."""
        for step in steps:
            if step.id in done:
                status[step.id] = self._record_done(step, done[step.id], result)
        self._run_steps([s for s in steps if s.id not in done], status, result)

    def _done_before(
        self, wanted: list[Step], wanted_ids: set[str], deferred: set[str]
    ) -> dict[str, StepStatus]:
        """Steps whose work stands already: done in the run resumed (`reused`), or unchanged
        since the last successful run (`unchanged`, with `--skip-unchanged`)."""
        done: dict[str, StepStatus] = {}
        if self.resume is not None:
            standing = self.store.staged_steps(self.stage)
            for step in wanted:  # in plan order: a step's inputs are decided before it
                same = standing.get(step.id) == step.fingerprint
                inputs_stand = all(i in done or i not in wanted_ids for i in step.inputs)
                if same and inputs_stand and step.id not in deferred and self._in_stage(step):
                    done[step.id] = "reused"
        if self.skip_unchanged:
            unchanged = unchanged_steps(
                self.plan, self.store, self.params, self.root, digest=self._input_digest
            )
            for step_id in unchanged:
                done.setdefault(step_id, "unchanged")
        return needed_again(self.plan, done, wanted_ids)

    def _in_stage(self, step: Step) -> bool:
        """Whether the tables `step` built are in the stage still (none is missing)."""
        for output in step.outputs:
            if output.connection and output.name:
                try:
                    home = self._home(output.connection)
                    if not home.table_exists(TableName(output.name, self.stage)):
                        return False
                except StepError:
                    return False
        return True

    def _record_done(self, step: Step, how: StepStatus, result: RunResult) -> str:
        self.store.start_step(
            self.run_id,
            step.id,
            node=step.node,
            kind=step.kind,
            fingerprint=step.fingerprint,
            inputs=self._input_digest(step),
        )
        self.store.finish_step(self.run_id, step.id, how)
        if how == "reused":
            self._built.add(step.id)
        self._emit(result, StepEvent(step.id, step.node, step.kind, how))
        return "succeeded"

    def _run_steps(self, steps: list[Step], status: dict[str, str], result: RunResult) -> None:
        """Run `steps` (in plan order), up to `jobs` at once while they are staged; a step
        whose inputs did not all succeed, or that comes after a failure, is skipped."""
        if self.jobs == 1 or self._publishing:
            for step in steps:
                status[step.id] = self._run_or_skip(step, status, result)
            return
        pending = list(steps)
        running: dict[Future[str], Step] = {}
        pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="flowc-step")
        try:
            while pending or running:
                self._start_ready(pool, pending, running, status, result)
                if not running:
                    assert not pending, f"steps {[s.id for s in pending]} wait for nothing"
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    status[running.pop(future).id] = future.result()
        except BaseException as error:
            self._interrupt_lanes()
            if not isinstance(error, KeyboardInterrupt):
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            # Ctrl-C: Python blocks on the workers are stopped too, and given a moment; one
            # stuck in a long C call is left behind (its lane is not cleaned up: the process
            # is about to end, and nothing it did is published)
            endings.interrupt_user_threads()
            pool.shutdown(wait=False, cancel_futures=True)
            wait(running, timeout=STOP_GRACE_S)
            raise
        pool.shutdown(wait=True)

    def _start_ready(
        self,
        pool: ThreadPoolExecutor,
        pending: list[Step],
        running: dict[Future[str], Step],
        status: dict[str, str],
        result: RunResult,
    ) -> None:
        """Start (in plan order, while a worker is free) the pending steps whose inputs are
        decided; skip those that cannot run."""
        for step in list(pending):
            if len(running) >= self.jobs:
                return
            if not self._failure_stops(step, result) and not all(i in status for i in step.inputs):
                continue
            pending.remove(step)
            if not self._failure_stops(step, result) and _inputs_ok(step, status):
                running[pool.submit(self._in_lane, step, result)] = step
            else:
                status[step.id] = self._run_or_skip(step, status, result)

    def _failure_stops(self, step: Step, result: RunResult) -> bool:
        """Whether a failure stops `step`: any does, except that after failed data tests
        (`DataTestFailed`) the other checks still run, so that one run reports every broken
        expectation."""
        if result.failed_step is None:
            return False
        return step.kind != "check" or not self._only_checks_failed

    def _run_or_skip(self, step: Step, status: dict[str, str], result: RunResult) -> str:
        if self._failure_stops(step, result) or not _inputs_ok(step, status):
            self._skip(step, result)
            return "skipped"
        return self._run_step(step, result)

    def _in_lane(self, step: Step, result: RunResult) -> str:
        """Run `step` on a worker thread, with the thread's own connections."""
        lane = getattr(self._local, "lane", None)
        if lane is None:
            lane = self._local.lane = _Lane()
            with self._lock:
                self._lanes.append(lane)
        lane.busy = True
        try:
            return self._run_step(step, result)
        finally:
            lane.busy = False

    def _lane(self) -> _Lane:
        return getattr(self._local, "lane", None) or self._main

    def _run_step(self, step: Step, result: RunResult) -> str:
        endings.raise_if_stopped()  # a block may have swallowed the interruption
        self._emit(result, StepEvent(step.id, step.node, step.kind, "running"))
        lane = self._lane()
        lane.step = step
        labels = {**self._labels, "run": self.run_id, "step": step.id}
        for engine in lane.engines.values():
            _label(engine, labels)
        failpoint("kill-before", step.id)
        started = time.perf_counter()
        status: StepStatus = "succeeded"
        message: str | None = None
        rows: int | None = None
        try:
            rows, message = self._with_retries(step, result)
            if message is not None:
                status = "warned"
        except StepError as error:
            status, message = "failed", str(error)
            with self._lock:
                self._only_checks_failed &= isinstance(error, DataTestFailed)
                if result.failed_step is None:  # the first failure is the one reported
                    result.failed_step = step.id
                    result.error = self.store.redact(message)
                    result.busy = isinstance(error, EngineBusy)
                    if isinstance(error, ConnectionFailed):
                        result.unreachable = error.connection
                elif self._only_checks_failed:  # ... with every failed data test's
                    result.error = f"{result.error}\n{self.store.redact(message)}"
        except BaseException as error:  # the run stops here (Ctrl-C, a bug): say so first
            with self._lock:
                result.failed_step = result.failed_step or step.id
                self._only_checks_failed = False
            took = time.perf_counter() - started
            interrupted = isinstance(error, endings.RunInterrupted)
            said = str(error) if interrupted else f"internal error: {type(error).__name__}"
            event = StepEvent(step.id, step.node, step.kind, "failed", None, took, said)
            self._emit(result, event)
            raise
        if status != "failed" and not self._publishing:
            with self._lock:
                self._built.add(step.id)
        failpoint("kill-after", step.id)
        seconds = time.perf_counter() - started
        shown = self.store.redact(message)
        self._emit(result, StepEvent(step.id, step.node, step.kind, status, rows, seconds, shown))
        return status

    def _with_retries(self, step: Step, result: RunResult) -> tuple[int | None, str | None]:
        """Run `step`, again (up to its `retries`, the delay doubling from `retry_delay`) while
        it fails in a way worth retrying and what it did can be undone."""
        if not step.retries:
            return self._attempt(step, 1)
        from tenacity import (  # only steps with retries pay for the import
            RetryCallState,
            Retrying,
            retry_if_exception,
            stop_after_attempt,
            wait_exponential,
        )

        lane = self._lane()

        def worth_retrying(error: BaseException) -> bool:
            # a staged step's transaction is rolled back; in the run's last transaction
            # only connections with savepoints can go back (a failed DuckDB statement
            # aborts that transaction)
            undoable = not self._publishing or lane.used <= lane.undoable.keys()
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
                return self._attempt(step, attempt.retry_state.attempt_number)
        raise AssertionError("tenacity ends with a result or the last exception")

    def _attempt(self, step: Step, attempt: int) -> tuple[int | None, str | None]:
        """One attempt at `step`, recorded in the state store as it starts and ends; staged,
        it is one transaction per connection it uses, committed as it ends."""
        run_id = self.run_id
        self.store.start_step(
            run_id,
            step.id,
            node=step.node,
            kind=step.kind,
            attempt=attempt,
            fingerprint=step.fingerprint,
            inputs=self._input_digest(step),
        )
        lane = self._lane()
        lane.used.clear()
        lane.undoable.clear()
        lane.attempt = attempt
        try:
            rows, message = self._within_timeout(step, lane)
            self._end_step(lane, succeeded=True)
        except BaseException as error:
            stop = endings.as_interruption(error)  # a statement cancelled by Ctrl-C, say
            if stop is None and isinstance(error, StepError):
                self._end_step(lane, succeeded=False)
                error = _named(self._in_spec(error, step), step)
                self._record_failure(run_id, step.id, attempt, error)
                raise error from None
            failure = str(stop) if stop else f"internal error: {type(error).__name__}"
            self.store.finish_step(run_id, step.id, "failed", attempt=attempt, error=failure)
            if stop is not None and stop is not error:
                raise stop from error
            raise
        status: StepStatus = "succeeded" if message is None else "warned"
        self.store.finish_step(run_id, step.id, status, attempt=attempt, rows=rows, error=message)
        return rows, message

    def _in_spec(self, error: StepError, step: Step) -> StepError:
        """An engine's refusal of the step's SQL, shown where the spec has it (F1001)."""
        refusable = step.kind in ("sql", "export", "check") and bool(step.sql)
        if not refusable or type(error) is not StepError:
            return error
        message = spec_position.located(error.message, step, self.plan, self.root)
        if message == error.message:
            return error
        return StepError(message, node=error.node, retryable=error.retryable)

    def _record_failure(self, run_id: str, step_id: str, attempt: int, error: StepError) -> None:
        """Record the step's failure; a history that cannot take it (a full disk) does not
        hide the step's own cause: the run ends saying both."""
        try:
            self.store.finish_step(run_id, step_id, "failed", attempt=attempt, error=str(error))
        except StepError as unrecorded:
            error.message = f"{error.message}; {unrecorded.message}"
            error.args = (f"{error}; {unrecorded.message}",)

    def _end_step(self, lane: _Lane, *, succeeded: bool) -> None:
        """A staged step commits (or rolls back) its transactions; in the run's last
        transaction a step forgets (or goes back to) its savepoints."""
        if self._publishing:
            for undoable in lane.undoable.values():
                if succeeded:
                    undoable.release_savepoint()
                else:
                    with contextlib.suppress(StepError):
                        undoable.rollback_to_savepoint()
            return
        for name in sorted(lane.used):
            engine = lane.engines.get(name) or self._main.engines[name]
            if not engine.in_transaction:
                continue
            if succeeded:
                engine.commit()
            else:
                with contextlib.suppress(StepError):  # the step's own error says more
                    engine.rollback()

    def _input_digest(self, step: Step) -> str | None:
        if step.id not in self._inputs:
            self._inputs[step.id] = input_digest(step, self.root)
        return self._inputs[step.id]

    def _within_timeout(self, step: Step, lane: _Lane) -> tuple[int | None, str | None]:
        """`_dispatch(step)`, stopped when it runs past the step's `timeout_s`."""
        if not step.timeout_s:
            return self._dispatch(step)
        deadline = _Deadline(step.timeout_s, lambda: _interrupt(lane))
        try:
            with deadline:
                outcome = self._dispatch(step)
        except (Exception, endings.TimedOut) as error:  # whatever the cancelled code raised
            if not deadline.fired:
                raise
            raise self._timed_out(step, deadline) from error
        if deadline.fired:  # user code swallowed the stop and finished late: still too late
            raise self._timed_out(step, deadline)
        return outcome

    def _timed_out(self, step: Step, deadline: _Deadline) -> StepTimeout:
        """The failure of a step past its `timeout`, saying where in the user's Python code
        it was when the time ran out (if it was in a block)."""
        where = endings.user_stack(deadline.where, self.root) if deadline.where else ""
        return StepTimeout(
            f"timed out after {step.timeout_s:g}s (its `timeout`)",
            retryable=True,
            user_traceback=f"it was at:\n{where}" if where else None,
        )

    def _interrupt_lanes(self) -> None:
        for lane in [self._main, *self._lanes]:
            _interrupt(lane)

    def _skip(self, step: Step, result: RunResult) -> None:
        self.store.start_step(
            self.run_id, step.id, node=step.node, kind=step.kind, fingerprint=step.fingerprint
        )
        self.store.finish_step(self.run_id, step.id, "skipped")
        self._emit(result, StepEvent(step.id, step.node, step.kind, "skipped"))

    def _file_held(self, name: str, pid: int | None) -> None:
        """Another process holds the database of connection `name`: wait, naming its run."""
        run_id = self.store.running_run_of(pid) if pid is not None else None
        who = f"run {run_id} (pid {pid})" if run_id else f"process {pid}" if pid else "a process"
        self._waiting(
            f"waiting for {who} to finish: it holds the database of connection `{name}` "
            "(a DuckDB file admits one writing process)"
        )

    def _waiting(self, message: str) -> None:
        """A step waits (for another run's lock): said as a `waiting` event of that step."""
        step = self._lane().step or self._first  # connections open before the first step
        if step is not None and self.listener is not None:
            self.listener(StepEvent(step.id, step.node, step.kind, "waiting", message=message))

    def _emit(self, result: RunResult, event: StepEvent) -> None:
        """Events reach the listener in the order the steps run with `--jobs 1` (staged
        steps, then the run's last transaction; each in plan order), whatever `--jobs`."""
        assert self._events is not None
        with self._lock:
            result.events.append(event)
            self._events.add(event)

    def _emit_now(self, event: StepEvent) -> None:
        if self.listener is not None:
            self.listener(event)

    # --- the run's end: publish, commit, or roll back

    def _publish(self, deferred: Collection[str]) -> None:
        """Open the run's last transaction on every connection: what the stage holds is
        published under its real names (other sessions see it at the commit); the deferred
        steps then run in the same transaction."""
        self._publishing = True
        staging = self._staging_connections()
        names = published_names(self.plan, staging, self._built, internal=False)
        inside = published_names(self.plan, staging, self._built, internal=True)
        later = published_names(self.plan, staging, deferred)
        for name in sorted(self._main.engines.keys() | names.keys() | inside.keys() | later.keys()):
            engine = self._home(name)
            if not engine.in_transaction:
                engine.begin()
            if isinstance(engine, Staging):
                if names.get(name) or inside.get(name):
                    engine.publish(self.stage, names.get(name, []), inside.get(name, []))
                if later.get(name):  # built as tables now, where a view was published
                    engine.unpublish(later[name])
                engine.use_stage(None)

    def _commit(self) -> None:
        for engine in self._main.engines.values():
            if engine.in_transaction:
                engine.commit()
        for staged in self._staged:
            staged.commit()
        self._staged.clear()
        failpoint("kill-after", "moved-in")  # tests: a resumed append adds its rows once
        prefix = stage_prefix(self.plan)
        for engine in self._main.engines.values():
            if isinstance(engine, Staging):
                with contextlib.suppress(StepError):  # the run succeeded; cleaning can wait
                    engine.drop_stages(prefix, keep=())

    def _rollback(self) -> None:
        """Undo the run's open transactions (a staged step's, or the last one); what staged
        steps committed stays in the stage, for `--resume`."""
        for lane in self._idle_lanes():
            for engine in lane.engines.values():
                if engine.in_transaction:
                    with contextlib.suppress(StepError):  # the first failure is the one to report
                        engine.rollback()
        for staged in self._staged:
            staged.discard()
        self._staged.clear()

    def _close(self) -> None:
        for lane in reversed(self._idle_lanes()):  # workers first: the main one holds the lock
            for engine in lane.engines.values():
                with contextlib.suppress(Exception):
                    engine.close()

    def _idle_lanes(self) -> list[_Lane]:
        """The main lane and the workers' lanes that no step uses any more (after Ctrl-C, a
        worker may still be inside a Python block)."""
        with self._lock:
            return [self._main, *(lane for lane in self._lanes if not lane.busy)]

    # --- connections

    def engine(self, name: str | None) -> Engine:
        """The current thread's engine on connection `name` (opened when first used)."""
        if name is None:
            raise StepError("the step names no connection")
        lane = self._lane()
        engine = lane.engines.get(name)
        if engine is None:
            home = self._home(name)
            if lane is self._main:
                engine = home
            else:
                if not isinstance(home, Staging):
                    raise StepError(f"connection `{name}` cannot run steps side by side")
                engine = home.worker()
                lane.engines[name] = engine
        return self._used(lane, name, engine)

    def _home(self, name: str, *, probing: bool = False) -> Engine:
        """The run's own engine on `name`: it holds the run lock and publishes. `probing`:
        the run is starting, and may still defer the steps on `name` when it cannot stage."""
        with self._lock:
            if name in self._main.engines:
                return self._main.engines[name]
            connection = self.profile.connections.get(name)
            if connection is None:
                raise StepError(f"profile `{self.profile.name}` has no connection `{name}`")
            if name in self._busy:
                raise self._busy[name]
            try:
                engine = open_engine(connection, self.root, lambda pid: self._file_held(name, pid))
            except EngineBusy:
                raise
            except StepError as error:
                raise _unreachable(error, name, self.profile.name, connection.span) from None
            try:
                _label(engine, self._labels)
                if isinstance(engine, RunLocking):  # concurrent runs of this pipeline wait
                    plan = self.plan
                    key = f"`{plan.pipeline.name}` of `{plan.project}` (profile `{plan.profile}`)"
                    engine.lock_run(key, self._waiting)
                if isinstance(engine, Internal):
                    self._use_internal(engine, name)
                if isinstance(engine, Staging) and not self._publishing:
                    try:
                        engine.use_stage(self.stage)
                    except StepError as error:
                        if not probing or "permission denied" not in error.message:
                            raise
                        self._unstaged.add(name)  # its steps all run in the last transaction
                if not isinstance(engine, Staging) or name in self._unstaged:
                    engine.begin()  # its steps all run in the run's last transaction
            except StepError:
                engine.close()
                raise
            self._main.engines[name] = engine
            return engine

    def _use_internal(self, engine: Internal, name: str) -> None:
        """Give `engine` the pipeline's internal schema, where unpublished nodes live; where
        the user may not create it, they live in the connection's schema."""
        names = internal_names(self.plan).get(name)
        if not names:
            return
        try:
            engine.use_internal(self.plan.pipeline.internal_schema, names)
        except StepError as error:
            if "permission denied" not in error.message:
                raise

    def _used(self, lane: _Lane, name: str, engine: Engine) -> Engine:
        """Note that the running step uses `engine`: a staged step opens its transaction on
        it; in the last transaction a step that may be retried marks where it starts on
        engines that can go back there (savepoints)."""
        if name not in lane.used:
            lane.used.add(name)
            if not engine.in_transaction:
                engine.begin()  # staged: the step's own; else the run's last transaction
            if (
                self._publishing
                and lane.step
                and lane.step.retries
                and isinstance(engine, Savepoints)
            ):
                engine.savepoint()
                lane.undoable[name] = engine
        return engine

    # --- the kinds of step

    def _dispatch(self, step: Step) -> tuple[int | None, str | None]:
        """Run `step`: (rows, a warning or None)."""
        step = self._rebinder.bound(step, self._columns_of)
        rows, message = self._by_kind(step)
        self._analyze(step)
        notes = [n for engine in self._engines_used() for n in engine.take_notes()]
        return rows, "\n".join([message, *notes] if message else notes) or None

    def _by_kind(self, step: Step) -> tuple[int | None, str | None]:
        match step:
            case LoadStep():
                return self._load(step)
            case SqlStep():
                return self._sql(step)
            case PythonStep():
                return self._python(step)
            case CheckStep():
                return self._check(step)
            case TransferStep():
                return self._transfer(step)
            case ExportStep():
                return self._export(step)

    def _engines_used(self) -> list[Noting]:
        lane = self._lane()
        found: list[Noting] = []
        for name in sorted(lane.used):
            engine = lane.engines.get(name) or self._main.engines.get(name)
            if isinstance(engine, Noting):
                found.append(engine)
        return found

    def _analyze(self, step: Step) -> None:
        """Statistics for the tables `step` built that a later SQL step reads, where the
        engine plans by them (Postgres); a table only sinks or checks read is left alone."""
        if step.id not in self._read_by_sql:
            return
        if isinstance(step, SqlStep) and step.materialization == "view":
            return
        for output in step.outputs:
            if output.connection is not None and output.name is not None:
                engine = self.engine(output.connection)
                if isinstance(engine, Analyzing):
                    engine.analyze(output.name)

    def _columns_of(self, node: str) -> tuple[ir.Column, ...]:
        """The columns node `node` has in this run (its table, as loaded or landed)."""
        info = self.plan.nodes[node]
        connection, table = info.connection, info.external
        if table is None and info.step is not None:
            output = self.plan.step(info.step).outputs[0]
            connection, table = output.connection, output.name
        found = self.engine(connection).table_schema(table) if table else None
        if found is None:
            raise StepError(f"the table of `{node}` is not there to read its columns from")
        return tuple(ir.Column(name=f.name, type=flow_type(f.type)) for f in found)

    def _statements(self, engine: Engine, step: LoadStep | SqlStep | ExportStep) -> None:
        for statement in step.sql or []:
            engine.execute(statement, self.params)

    def _load(self, step: LoadStep) -> tuple[int | None, str | None]:
        engine = self.engine(step.connection)
        reader = self._read_source(step)
        table = step.table
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

    def _read_source(self, step: LoadStep) -> pa.RecordBatchReader:
        source = step.source
        if source.path is None:
            raise StepError(f"the `{source.kind}` source names no path")
        options: dict[str, Any] = dict(source.options)  # checked by the compiler (vocabulary)
        file_format = source.format or source.kind
        if source.kind == "http":
            from flowc.runtime.io import download  # urllib and tenacity: only http sources pay

            return download.read_source(source, step, self.params, self.root, options)
        return sources.read_file(
            self.root, source.path, file_format, columns=source.columns, **options
        )

    def _sql(self, step: SqlStep) -> tuple[int | None, str | None]:
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

    def _add_new_rows(self, engine: Engine, step: SqlStep, table: str) -> bool:
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
        for statement in incremental.new_rows:  # the query runs once, into a temp table
            engine.execute(statement, params)
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

    def _python(self, step: PythonStep) -> tuple[int | None, str | None]:
        python = step.python
        entry = f"{python.path}:{python.function}"
        columns = step.outputs[0].columns if step.outputs else None
        node_info = self.plan.nodes.get(step.node)
        source = node_info is not None and node_info.kind == "source"
        keep = step.retries > 0  # another attempt reads the same rows again
        inputs = {self.plan.step(i).node: self._take(i, keep=keep) for i in step.inputs}
        if step.isolate:
            from flowc.runtime.usercode import isolated

            reader = isolated.run_block(
                self.root,
                entry,
                kind="source" if source else "transform",
                inputs=inputs,
                columns=columns,
                params=self.params,
                node=step.node,
            )
        elif source:
            reader = sources.read_python(
                self.root, entry, columns=columns, params=self.params, node=step.node
            )
        else:
            from flowc.runtime.usercode import (
                pyblocks,  # imports pandas: only Python steps pay for it
            )

            reader = pyblocks.run_transform(
                self.root, entry, inputs, columns=columns, node=step.node
            )
        self._hold(step.id, reader)
        return None, None

    def _check(self, step: CheckStep) -> tuple[int | None, str | None]:
        check = step.check
        engine = self.engine(step.connection)
        # the literal values the plan keeps beside the SQL: bound, as parameters are
        params = {**self.params, **{v.name: v.value for v in step.values}}
        for statement in step.sql[:-1]:
            engine.execute(statement, params)
        found = engine.read_batches(Query(step.sql[-1], params)).read_all()
        if found.num_rows == 0:
            return 0, None
        rows = found.to_pylist()
        failures = int(rows[0].get("_failures") or len(rows))
        samples = [{k: v for k, v in row.items() if k != "_failures"} for row in rows]
        shown = "\n".join(
            f"    {_sample_text(row, check.columns)}" for row in samples[:SAMPLE_ROWS]
        )
        what = "row" if failures == 1 else "rows"
        where = f" ({self.plan.pipeline.spec}:{check.line})" if check.line else ""
        message = f"expect {check.description} failed: {failures} {what}{where}"
        if any(samples[0]):
            message += f"; sample:\n{shown}"
        if check.on_fail == "warn":  # shown after its step's id, which names the node
            return failures, message
        raise DataTestFailed(message, node=step.node)

    def _transfer(self, step: TransferStep) -> tuple[int | None, str | None]:
        transfer = step.transfer
        # TransferStep's validator: a query exactly when read from a connection, a table
        # exactly when written to one
        if transfer.from_connection is not None and transfer.from_connection == (
            transfer.to_connection
        ):  # a copy on one connection: done by a query there
            assert step.sql is not None and transfer.table is not None
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
            assert step.sql is not None
            source = self.engine(transfer.from_connection)
            reader = source.read_batches(Query(step.sql[-1], self.params))
        if transfer.to_connection is None:  # into Python: held, materialized (see above)
            table = _spelled(reader.read_all(), step)
            self._hold(step.id, table)
            return table.num_rows, None
        assert transfer.table is not None
        target = self.engine(transfer.to_connection)
        name = transfer.table
        rows = target.replace_atomically(name, lambda staging: target.create_table(staging, reader))
        return rows, None

    def _export(self, step: ExportStep) -> tuple[int | None, str | None]:
        sink = step.sink
        engine = self.engine(step.connection)
        if isinstance(sink, TableSink):
            had: int | None = None
            if sink.mode == "append":
                had = _count(engine, sink.table) if engine.table_exists(sink.table) else 0
            self._statements(engine, step)
            rows = _count(engine, sink.table)  # append: the rows added; else the table's
            return (rows - had if rows is not None and had is not None else rows), None
        query = Query(step.sql[-1], self.params)
        tag = self.stage.removeprefix(stage_prefix(self.plan))  # the same on --resume
        try:
            if sink.kind == "parquet":
                staged = sinks.stage_parquet_query(
                    self.root,
                    sink.path,
                    engine,
                    query,
                    partition_by=sink.partition_by,
                    mode=sink.mode,
                    tag=tag,
                )
            else:
                reader = engine.read_batches(query)
                staged = sinks.stage_csv(self.root, sink.path, reader, mode=sink.mode, tag=tag)
        except outputs.NotOwned as error:  # the files arrived while the run worked
            raise self._placed(error, step) from None
        self._staged.append(staged)
        return staged.rows, None

    def _blocked_sink(self, wanted: list[Step], result: RunResult) -> bool:
        """Whether a file sink's target holds files flowc did not write: then that sink fails
        and every other step is skipped before any runs (nothing is changed, and no work is
        done that the run could not publish). The sink checks again as it writes."""
        for step in wanted:
            if not isinstance(step, ExportStep) or not isinstance(step.sink, FileSink):
                continue
            sink = step.sink
            if not sink.path:
                continue
            try:
                sinks.check_owned(self.root, sink.path)
            except outputs.NotOwned as error:
                self._fail_first(step, str(_named(self._placed(error, step), step)), wanted, result)
                return True
        return False

    def _unbuilt_input(self, wanted: list[Step], result: RunResult) -> bool:
        """Whether a step `--select` picked reads a table that a step it left out should have
        built and no run has: then that step fails before any runs, saying to select
        `+NODE` (the engine would only say that the table does not exist)."""
        if self.only is None:
            return False
        picked = {s.id for s in wanted}
        # a run's history says what was built; the table itself settles it for steps built
        # otherwise (the history deleted). A staged run sees its stage first, so both ask.
        built = self.store.published_steps(self.plan.pipeline.name, self.plan.profile)
        for step in wanted:
            for input_id in step.inputs:
                feeder = self.plan.step(input_id)
                missing = next(
                    (
                        o
                        for o in feeder.outputs
                        if input_id not in picked
                        and input_id not in built
                        and o.connection is not None
                        and o.name is not None
                        and not self.engine(o.connection).table_exists(o.name)
                    ),
                    None,
                )
                if missing is None:
                    continue
                message = (
                    f"{step.node}: it reads `{feeder.node}`, which `--select` leaves out and no "
                    f"run has built (there is no table `{missing.name}` on `{missing.connection}`)"
                )
                result.hint = f"`--select +{step.node}` builds what `{step.node}` reads too"
                self._fail_first(step, message, wanted, result)
                return True
        return False

    def _fail_first(self, step: Step, message: str, wanted: list[Step], result: RunResult) -> None:
        """`step` fails before any step runs, and every other step of `wanted` is skipped."""
        self.store.start_step(
            self.run_id, step.id, node=step.node, kind=step.kind, fingerprint=step.fingerprint
        )
        self.store.finish_step(self.run_id, step.id, "failed", error=message)
        result.failed_step, result.error = step.id, self.store.redact(message)
        event = StepEvent(step.id, step.node, step.kind, "failed", None, 0.0, message)
        for other in wanted:
            if other is step:
                self._emit(result, event)
            else:
                self._skip(other, result)

    def _placed(self, error: outputs.NotOwned, step: Step) -> StepError:
        """The error said where the spec names the sink's target."""
        where = outputs.position(self.root, self.plan.pipeline.spec, step.node)
        return StepError(f"{where}: {error}" if where else str(error))

    # --- rows held in Python

    def _hold(self, step_id: str, data: pa.Table | pa.RecordBatchReader) -> None:
        if isinstance(data, pa.RecordBatchReader) and self._consumers.get(step_id, 0) > 1:
            data = data.read_all()  # read by several steps: kept whole
        with self._lock:
            self._held[step_id] = data

    def _take(self, step_id: str, *, keep: bool = False) -> pa.RecordBatchReader:
        """The rows a step holds in Python; a stream is read once, unless `keep`."""
        with self._lock:
            return self._take_held(step_id, keep=keep)

    def _take_held(self, step_id: str, *, keep: bool) -> pa.RecordBatchReader:
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


def _named(error: StepError, step: Step) -> StepError:
    """`error`, naming the step's node if it names none."""
    if error.node is not None or isinstance(error, ConnectionFailed):  # no node is at fault
        return error
    if isinstance(error, EngineBusy):  # the class says what the run's exit status is
        return EngineBusy(error.message, node=step.node)
    return StepError(
        error.message,
        node=step.node,
        user_traceback=error.user_traceback,
        retryable=error.retryable,
    )


def _unreachable(error: StepError, name: str, profile: str, span: Span) -> ConnectionFailed:
    """A failure to open connection `name`, told as such: which connection of which profile,
    defined where in flow.toml."""
    where = f"{span.file}:{span.line}" if span.file else "flow.toml"
    detail = error.message.removeprefix("cannot connect to ")
    return ConnectionFailed(
        f"cannot connect to `{name}` of profile `{profile}` ({where}): {detail}", connection=name
    )


def _label(engine: Engine, labels: Mapping[str, str]) -> None:
    """Name pipeline, run and step on the engine's jobs, where it has jobs (BigQuery)."""
    set_labels = getattr(engine, "set_labels", None)
    if set_labels is not None:
        set_labels(labels)


class _Deadline:
    """A step's time limit. When it passes, `on_expiry` runs on a timer thread (to cancel a
    statement running in an engine) and `endings.TimedOut` is raised in the step's thread to stop
    Python code (a block, a loader, flowc's own streaming): by SIGALRM in the main thread,
    elsewhere (`--jobs`) as an asynchronous exception, which Python delivers between
    bytecodes (code waiting inside a C call sees it when the call returns)."""

    def __init__(self, seconds: float, on_expiry: Callable[[], None]) -> None:
        self.seconds = seconds
        self.fired = False
        self._on_expiry = on_expiry
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._alarm = threading.current_thread() is threading.main_thread()
        self._thread = threading.get_ident()
        self._previous: Any = None
        self.where: traceback.StackSummary | None = None  # the step's stack as time ran out

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
        elif self.fired:  # not delivered yet: not for whatever the thread does next
            endings.raise_in_thread(self._thread, None)

    def _expire(self) -> None:
        self._note_where(sys._current_frames().get(self._thread))
        self.fired = True
        self._on_expiry()
        if not self._alarm:
            endings.raise_in_thread(self._thread, endings.TimedOut)

    def _ring(self, signum: int, frame: FrameType | None) -> None:
        self._note_where(frame)
        self.fired = True
        raise endings.TimedOut

    def _note_where(self, frame: FrameType | None) -> None:
        if self.where is None and frame is not None:
            self.where = traceback.extract_stack(frame)


def _interrupt(lane: _Lane) -> None:
    """Cancel what the lane's running step does on its connections (from another thread)."""
    for name in list(lane.used):
        engine = lane.engines.get(name)
        if isinstance(engine, Interruptible):
            engine.interrupt()


def _inputs_ok(step: Step, status: Mapping[str, str]) -> bool:
    return all(status.get(i) in ("succeeded", "warned") for i in step.inputs)


class _InOrder:
    """Passes step events on in a fixed order of steps: a step's events wait until every
    step before it has ended (so logs of parallel runs are deterministic)."""

    def __init__(self, order: list[str], emit: Callable[[StepEvent], None]) -> None:
        self._order = order
        self._emit = emit
        self._waiting: dict[str, list[StepEvent]] = {}
        self._ended: set[str] = set()
        self._next = 0

    def add(self, event: StepEvent) -> None:
        if event.status not in ("running", "waiting", "retrying"):
            self._ended.add(event.step)
        self._waiting.setdefault(event.step, []).append(event)
        while self._next < len(self._order):
            step = self._order[self._next]
            for waiting in self._waiting.pop(step, []):
                self._emit(waiting)
            if step not in self._ended:
                break
            self._next += 1

    def flush(self) -> None:
        """Pass on every event still held back (the run stops early), in order."""
        for step in self._order[self._next :]:
            for waiting in self._waiting.pop(step, []):
                self._emit(waiting)
        self._next = len(self._order)


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
    sql = f"SELECT count(*) AS n FROM {engine.quote(table)}"
    scalar = getattr(engine, "scalar", None)  # one value, without a read's machinery
    if scalar is not None:
        return int(scalar(sql))
    found = engine.read_batches(Query(sql))
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


def _sample_text(row: Mapping[str, object], tested: Sequence[str]) -> str:
    """A failing row, the columns the check tests first: `VendorID=NULL | fare_amount=8.50`."""
    first = {k.lower() for k in tested}
    mine = {k: v for k, v in row.items() if k.lower() in first}
    rest = {k: v for k, v in row.items() if k.lower() not in first}
    if not mine or not rest:
        return _row_text(row)
    return f"{_row_text(mine)} | {_row_text(rest)}"


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
    resume: RunRecord | None = None,
    skip_unchanged: bool = False,
    jobs: int = 1,
) -> RunResult:
    """Execute `plan` once (only the steps `only` names, when given), recording it in the
    project's `.flowc/state.db`; `resume`: a run of `find_resumable`."""
    store = StateStore.open(root, config.secret_values(profile) | secrets.in_project(root))
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
            resume=resume,
            skip_unchanged=skip_unchanged,
            jobs=jobs,
        )
        return executor.run()
    finally:
        store.close()


def find_resumable(plan: Plan, root: Path, which: str) -> RunRecord:
    """The run `--resume` names (`last`: the latest of this pipeline and profile); a
    `ValueError` saying why when it cannot be resumed."""
    store = StateStore.open(root)
    try:
        if which == "last":
            found = store.latest_run(plan.pipeline.name, plan.profile)
            if found is None:
                raise ValueError(f"--resume: `{plan.pipeline.name}` has no run to resume")
        else:
            detail = store.show_run(which)
            if detail is None:
                raise ValueError(f"--resume: no run `{which}` (see `flowc runs`)")
            found = detail.run
    finally:
        store.close()
    if (found.pipeline, found.profile) != (plan.pipeline.name, plan.profile):
        raise ValueError(
            f"--resume: run {found.id} is of `{found.pipeline}` with profile `{found.profile}`"
        )
    if found.status == "succeeded":
        raise ValueError(f"--resume: run {found.id} succeeded; there is nothing to resume")
    if found.stage is None:
        raise ValueError(f"--resume: run {found.id} was made by an older flowc; run it again")
    return found
