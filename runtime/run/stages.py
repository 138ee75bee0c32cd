"""How a run is split and what of earlier runs it can keep (executor.py, "Stages").

A run builds aside: on connections whose engines can (`Staging`: DuckDB, Postgres) every step
commits on its own into a stage schema of the run, and one last transaction publishes the
stage under the real names and runs the *deferred* steps: those that write where users read
(table and file sinks), change a table in place (incremental models), run on an engine that
cannot build aside (BigQuery), and everything downstream of them.

Because staged steps commit one by one, a run that fails or is killed can be resumed: the
steps that finished (and whose fingerprints are unchanged) stand in the stage. And a step
that did the same work on the same inputs in the last successful run can be left out
(`--skip-unchanged`): its table is read where it was published.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TypeVar

from flowc.compiler.plan import (
    ExportStep,
    FileSink,
    LoadStep,
    Plan,
    PythonStep,
    SqlStep,
    Step,
    TransferStep,
)
from flowc.runtime.errors import StepError
from flowc.runtime.io import sources
from flowc.runtime.state import StateStore

T = TypeVar("T")
STAGING_TYPES = frozenset({"duckdb", "postgres"})  # connection types whose engines stage
FAILPOINT = "FLOWC_FAILPOINT"  # fault injection for tests: `kill-before:STEP`, `kill-after:STEP`


def stage_prefix(plan: Plan) -> str:
    """The start of the names of a pipeline's stage schemas: `_flowc_green_taxi_`."""
    slug = re.sub(r"[^a-z0-9]+", "_", plan.pipeline.name.lower()).strip("_")[:24]
    return f"_flowc_{slug}_"


def stage_name(plan: Plan, run_id: str) -> str:
    """The stage schema of a run: `_flowc_green_taxi_20201101_060000_3fa9c1`."""
    return stage_prefix(plan) + re.sub(r"[^a-z0-9]+", "_", run_id.lower())


def deferred_steps(plan: Plan, staging: Collection[str]) -> set[str]:
    """The steps that run in the run's last transaction: exports, incremental models, steps
    on connections that cannot stage, steps writing qualified names, and their downstream."""
    deferred: set[str] = set()
    for step in plan.steps:  # in plan order: a step's inputs come before it
        if (
            isinstance(step, ExportStep)
            or (isinstance(step, SqlStep) and step.incremental is not None)
            or any(i in deferred for i in step.inputs)
            or any(name not in staging for name in connections_of(step))
            or any(out.name and "." in out.name for out in step.outputs if out.connection)
        ):
            deferred.add(step.id)
    return deferred


def published_names(
    plan: Plan, staging: Collection[str], built: Collection[str], *, internal: bool | None = None
) -> dict[str, list[str]]:
    """Per connection, the tables and views that the steps in `built` left in the stage;
    `internal`: only those of nodes that go to the internal schema (True) or not (False)."""
    names: dict[str, list[str]] = {}
    for step in plan.steps:
        if step.id not in built or step.kind == "export":
            continue
        for output in step.outputs:
            if not (output.connection and output.connection in staging and output.name):
                continue
            if internal is None or is_internal(plan, output.node) == internal:
                names.setdefault(output.connection, []).append(output.name)
    return names


def is_internal(plan: Plan, node: str) -> bool:
    """Whether `node`'s table lives in the pipeline's internal schema (not published)."""
    info = plan.nodes.get(node)
    return info is not None and info.internal


def internal_names(plan: Plan) -> dict[str, set[str]]:
    """Per connection, the tables of the nodes not published: they go to its internal schema."""
    found: dict[str, set[str]] = {}
    for step in plan.steps:
        for output in step.outputs:
            if output.connection and output.name and is_internal(plan, output.node):
                found.setdefault(output.connection, set()).add(output.name)
    return found


