"""`flowc graph`: the pipeline's DAG as Mermaid or Graphviz dot text.

Nodes are the spec's nodes (sources, transforms, sinks) labelled with their kind and, from
the plan, their materialization and connection; edges point from a node to its readers.
Output is deterministic: nodes in topological order, edges in file order.
"""

from __future__ import annotations

from flowc.compiler import ir, plan
from flowc.compiler.analysis import dag

_MERMAID_SHAPES = {"source": ("[(", ")]"), "transform": ("[", "]"), "sink": ("[/", "/]")}
_DOT_SHAPES = {"source": "cylinder", "transform": "box", "sink": "parallelogram"}


def render_graph(spec: ir.Spec, compiled: plan.Plan, fmt: str = "mermaid") -> str:
    """The DAG of `spec` in `fmt` (`mermaid` or `dot`)."""
    edges = [
        (edge.upstream, name)
        for name, upstream in dag.upstream_edges(spec).items()
        for edge in upstream
    ]
    order = [n.name for n in spec.nodes if n.name in compiled.nodes]
    return _dot(order, edges, compiled) if fmt == "dot" else _mermaid(order, edges, compiled)


def _label(name: str, info: plan.NodeInfo) -> str:
    detail: str = info.kind
    if info.materialization:
        detail += f", {info.materialization}"
    if info.connection:
        detail += f" @ {info.connection}"
    return f"{name}<br/>{detail}"


def _mermaid(order: list[str], edges: list[tuple[str, str]], compiled: plan.Plan) -> str:
    lines = ["flowchart LR"]
    for name in order:
        info = compiled.nodes[name]
        left, right = _MERMAID_SHAPES[info.kind]
        lines.append(f'  {name}{left}"{_label(name, info)}"{right}')
    for upstream, name in edges:
        style = "-.->" if compiled.nodes[upstream].materialization == "ephemeral" else "-->"
        lines.append(f"  {upstream} {style} {name}")
    return "\n".join(lines) + "\n"


def _dot(order: list[str], edges: list[tuple[str, str]], compiled: plan.Plan) -> str:
    lines = [f'digraph "{compiled.pipeline.name}" {{', "  rankdir=LR;"]
    for name in order:
        info = compiled.nodes[name]
        label = _label(name, info).replace("<br/>", "\\n")
        lines.append(f'  "{name}" [shape={_DOT_SHAPES[info.kind]}, label="{label}"];')
    for upstream, name in edges:
        style = " [style=dashed]" if compiled.nodes[upstream].materialization == "ephemeral" else ""
        lines.append(f'  "{upstream}" -> "{name}"{style};')
    return "\n".join([*lines, "}"]) + "\n"
