"""The DAG pass: topological order, and each cycle reported once with its full path."""

from __future__ import annotations

from pathlib import Path

from flowc.compiler import ir
from flowc.compiler.analysis import dag
from flowc.compiler.analysis.bind import Scope, bind
from flowc.compiler.diagnostics import Diagnostics
from flowc.compiler.syntax.parser import parse


def spec_of(text: str) -> ir.Spec:
    document, diagnostics = parse(text, "t.flow")
    scope = Scope(root=Path(), connections={"dev": frozenset({"local"})})
    spec = bind(document, scope, diagnostics)
    assert not diagnostics.has_errors, list(diagnostics)
    return spec


def python_node(name: str, *inputs: str) -> str:
    listed = ", ".join(inputs)
    return f'transform {name} {{\n  python = "tests/blocks.py:f"\n  inputs = [{listed}]\n}}\n'


HEADER = 'pipeline p { }\nsource src { from = csv("x.csv") }\n'


def cycles(text: str) -> list[tuple[str, str]]:
    diagnostics = Diagnostics()
    dag.order(spec_of(text), diagnostics)
    return [(d.message, d.span.start_text()) for d in diagnostics]


def test_order_follows_edges_then_file_order() -> None:
    text = HEADER + python_node("b", "a") + python_node("a", "src") + python_node("c", "src")
    assert dag.order(spec_of(text), Diagnostics()) == ["src", "a", "b", "c"]


def test_self_cycle() -> None:
    assert cycles(HEADER + python_node("a", "a")) == [("cycle in the pipeline: a -> a", "5:13")]


def test_two_node_cycle_reported_once() -> None:
    text = HEADER + python_node("a", "b") + python_node("b", "a")
    assert cycles(text) == [("cycle in the pipeline: a -> b -> a", "5:13")]


def test_three_node_cycle_in_data_flow_order() -> None:
    # a reads c, b reads a, c reads b: data flows a -> b -> c -> a.
    text = HEADER + python_node("a", "c") + python_node("b", "a") + python_node("c", "b")
    assert cycles(text) == [("cycle in the pipeline: a -> b -> c -> a", "5:13")]


def test_nodes_below_a_cycle_are_left_out_of_the_order() -> None:
    text = HEADER + python_node("a", "b") + python_node("b", "a") + python_node("d", "a")
    assert dag.order(spec_of(text), Diagnostics()) == ["src"]


def test_two_independent_cycles_are_both_reported() -> None:
    text = HEADER + python_node("a", "a") + python_node("b", "c") + python_node("c", "b")
    assert [m for m, _ in cycles(text)] == [
        "cycle in the pipeline: a -> a",
        "cycle in the pipeline: b -> c -> b",
    ]


def test_long_chain_does_not_recurse() -> None:
    nodes = [python_node("n0", "src")] + [python_node(f"n{i}", f"n{i - 1}") for i in range(1, 3000)]
    order = dag.order(spec_of(HEADER + "".join(nodes)), Diagnostics())
    assert order[-1] == "n2999"
