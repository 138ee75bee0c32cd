"""The kinds of plan step: each kind has its own fields, required where the runtime needs
them, so a plan that lacks one is refused when it is read (not when its step runs), and a
plan of another version is refused too: `flowc run` compiles a cached one again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flowc.compiler import plan
from pydantic import ValidationError
from test_plancache import project, run

COMMON: dict[str, Any] = {"fingerprint": "f", "inputs": [], "outputs": []}
TABLE = {"node": "trips", "connection": "local", "name": "trips"}

STEPS: dict[str, dict[str, Any]] = {
    "load": {
        "id": "trips",
        "node": "trips",
        "kind": "load",
        "connection": "local",
        "materialization": "table",
        "source": {"kind": "csv", "path": "data/trips.csv", "options": {"header": True}},
        "outputs": [TABLE],
    },
    "sql": {
        "id": "clean",
        "node": "clean",
        "kind": "sql",
        "connection": "local",
        "materialization": "incremental",
        "sql": ["CREATE TABLE clean AS SELECT 1"],
        "incremental": {"strategy": "delete_insert", "update": ["INSERT INTO clean SELECT 1"]},
        "fused": ["picked"],
    },
    "python": {
        "id": "scored.py",
        "node": "scored",
        "kind": "python",
        "python": {"path": "blocks/score.py", "function": "score", "sha256": "0" * 64},
        "isolate": True,
    },
    "check": {
        "id": "trips.not_null(id)",
        "node": "trips",
        "kind": "check",
        "connection": "local",
        "sql": ["SELECT 1 WHERE false"],
        "check": {
            "check": "not_null",
            "description": "not_null(id)",
            "node": "trips",
            "on_fail": "error",
        },
        "values": [{"name": "flowc_value_1", "value": "a"}],
    },
    "transfer": {
        "id": "trips.into.scored.py",
        "node": "trips",
        "kind": "transfer",
        "connection": "local",
        "sql": ['SELECT * FROM "trips"'],
        "transfer": {"node": "trips", "from_connection": "local"},
    },
    "export": {
        "id": "out",
        "node": "out",
        "kind": "export",
        "connection": "local",
        "sql": ['SELECT * FROM "trips"'],
        "sink": {"kind": "parquet", "path": "out/trips.parquet"},
    },
}


def step(kind: str, **changed: Any) -> dict[str, Any]:
    """The fields of a step of `kind`, with `changed` (None: the field left out)."""
    fields = {**COMMON, **STEPS[kind], **changed}
    return {name: value for name, value in fields.items() if value is not None}


def refusal(fields: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as refused:
        plan.STEP.validate_python(fields)
    return str(refused.value)


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_a_step_of_each_kind_round_trips_through_json(kind: str) -> None:
    made = plan.STEP.validate_python(step(kind))
    assert made.kind == kind
    text = made.model_dump_json(exclude_defaults=True)
    assert plan.STEP.validate_json(text) == made
    assert list(json.loads(text)) == sorted(json.loads(text))  # keys sorted, as in plan.json


def test_each_kind_is_its_own_model() -> None:
    models = {kind: type(plan.STEP.validate_python(step(kind))) for kind in STEPS}
    assert models == {
        "load": plan.LoadStep,
        "sql": plan.SqlStep,
        "python": plan.PythonStep,
        "check": plan.CheckStep,
        "transfer": plan.TransferStep,
        "export": plan.ExportStep,
    }


@pytest.mark.parametrize(
    ("kind", "missing"),
    [
        ("sql", "sql"),
        ("load", "source"),
        ("python", "python"),
        ("check", "check"),
        ("check", "sql"),
        ("transfer", "transfer"),
        ("export", "sink"),
        ("export", "sql"),
        ("export", "connection"),
    ],
)
def test_a_step_without_the_payload_of_its_kind_is_refused(kind: str, missing: str) -> None:
    message = refusal(step(kind, **{missing: None}))
    assert f"{kind}.{missing}\n  Field required" in message


@pytest.mark.parametrize(
    ("sink", "missing"),
    [
        ({"kind": "table", "connection": "local"}, "table.table"),
        ({"kind": "table", "table": "out"}, "table.connection"),
        ({"kind": "csv"}, "csv.path"),
    ],
)
def test_a_sink_without_where_it_writes_is_refused(sink: dict[str, Any], missing: str) -> None:
    assert f"export.sink.{missing}\n  Field required" in refusal(step("export", sink=sink))


def test_a_field_of_another_kind_is_refused() -> None:
    python = STEPS["python"]["python"]
    assert "sql.python\n  Extra inputs are not permitted" in refusal(step("sql", python=python))


def test_an_unknown_kind_is_refused() -> None:
    message = refusal({**step("sql"), "kind": "shell"})
    assert "does not match any of the expected tags" in message
    assert "'load', 'sql', 'python', 'check', 'transfer', 'export'" in message


def test_what_one_kind_implies_is_checked_when_the_step_is_read() -> None:
    assert "exactly when materialization is incremental" in refusal(step("sql", incremental=None))
    assert "a query exactly when it reads" in refusal(step("transfer", sql=None))
    assert "a table exactly when it writes" in refusal(
        step("transfer", transfer={"node": "trips", "from_connection": "local", "table": "t"})
    )
    assert "one output, the table it loads" in refusal(step("load", outputs=[]))


def test_the_plan_is_version_2_and_a_plan_of_version_1_is_refused() -> None:
    golden = Path(__file__).parent / "golden" / "fusion" / "duck" / "plan.json"
    data = json.loads(golden.read_text(encoding="utf-8"))
    assert data["plan_version"] == plan.PLAN_VERSION == 2
    assert plan.to_json(plan.Plan.model_validate(data)) == golden.read_text(encoding="utf-8")
    with pytest.raises(ValidationError, match="plan_version\n  Input should be 2"):
        plan.Plan.model_validate({**data, "plan_version": 1})


def test_a_cached_plan_of_version_1_is_compiled_again(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert run(root) == (True, [(2, "a"), (4, "a")])
    [entry] = (root / ".flowc" / "cache" / "plans").glob("*.json")
    cached = json.loads(entry.read_text(encoding="utf-8"))
    cached["plan"]["plan_version"] = 1  # as an older flowc wrote it
    entry.write_text(json.dumps(cached), encoding="utf-8")
    assert run(root) == (True, [(2, "a"), (4, "a")])  # compiled again, and cached
    assert run(root)[0] is False
