"""Planning: a checked spec becomes the steps of a `Plan`, for one profile.

The passes, in order:

1. `place` (placement.py): every node gets a connection of the profile: its own `target`,
   else the pipeline's, else `local`; a `table(conn, ...)` source lives on `conn`, a table
   sink writes to its `conn`, a file sink reads its input where the input lives.
2. `materialize` (placement.py, LANGUAGE §4.2): a Python transform, a loaded source and a
   SQL transform without a `materialize` are tables, except that a SQL transform read by
   exactly one SQL transform on the same connection, by nothing else, and without `expect`
   is ephemeral.
3. `StepBuilder` (steps.py) walks the nodes in topological order and emits the steps of
   each kind (load, python, sql, check, transfer, export); how their queries read nodes is
   `queries.py`, how columns are named `columns.py`, the payloads the spec alone decides
   `payloads.py`. SQL comes from `codegen`.
4. `fingerprint` hashes each step with its upstreams' hashes, and makes the `Step`s.

This module runs them and assembles the plan: its pipeline, parameters, connections and
where each node went.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from flowc.compiler import ir, plan
from flowc.compiler.analysis import dag
from flowc.compiler.codegen.generate import Problem
from flowc.compiler.planning.fingerprint import fingerprint_steps
from flowc.compiler.planning.payloads import scalar
from flowc.compiler.planning.placement import AnyNode, Placed, is_sql, place, placed
from flowc.compiler.planning.steps import StepBuilder
from flowc.project import config
from sqlglot import exp


@dataclass(frozen=True)
class Planned:
    plan: plan.Plan
    problems: list[Problem]


def plan_spec(
    spec: ir.Spec,
    trees: Mapping[str, exp.Query],
    order: Sequence[str],
    *,
    project: str,
    profile: config.Profile,
    consume: bool = False,
    known: set[str] | None = None,
) -> Planned:
    """The plan of a checked, error-free `spec` for `profile`.

    `trees` are the analysis' parsed queries. With `consume`, they are rewritten in place
    (the caller will not read them again); otherwise each is copied first. `known`: the
    nodes whose columns were inferred, when not all were (see `columns_needed`).
    """
    pipeline = spec.pipeline
    assert pipeline is not None, "a spec without errors has a pipeline"
    where = placed(spec, pipeline)
    builder = StepBuilder(where, trees, order, profile, consume=consume, known=known)
    for name in order:
        builder.node(where.nodes[name])
    steps = fingerprint_steps(builder.steps)
    result = plan.Plan(
        plan_version=plan.PLAN_VERSION,
        project=project,
        profile=profile.name,
        pipeline=_pipeline_info(spec, pipeline),
        params=[_param(p) for p in pipeline.params],
        connections=builder.queries.connections(),
        nodes=_node_infos(where, builder),
        steps=steps,
    )
    problems = [p for r in builder.queries.renderers.values() for p in r.problems]
    return Planned(result, builder.problems + problems)


def columns_needed(spec: ir.Spec) -> set[str]:
    """The nodes whose columns a plan of `spec` may show, on any profile: what is not a SQL
    transform (loads, Python steps, sinks), what one of those reads, what a query reads from
    another connection (a transfer) and what a check names. The planner asks for no other
    node's columns, so `flowc compile` infers only these when the check cache vouches that
    the spec is clean (`infer_schemas(only=...)`)."""
    if spec.pipeline is None:
        return {node.name for node in spec.nodes}
    graph = dag.upstream_edges(spec)
    homes = place(spec, spec.pipeline, graph)
    names = {node.name for node in spec.nodes}
    needed: set[str] = set()
    for node in spec.nodes:
        if not is_sql(node):
            needed.add(node.name)
        for edge in graph[node.name]:
            if not is_sql(node) or homes[node.name] != homes[edge.upstream]:
                needed.add(edge.upstream)
        for expectation in node.expectations:
            values = [*expectation.call.args, *(k.value for k in expectation.call.keywords)]
            needed |= {v.dotted for v in values if isinstance(v, ir.Ref) and v.dotted in names}
    return needed


# --- where each node went ---------------------------------------------------------------------


def _node_infos(where: Placed, builder: StepBuilder) -> dict[str, plan.NodeInfo]:
    infos = {}
    for name, node in sorted(where.nodes.items()):
        if node.unparsed:
            continue
        infos[name] = plan.NodeInfo(
            kind=node.kind,
            materialization=where.kinds.get(name),
            connection=where.homes.get(name),
            step=builder.main.get(name) if name not in builder.inlined else None,
            inlined_into=builder.inlined.get(name, []),
            external=_external(node, where, builder),
            internal=_internal(node, where, builder),
        )
    return infos


def _external(node: AnyNode, where: Placed, builder: StepBuilder) -> str | None:
    """A `table(...)` source's table, its parts as the engine names them, dotted."""
    call = node.from_ if isinstance(node, ir.SourceNode) else None
    if call is None or call.name != "table" or len(call.args) < 2:
        return None
    return ".".join(builder.queries.relation_parts(node.name, where.homes[node.name]))


def _internal(node: AnyNode, where: Placed, builder: StepBuilder) -> bool:
    """Whether `node`'s table goes to the internal schema: a source or transform that
    builds a table or view, not marked `publish = true`."""
    if isinstance(node, ir.SinkNode) or node.publish:
        return False
    if _external(node, where, builder) is not None:
        return False
    return where.kinds.get(node.name) != "ephemeral" and node.name in where.homes


# --- the pipeline -----------------------------------------------------------------------------


def _pipeline_info(spec: ir.Spec, pipeline: ir.Pipeline) -> plan.PipelineInfo:
    return plan.PipelineInfo(
        name=pipeline.name,
        description=pipeline.description,
        spec=_relative(spec.file, spec.root),
        dialect=pipeline.dialect,
        schedule=pipeline.schedule.value if pipeline.schedule else None,
        catchup=pipeline.catchup.dotted if pipeline.catchup else None,
        internal_schema=(
            pipeline.internal_schema.value if pipeline.internal_schema else plan.INTERNAL_SCHEMA
        ),
    )


def _relative(file: str, root: str) -> str:
    try:
        return Path(file).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return Path(file).name


def _param(param: ir.Param) -> plan.PipelineParam:
    return plan.PipelineParam(name=param.name, type=param.type, default=scalar(param.default))
