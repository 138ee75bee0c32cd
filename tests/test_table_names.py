"""Whatever `flowc check` accepts as a table name compiles and runs; what no engine of the
profiles can have is F0313 at the string (issue: names like `main.it's` crashed compile with
exit 3, `main."a b"` passed check and failed at run time)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from flowc.compiler.analysis import project_file
from flowc.compiler.analysis.tables import table_problem
from flowc.compiler.driver.compile import compile_spec
from flowc.runtime.run.executor import run_plan
from flowc_cli import flowc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pg_server import PgDatabase

SPEC = """\
pipeline p {
  target = warehouse
}

source trips {
  from = csv("trips.csv", header = true)
  columns { id int }
}

sink out {
  input = trips
  to    = table(warehouse, NAME)
}
"""

PROFILES = """\
[project]
name = "p"
default_profile = "duck"

[profiles.duck.warehouse]
type = "duckdb"
path = "w.duckdb"

[profiles.pg.warehouse]
type = "postgres"
host = "${POSTGRES_HOST:-localhost}"
port = "${POSTGRES_PORT:-5432}"
dbname = "${POSTGRES_DBNAME:-x}"
user = "${POSTGRES_USER:-x}"

[profiles.bq.warehouse]
type = "bigquery"
project = "local"
dataset = "d"
"""


def project(folder: Path, name: str) -> Path:
    (folder / "flow.toml").write_text(PROFILES)
    (folder / "trips.csv").write_text("id\n1\n2\n")
    (folder / "p.flow").write_text(SPEC.replace("NAME", json.dumps(name, ensure_ascii=False)))
    return folder / "p.flow"


@pytest.mark.parametrize(
    "name", ["main.it's", "main.x/*", "main.", "", "a.b.c.d", '"a.b".c', "x y", "t()"]
)
def test_names_no_engine_can_have_are_reported_at_check(tmp_path: Path, name: str) -> None:
    spec = project(tmp_path, name)
    result = flowc("check", "p.flow", "--profile", "all", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error[F0313]:" in result.stdout
    assert "--> p.flow:12:28" in result.stdout
    for command in ("compile", "explain"):
        ran = flowc(command, str(spec.name), cwd=tmp_path)
        assert ran.returncode == 1, ran.stdout + ran.stderr  # errors, never exit 3
        assert "Traceback" not in ran.stderr


@pytest.mark.parametrize(
    ("name", "profile", "detail"),
    [
        ("x" * 64, "pg", "Postgres cuts names at 63"),
        ('"my-data".t', "bq", "the BigQuery dataset `my-data`"),
        ('d."it\'s"', "bq", "`it's` has characters BigQuery does not allow"),
    ],
)
def test_names_one_engine_cannot_have_are_reported_for_its_profile(
    tmp_path: Path, name: str, profile: str, detail: str
) -> None:
    project(tmp_path, name)
    fine = flowc("check", "p.flow", cwd=tmp_path)  # on DuckDB, each is a good name
    assert fine.returncode == 0, fine.stdout
    result = flowc("check", "p.flow", "--profile", profile, cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert detail in result.stdout


@pytest.mark.parametrize("name", ['main."a b"', 'main."it\'s"', '"Mixed"."Case Name"', "plain"])
def test_odd_names_check_accepts_run_on_duckdb_and_postgres(
    tmp_path: Path, name: str, pg: PgDatabase
) -> None:
    project(tmp_path, name)
    for profile in ("duck", "pg"):
        result = flowc("run", "p.flow", "--profile", profile, cwd=tmp_path, env=pg.env())
        assert result.returncode == 0, result.stdout + result.stderr
    table = name.replace('"', "").split(".")
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        quoted = ".".join(f'"{p}"' for p in table)
        assert con.execute(f"SELECT count(*) FROM {quoted}").fetchall() == [(2,)]
    assert pg.query(f"SELECT count(*) FROM {quoted}") == [(2,)]


names = st.text(
    alphabet=st.sampled_from(list("ab_1 .\"'`/*-;()é\\\x00"))
    | st.characters(blacklist_categories=("Cc", "Cs")),
    max_size=12,
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names)
def test_a_name_check_accepts_runs_on_duckdb(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    folder = tmp_path_factory.mktemp("name")
    spec = project(folder, name)
    result = compile_spec(spec, profile="duck", env={})
    accepted = not result.has_errors
    assert accepted == (table_problem(name, "duckdb", frozenset({"duckdb"}), source=False) is None)
    if not accepted:
        assert {d.code for d in result.diagnostics if d.severity == "error"} == {"F0313"}
        return
    _, [profile], _ = project_file.load_project(folder, profile="duck", env={})
    ran = run_plan(result.compiled[0].plan, profile, folder, params={})
    assert ran.status == "succeeded", ran
