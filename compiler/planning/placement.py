"""Where each node runs and what it becomes: the planner's first two passes.

They decide, before any step exists, the connection of every node (`place`) and its
materialization (`materialize`); every later pass reads both from the `Placed` they make.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flowc.compiler import ir, plan
from flowc.compiler.analysis import dag

AnyNode = ir.SourceNode | ir.TransformNode | ir.SinkNode
DEFAULT_CONNECTION = "local"


@dataclass(frozen=True)
class Placed:
    """A checked spec with the connection (`homes`) and materialization (`kinds`) of each of
    its nodes."""

    spec: ir.Spec
    pipeline: ir.Pipeline
    graph: dag.Graph
    nodes: Mapping[str, AnyNode]
    homes: Mapping[str, str]
    kinds: Mapping[str, plan.Materialization | None]


def placed(spec: ir.Spec, pipeline: ir.Pipeline) -> Placed:
    graph = dag.upstream_edges(spec)
    homes = place(spec, pipeline, graph)
    kinds = materialize(spec, graph, homes)
    return Placed(spec, pipeline, graph, spec.node_map(), homes, kinds)


# --- pass 1: placement ------------------------------------------------------------------------


def place(spec: ir.Spec, pipeline: ir.Pipeline, graph: dag.Graph) -> dict[str, str]:
    """The connection of every node (for a file sink: where it reads its input)."""
    default = pipeline.target.dotted if pipeline.target else DEFAULT_CONNECTION
    homes: dict[str, str] = {}
    for node in spec.nodes:
        homes[node.name] = node.target.dotted if node.target else default
        call = node.from_ if isinstance(node, ir.SourceNode) else None
        if isinstance(node, ir.SinkNode):
            call = node.to
        if call is not None and call.name == "table" and isinstance(call.args[0], ir.Ref):
            homes[node.name] = call.args[0].dotted
    for node in spec.nodes:
        if isinstance(node, ir.SinkNode) and node.to is not None and node.to.name != "table":
            upstream = graph[node.name]
            homes[node.name] = homes[upstream[0].upstream] if upstream else default
    return homes


# --- pass 2: materialization ------------------------------------------------------------------


def materialize(
    spec: ir.Spec, graph: dag.Graph, homes: Mapping[str, str]
) -> dict[str, plan.Materialization | None]:
    """Each node's materialization; None for what flowc does not create (an external
    `table(...)` source, a sink)."""
    readers: dict[str, list[str]] = {n.name: [] for n in spec.nodes}
    for name, edges in graph.items():
        for edge in edges:
            readers[edge.upstream].append(name)
    nodes = spec.node_map()
    kinds: dict[str, plan.Materialization | None] = {}
    for node in spec.nodes:
        kinds[node.name] = _materialization(node, readers[node.name], nodes, homes)
    return kinds


def _materialization(
    node: AnyNode, readers: list[str], nodes: Mapping[str, AnyNode], homes: Mapping[str, str]
) -> plan.Materialization | None:
    if isinstance(node, ir.SinkNode):
        return None
    if isinstance(node, ir.SourceNode):
        return None if node.from_ is not None and node.from_.name == "table" else "table"
    if node.sql is None:
        return "table"
    if node.materialize is not None:
        word = node.materialize.dotted
        return word if word in ("view", "table", "incremental", "ephemeral") else "table"  # type: ignore[return-value]
    if len(readers) == 1 and not node.expectations:
        reader = nodes[readers[0]]
        if is_sql(reader) and homes[reader.name] == homes[node.name]:
            return "ephemeral"
    return "table"


def is_sql(node: AnyNode) -> bool:
    """Whether `node` is a SQL transform (its columns are what its query makes)."""
    return isinstance(node, ir.TransformNode) and node.sql is not None
