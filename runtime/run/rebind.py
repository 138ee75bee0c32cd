"""Steps the compiler writes again once the run knows columns that `flowc check` could not.

A source or a Python block without `columns` (an `http(...)` CSV, a DataFrame) has the columns
its data has. Where a step's SQL must spell every column as its definition does (Postgres
compares quoted names exactly; BigQuery names a result column as the query spells it:
docs/engines.md), or where a sink names columns (`partition_by`, `key`), the plan marks the step
`resolve_at_run` with those nodes. Before such a step runs, the executor reads the columns of
the nodes' tables, the compiler plans the spec again with them as if declared, and the step's
statements and sink come from that plan: every name is resolved by the same passes as at check
time, and a name that is not there is reported as `flowc check` reports it, at its line.

One compile serves every step that waits for the same columns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from flowc.compiler import ir
from flowc.compiler.plan import Plan, Resolving, Step
from flowc.runtime.errors import StepError

Learned = Mapping[str, tuple[ir.Column, ...]]


class Rebinder:
    """Rewrites `resolve_at_run` steps of `plan` (compiled from the spec under `root`)."""

    def __init__(self, plan: Plan, root: Path) -> None:
        self.plan = plan
        self.root = root
        self._plans: dict[tuple[tuple[str, tuple[ir.Column, ...]], ...], Plan] = {}
        self._lock = threading.Lock()

    def bound(self, step: Step, columns_of: Callable[[str], tuple[ir.Column, ...]]) -> Step:
        """`step` as the compiler writes it knowing the columns of its `resolve_at_run`
        nodes (`columns_of` reads them from their tables)."""
        if not isinstance(step, Resolving) or not step.resolve_at_run:
            return step
        learned = {name: columns_of(name) for name in step.resolve_at_run}
        key = tuple(sorted(learned.items()))
        with self._lock:
            if key not in self._plans:
                self._plans[key] = self._compile(learned)
            plan = self._plans[key]
        found = next((s for s in plan.steps if s.id == step.id), None)
        if found is None:
            raise StepError(f"the spec changed since the run started: it has no step `{step.id}`")
        return found.model_copy(
            update={"fingerprint": step.fingerprint, "inputs": step.inputs, "resolve_at_run": []}
        )

    def _compile(self, learned: Learned) -> Plan:
        from flowc.compiler.driver.compile import compile_spec
        from flowc.compiler.render import file_lines, render_text

        result = compile_spec(
            self.root / self.plan.pipeline.spec, profile=self.plan.profile, learned=learned
        )
        if result.has_errors or not result.compiled:
            errors = [d for d in result.diagnostics if d.severity == "error"]
            shown = render_text(errors, file_lines({}), limit=10)
            names = " and ".join(f"`{n}`" for n in sorted(learned))
            raise StepError(f"with the columns {names} has in this run:\n{shown}")
        return result.compiled[0].plan