def input_digest(step: Step, root: Path) -> str | None:
    """A digest of what a load step reads from files (path, size, modification time); None
    when the step reads nothing from files, or reads what flowc cannot see change."""
    source = step.source if isinstance(step, LoadStep) else None
    if source is None or source.kind == "http" or not source.path:
        return None
    try:
        files = sources.resolve_paths(root, source.path)
    except (StepError, OSError):
        return None
    lines = []
    for path in files:
        stat = path.stat()
        lines.append(f"{os.path.relpath(path, root)}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def unchanged_steps(
    plan: Plan,
    store: StateStore,
    params: Mapping[str, object],
    root: Path,
    *,
    digest: Callable[[Step], str | None] | None = None,
) -> set[str]:
    """The steps whose fingerprint, parameter values and inputs are those of their last
    successful run, and whose inputs are all unchanged too. `digest`: `input_digest` of a
    step (a run passes its own, so that the digest it records is the one compared here)."""
    digest = digest or (lambda step: input_digest(step, root))
    published = store.published_steps(plan.pipeline.name, plan.profile)
    now = json.loads(store.params_text(params))
    externals = _externals(plan)
    found: set[str] = set()
    for step in plan.steps:
        last = published.get(step.id)
        if (
            last is None
            or last.fingerprint != step.fingerprint
            or last.params != now
            or not all(i in found for i in step.inputs)
            or _reads_outside(step, plan, externals)
            or (step.kind == "load" and (last.inputs is None or last.inputs != digest(step)))
            or not _outputs_exist(step, root)
        ):
            continue
        found.add(step.id)
    return found


def needed_again(plan: Plan, done: Mapping[str, T], wanted: Collection[str]) -> dict[str, T]:
    """`done` less the steps that must run again anyway: rows handed to Python are held in
    memory only, so a Python step (or a transfer into Python) reruns when a step that reads
    it runs."""
    kept = {k: v for k, v in done.items() if k in wanted}
    changed = True
    while changed:
        changed = False
        for step in plan.steps:
            if step.id not in wanted or step.id in kept:
                continue
            for input_id in step.inputs:
                if input_id in kept and _held_in_python(plan.step(input_id)):
                    del kept[input_id]
                    changed = True
    return kept


def failpoint(when: str, step_id: str) -> None:
    """Kill this process (as `kill -9` would) where `FLOWC_FAILPOINT` says: tests of resume."""
    if os.environ.get(FAILPOINT) == f"{when}:{step_id}":
        os.kill(os.getpid(), signal.SIGKILL)


def connections_of(step: Step) -> list[str]:
    """The connections a step works on."""
    names = [step.connection] if step.connection else []
    if isinstance(step, TransferStep):
        names += [c for c in (step.transfer.from_connection, step.transfer.to_connection) if c]
    return names


def _held_in_python(step: Step) -> bool:
    if isinstance(step, PythonStep):
        return True
    return isinstance(step, TransferStep) and step.transfer.to_connection is None


def _externals(plan: Plan) -> dict[str, list[str]]:
    """Per connection, the (lower-case, unqualified) names of tables the pipeline reads from
    outside (`table(...)` sources)."""
    found: dict[str, list[str]] = {}
    for node in plan.nodes.values():
        if node.external and node.connection:
            found.setdefault(node.connection, []).append(node.external.split(".")[-1].lower())
    return found


def _reads_outside(step: Step, plan: Plan, externals: Mapping[str, list[str]]) -> bool:
    """Whether the step reads data that can change without flowc knowing: a Python source,
    an http source, or (by its SQL's text, erring on the side of rerunning) a `table(...)`
    source."""
    node = plan.nodes.get(step.node)
    if isinstance(step, PythonStep):
        return node is not None and node.kind == "source"
    if isinstance(step, LoadStep) and step.source.kind == "http":
        return True
    text = " ".join(step.sql or []).lower()
    return any(name in text for c in connections_of(step) for name in externals.get(c, []))


def _outputs_exist(step: Step, root: Path) -> bool:
    """A file sink's output is still there (a table's is checked by reading it later)."""
    if not isinstance(step, ExportStep) or not isinstance(step.sink, FileSink):
        return True
    sink = step.sink
    if not sink.path:
        return True
    return (root / sink.path).exists()
