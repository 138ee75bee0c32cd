"""Literal values reach the engines bound by the driver, never spliced into SQL text.

`accepted_values` strings are placeholders in a check's SQL and values in the plan
(`Step.values`); each engine compares them as themselves: DuckDB in-process (a property over
arbitrary strings), a real Postgres whose database is set to `standard_conforming_strings =
off` (where a backslash in a string literal is an escape), and the BigQuery emulator. The same
Postgres keeps a transform's own string literals as written (the session pins the setting).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from bq_emulator import Emulator
from flowc.compiler.driver.compile import compile_spec
from flowc.compiler.plan import CheckStep, Plan
from flowc.runtime.engines.base import Query
from flowc.runtime.engines.duckdb import DuckDBEngine
from flowc_cli import FLOWC, flowc
from hypothesis import given, settings
from hypothesis import strategies as st
from pg_server import PgDatabase, profile_section

CRAFTED = [
    "x\\' ; DROP TABLE keep; --",
    "x\\'); DROP TABLE keep; --",
    "'); DROP TABLE keep; --",
    "\\",
    "\\\\'",
    "a%(x)s %s %% %(flowc_value_1)s",
    "$1 $flowc_value_1 @flowc_value_1 :x ?",
    "it's",
    'say "hi"',
    "line\nbreak\ttab\rreturn",
    "ünïcødé ☃",
    "",
]
PROFILES = """\
[project]
name = "p"
default_profile = "duck"

[profiles.duck.warehouse]
type = "duckdb"
path = "w.duckdb"

[profiles.bq.warehouse]
type         = "bigquery"
project      = "${GCP_PROJECT:-local}"
dataset      = "d"
api_endpoint = "${BQ_API_ENDPOINT:-http://127.0.0.1:9050}"
"""


def flow_string(text: str) -> str:
    """`text` as a .flow string literal (its escapes: \\" \\\\ \\n \\t \\r \\uXXXX)."""
    named = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    out = [
        named.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 or c == "\x7f" else c) for c in text
    ]
    return '"' + "".join(out) + '"'


def spec(listed: list[str], missing: list[str]) -> str:
    """A source of labels; one check lists every label, one (a warning) leaves `missing` out."""
    every = ", ".join(flow_string(v) for v in listed)
    some = ", ".join(flow_string(v) for v in listed if v not in missing)
    return f"""\
pipeline p {{
  target = warehouse
}}

source items {{
  from = json("items.jsonl")
  columns {{
    id     int  not null
    label  varchar
  }}
  expect {{
    accepted_values(label, [{every}])
    accepted_values(label, [{some}], on_fail = "warn")
  }}
}}

transform literal {{
  sql = \"\"\"SELECT 'a\\b' AS backslash, 'it''s' AS quote\"\"\"
}}
"""


def project(root: Path, listed: list[str], missing: list[str], profiles: str = PROFILES) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "flow.toml").write_text(profiles)
    (root / "p.flow").write_text(spec(listed, missing))
    rows = [json.dumps({"id": i, "label": v}) for i, v in enumerate(listed)]
    (root / "items.jsonl").write_text("\n".join(rows) + "\n")
    return root


def plan_of(root: Path, profile: str = "duck") -> Plan:
    result = compile_spec(root / "p.flow", profile=profile)
    assert not result.has_errors, [d.message for d in result.diagnostics]
    return result.compiled[0].plan


def checks(plan: Plan) -> list[CheckStep]:
    return [s for s in plan.steps if isinstance(s, CheckStep)]


@pytest.mark.parametrize("profile", ["duck", "bq"])
def test_the_plan_keeps_the_strings_as_values_beside_placeholders(
    tmp_path: Path, profile: str
) -> None:
    first, _ = checks(plan_of(project(tmp_path, CRAFTED, [CRAFTED[0]]), profile))
    assert [v.value for v in first.values] == CRAFTED
    assert [v.name for v in first.values] == [f"flowc_value_{i}" for i in range(1, 13)]
    sql = "\n".join(first.sql or [])
    assert "DROP" not in sql and "it's" not in sql and "it''s" not in sql
    mark = "$" if profile == "duck" else "@"
    assert f"{mark}flowc_value_12" in sql


