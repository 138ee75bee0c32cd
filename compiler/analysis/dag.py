"""The DAG pass: the graph of nodes, its topological order, and every cycle, reported once.

Edges come from SQL table references (filled by the SQL pass), a Python transform's
`inputs` and a sink's `input`. The order is deterministic: among ready nodes, file order.
"""

from __future__ import annotations

import heapq

from flowc.compiler import ir
from flowc.compiler.diagnostics import Diagnostics

Graph = dict[str, list[ir.Edge]]  # node -> the edges to its upstreams, in file order


def upstream_edges(spec: ir.Spec) -> Graph:
    """Every node's upstream edges, deduplicated, to existing nodes only."""
    names = {node.name for node in spec.nodes}
    graph: Graph = {}
    for node in spec.nodes:
        edges = list(node.edges)
        if isinstance(node, ir.TransformNode):
            edges += [ir.Edge(upstream=ref.dotted, span=ref.span) for ref in node.inputs]
        if isinstance(node, ir.SinkNode) and node.input is not None:
            edges.append(ir.Edge(upstream=node.input.dotted, span=node.input.span))
        first: dict[str, ir.Edge] = {}
        for edge in edges:
            if edge.upstream in names:
                first.setdefault(edge.upstream, edge)
        graph[node.name] = list(first.values())
    return graph


def order(spec: ir.Spec, diagnostics: Diagnostics) -> list[str]:
    """Node names in topological order; nodes on or below a cycle are left out."""
    graph = upstream_edges(spec)
    for cycle in _cycles(graph, [n.name for n in spec.nodes]):
        _report_cycle(cycle, graph, diagnostics)
    return _topological(graph, [n.name for n in spec.nodes])


def _topological(graph: Graph, file_order: list[str]) -> list[str]:
    position = {name: index for index, name in enumerate(file_order)}
    waiting = {name: len(graph[name]) for name in file_order}
    downstream: dict[str, list[str]] = {name: [] for name in file_order}
    for name in file_order:
        for edge in graph[name]:
            downstream[edge.upstream].append(name)
    ready = [position[name] for name in file_order if waiting[name] == 0]
    heapq.heapify(ready)
    result: list[str] = []
    while ready:
        name = file_order[heapq.heappop(ready)]
        result.append(name)
        for child in downstream[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, position[child])
    return result


def _cycles(graph: Graph, file_order: list[str]) -> list[list[str]]:
    """One cycle per strongly connected component that has one (Tarjan, iteratively)."""
    position = {name: index for index, name in enumerate(file_order)}
    cycles = []
    for component in _components(graph, file_order):
        members = set(component)
        start = min(component, key=position.__getitem__)
        if len(component) > 1 or any(e.upstream == start for e in graph[start]):
            cycles.append(_cycle_through(start, graph, members))
    return sorted(cycles, key=lambda cycle: position[cycle[0]])


def _components(graph: Graph, file_order: list[str]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in file_order:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child_index = work.pop()
            if child_index == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            edges = graph[node]
            if child_index < len(edges):
                work.append((node, child_index + 1))
                child = edges[child_index].upstream
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            for edge in edges:
                if edge.upstream in on_stack:
                    low[node] = min(low[node], low[edge.upstream])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _cycle_through(start: str, graph: Graph, members: set[str]) -> list[str]:
    """A shortest cycle from `start` back to itself inside one component (BFS)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        next_frontier = []
        for node in frontier:
            for edge in graph[node]:
                if edge.upstream == start:
                    return _unwind(node, previous, start)
                if edge.upstream in members and edge.upstream not in previous:
                    previous[edge.upstream] = node
                    next_frontier.append(edge.upstream)
        frontier = next_frontier
    return [start]


def _unwind(last: str, previous: dict[str, str], start: str) -> list[str]:
    path = [last]
    while path[-1] != start:
        path.append(previous[path[-1]])
    return path[::-1]


def _report_cycle(cycle: list[str], graph: Graph, diagnostics: Diagnostics) -> None:
    # Edges point upstream, so walking them gives "a reads b reads c reads a": print it
    # in data-flow order instead, the way a person draws the pipeline.
    flow = [cycle[0], *reversed(cycle[1:]), cycle[0]]
    reader = cycle[0]
    read = cycle[1] if len(cycle) > 1 else cycle[0]
    span = next(e.span for e in graph[reader] if e.upstream == read)
    diagnostics.report(
        "F0401",
        span,
        path=" -> ".join(flow),
        hint=f"`{reader}` reads `{read}`, which depends on `{reader}`; break one of these edges",
    )
