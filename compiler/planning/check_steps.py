"""The steps that test a node's `expect` entries: their ids and the `Check` they carry.

A check step's id is how people find it (`flowc run --select`, `flowc test` results), so it
is the expectation as the spec writes it; the runtime's test runner asks for the same ids.
"""

from __future__ import annotations

from collections.abc import Sequence

from flowc.compiler import ir, plan
from flowc.compiler.planning import expectations

# checks whose later arguments are no columns of the node: values, `node.column`
_FIRST_COLUMN_ONLY = frozenset({"accepted_values", "relationship"})


def check_payload(node: str, expectation: ir.Expectation) -> plan.Check:
    """What a check step of node `node` tests, and how its failures are shown."""
    call = expectation.call
    tested = [a.parts[0] for a in call.args if isinstance(a, ir.Ref)]
    return plan.Check(
        node=node,
        check=expectation.check,
        columns=tested[: 1 if expectation.check in _FIRST_COLUMN_ONLY else None],
        description=expectations.describe(call),
        line=call.span.line,
        on_fail=expectation.on_fail,
    )


def check_ids(node: str, calls: Sequence[ir.Call]) -> list[str]:
    """The step ids of a node's checks, in the order its `expect` block writes them."""
    named: dict[str, int] = {}
    return [check_id(node, call, named) for call in calls]


def check_id(node: str, call: ir.Call, named: dict[str, int]) -> str:
    """A check step is named after its expectation as the spec writes it (`on_fail` left
    out): `clean_trips.not_null(VendorID)`; the same check written twice gets `#2` (`named`
    counts the ids given so far)."""
    kept = tuple(k for k in call.keywords if k.name != "on_fail")
    base = f"{node}.{expectations.describe(call.model_copy(update={'keywords': kept}))}"
    named[base] = named.get(base, 0) + 1
    return base if named[base] == 1 else f"{base}#{named[base]}"