def test_a_postgres_plan_binds_them_in_pyformat(tmp_path: Path) -> None:
    profiles = PROFILES + profile_section("pg", "warehouse")
    root = project(tmp_path, CRAFTED, [])
    (root / "flow.toml").write_text(profiles)
    env = {"POSTGRES_HOST": "h", "POSTGRES_PORT": "5432", "POSTGRES_DBNAME": "d"}
    env |= {"POSTGRES_USER": "u"}
    result = compile_spec(root / "p.flow", profile="pg", env=env)
    assert not result.has_errors, [d.message for d in result.diagnostics]
    first = checks(result.compiled[0].plan)[0]
    sql = "\n".join(first.sql or [])
    assert "%(flowc_value_1)s" in sql and "%(flowc_value_12)s" in sql
    assert "DROP" not in sql


def test_changing_a_listed_value_changes_the_check_fingerprint(tmp_path: Path) -> None:
    one = checks(plan_of(project(tmp_path / "a", ["a", "b"], [])))[0]
    other = checks(plan_of(project(tmp_path / "b", ["a", "c"], [])))[0]
    assert one.sql == other.sql
    assert one.fingerprint != other.fingerprint


_TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]))


@settings(max_examples=40, deadline=None)
@given(listed=st.lists(_TEXT, min_size=1, max_size=4), data=st.data())
def test_any_string_in_accepted_values_is_compared_as_itself_on_duckdb(
    listed: list[str], data: st.DataObject
) -> None:
    value = data.draw(st.one_of(st.sampled_from(listed), _TEXT), label="value")
    with tempfile.TemporaryDirectory() as folder:
        root = project(Path(folder), ["placeholder"], [])
        (root / "p.flow").write_text(spec(listed, []))
        step = checks(plan_of(root))[0]
    params = {v.name: v.value for v in step.values}
    with DuckDBEngine.connect(":memory:") as engine:
        engine.execute("CREATE TABLE items (id INTEGER, label VARCHAR)")
        engine.execute("INSERT INTO items VALUES (1, $label)", {"label": value})
        failing = engine.read_batches(Query((step.sql or [""])[-1], params)).read_all()
    assert failing.num_rows == (0 if value in listed else 1)


def _outcome(result: subprocess.CompletedProcess[str]) -> str:
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    # the first check passes (every label listed); the warning names the one row left out
    assert "items.check.1                  succeeded" in text or "failed: 1 row" in text, text
    return text


def test_crafted_strings_are_values_on_duckdb(tmp_path: Path) -> None:
    root = project(tmp_path, CRAFTED, [CRAFTED[0]])
    text = _outcome(flowc("run", "p.flow", cwd=root))
    assert "failed: 1 row" in text
    assert text.count("failed: 1 row") == 1


def test_crafted_strings_are_values_on_postgres_without_standard_strings(
    tmp_path: Path, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg.execute(f'ALTER DATABASE "{pg.dbname}" SET standard_conforming_strings = off')
    pg.execute("CREATE TABLE keep (x int); INSERT INTO keep VALUES (1)")
    assert pg.query("SHOW standard_conforming_strings") == [("off",)]
    root = project(tmp_path, CRAFTED, [CRAFTED[0]], PROFILES + profile_section("pg", "warehouse"))
    for name, value in pg.env().items():
        monkeypatch.setenv(name, value)
    result = flowc("run", "p.flow", "--profile", "pg", cwd=root)
    text = _outcome(result)
    assert text.count("failed: 1 row") == 1, text
    assert pg.query("SELECT x FROM keep") == [(1,)]  # the table survives
    labels = pg.query("SELECT label FROM flowc_internal.items ORDER BY id")
    assert [row[0] for row in labels] == CRAFTED
    # a transform's own literals keep their value: the session reads standard strings
    assert pg.query("SELECT backslash, quote FROM flowc_internal.literal") == [("a\\b", "it's")]


def test_crafted_strings_are_values_on_the_bigquery_emulator(
    tmp_path: Path, bigquery_emulator: Emulator
) -> None:
    root = project(tmp_path, CRAFTED, [CRAFTED[0]])
    environment = {
        **os.environ,
        "BQ_API_ENDPOINT": bigquery_emulator.endpoint,
        "GCP_PROJECT": f"flowc-{uuid.uuid4().hex[:8]}",
    }
    result = subprocess.run(
        [*FLOWC, "run", "p.flow", "--profile", "bq"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    text = _outcome(result)
    assert text.count("failed: 1 row") == 1, text
