"""`flowc test --expect`, second half: the pipeline's `expect` checks on the data it built.

The spec is planned for the profile (`--profile`, else the project's default) as `flowc run`
plans it, and each `check` step of the plan runs its query where the run would, on the
connection's published tables (DuckDB database files are opened read-only, and one that does
not exist yet is an error saying to run the pipeline first). A failing `on_fail = error`
check is a failed outcome with the count and a sample of the failing rows, as `flowc run`
reports it; a failing `warn` check passes with a note. The first half, the checks of a
tested node run on its result from the fixtures, lives in testrun.py.
"""

from __future__ import annotations

import contextlib
import time
from contextlib import ExitStack
from pathlib import Path

from flowc.compiler import ir, plan
from flowc.compiler.driver.check import Analysis
from flowc.project import config
from flowc.project.spans import Span
from flowc.runtime.engines.base import Engine, Internal, Query
from flowc.runtime.errors import StepError
from flowc.runtime.testing.testrun import Outcome

SAMPLES = 5


def check_built_data(
    analysis: Analysis, root: Path, project: str, profile: config.Profile
) -> list[Outcome]:
    """One outcome per `expect` check of the spec, run on the data of `profile`."""
    from flowc.compiler.planning.planner import plan_spec

    spec = analysis.spec
    planned = plan_spec(spec, analysis.trees, analysis.order, project=project, profile=profile)
    steps = [s for s in planned.plan.steps if isinstance(s, plan.CheckStep)]
    if not steps:
        return []
    params = _defaults(planned.plan)
    outcomes: list[Outcome] = []
    with ExitStack() as stack:
        engines: dict[str, Engine | StepError] = {}
        for step in steps:
            if step.connection not in engines:
                engine = _open(stack, profile, step.connection, root)
                _read_internal(engine, planned.plan, step.connection)
                engines[step.connection] = engine
            outcomes.append(_run_check(step, spec, engines[step.connection], params, profile))
    return outcomes


def _read_internal(engine: Engine | StepError, compiled: plan.Plan, connection: str) -> None:
    """Queries read the unpublished nodes in the internal schema, where a run put them; where
    there is none yet (a file built by an older flowc), in the connection's own schema."""
    from flowc.runtime.run.stages import internal_names

    names = internal_names(compiled).get(connection)
    if names and isinstance(engine, Internal):
        with contextlib.suppress(StepError):
            engine.use_internal(compiled.pipeline.internal_schema, names)


def _defaults(compiled: plan.Plan) -> dict[str, object]:
    from flowc.runtime.run.executor import bind_params

    return bind_params(compiled.params, {})


def _open(
    stack: ExitStack, profile: config.Profile, name: str | None, root: Path
) -> Engine | StepError:
    """The engine of connection `name`, or why there is none to read."""
    from flowc.runtime.engines import open_engine

    connection = profile.connections.get(name or "")
    if connection is None:
        return StepError(f"profile `{profile.name}` has no connection `{name}`")
    try:
        if isinstance(connection.settings, config.DuckDBSettings):
            engine = _read_only(connection.settings, root, connection.name)
        else:
            engine = open_engine(connection, root)
    except StepError as error:
        return error
    stack.callback(engine.close)
    return engine


def _read_only(settings: config.DuckDBSettings, root: Path, name: str) -> Engine:
    """A DuckDB database file opened read-only: checking never creates or changes one."""
    from flowc.runtime.engines.duckdb import MEMORY, DuckDBEngine

    path = root / settings.path
    if settings.path == MEMORY or not path.is_file():
        raise StepError(
            f"`{name}` has no built data yet ({settings.path} does not exist): "
            "run the pipeline first (`flowc run SPEC`)"
        )
    return DuckDBEngine.connect(path, read_only=True)


def _run_check(
    step: plan.CheckStep,
    spec: ir.Spec,
    engine: Engine | StepError,
    params: dict[str, object],
    profile: config.Profile,
) -> Outcome:
    check = step.check
    node = spec.node(check.node)
    started = time.perf_counter()
    outcome = Outcome(
        file=spec.file,
        test=f"expect:{step.id}",
        node=check.node,
        span=_span(node, check, step, spec.file),
        status="error",
        seconds=0.0,
        engine=f"{step.connection} (profile `{profile.name}`)",
    )
    try:
        if isinstance(engine, StepError):
            raise engine
        for statement in step.sql[:-1]:
            engine.execute(statement, params)
        found = engine.read_batches(Query(step.sql[-1], params)).read_all().to_pylist()
    except StepError as error:
        outcome.message = f"expect {check.description}: {error}"
        outcome.seconds = time.perf_counter() - started
        return outcome
    outcome.seconds = time.perf_counter() - started
    if not found:
        outcome.status = "passed"
        return outcome
    failures = int(found[0].get("_failures") or len(found))
    text = f"expect {check.description} failed: {failures} row(s)"
    samples = [{k: v for k, v in row.items() if k != "_failures"} for row in found[:SAMPLES]]
    if any(samples[0]):
        text += "; sample:\n" + "\n".join(f"  {_row_text(row)}" for row in samples)
    if check.on_fail == "warn":
        outcome.status = "passed"
        outcome.notes.append(f"warning: {text}")
    else:
        outcome.status, outcome.message = "failed", text
    return outcome


def _row_text(row: dict[str, object]) -> str:
    """`VendorID=3, fare_amount=8.50, ehail_fee=NULL`, as `flowc run` shows failing rows."""
    return ", ".join(f"{k}={'NULL' if v is None else v}" for k, v in row.items())


def _span(
    node: ir.SourceNode | ir.TransformNode | ir.SinkNode | None,
    check: plan.Check,
    step: plan.CheckStep,
    file: str,
) -> Span:
    """Where the check is written: its call in the node's `expect` block."""
    from flowc.project.spans import point

    if node is None:
        return point(file)
    from flowc.compiler.planning.check_steps import check_ids

    calls = [e.call for e in node.expectations]
    for call, step_id in zip(calls, check_ids(node.name, calls), strict=True):
        if step_id == step.id:
            return call.span
    return node.name_span
