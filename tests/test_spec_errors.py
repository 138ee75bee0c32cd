"""Run-time failures told in the spec's terms: an engine's refusal of a step's SQL is shown at
the .flow line and column of what it points at (F1001), not at a line of the SQL flowc wrote."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from flowc.runtime.run import spec_position
from flowc_cli import flowc

PROFILES = """\
[project]
name = "errors"
default_profile = "duck"

[profiles.duck.warehouse]
type = "duckdb"
path = ".flowc/warehouse.duckdb"

[profiles.pg.warehouse]
type     = "postgres"
host     = "${POSTGRES_HOST}"
port     = "${POSTGRES_PORT}"
dbname   = "${POSTGRES_DBNAME}"
user     = "${POSTGRES_USER}"
password = "${POSTGRES_PASSWORD:-}"
schema   = "public"

[profiles.bq.warehouse]
type         = "bigquery"
project      = "${GCP_PROJECT:-local}"
dataset      = "errors"
api_endpoint = "${BQ_API_ENDPOINT:-http://127.0.0.1:9050}"
"""

SPEC = """\
pipeline errors {
  target = warehouse
}

source raw {
  from = csv("data/x.csv")
  columns { a int  b int }
}

transform t {
  sql = \"\"\"
    SELECT a,
           b,
           lower(a) AS c
    FROM raw
  \"\"\"
}
"""


def project(folder: Path) -> Path:
    (folder / "data").mkdir()
    (folder / "data" / "x.csv").write_text("a,b\n1,2\n3,4\n")
    (folder / "flow.toml").write_text(PROFILES)
    (folder / "s.flow").write_text(SPEC)
    return folder


@pytest.mark.parametrize("profile", ["duck", "pg"])
def test_an_engine_refusing_a_steps_sql_is_shown_at_the_spec_line(
    profile: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    root = project(tmp_path)
    env: dict[str, str] = {}
    if profile == "pg":
        env = request.getfixturevalue("pg").env()
    assert flowc("check", "s.flow", cwd=root).returncode == 0
    result = flowc("run", "s.flow", "--profile", profile, cwd=root, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error[F1001]: the engine refused the SQL of `t`" in result.stderr, result.stderr
    assert "--> s.flow:14:12" in result.stderr, result.stderr
    assert "14 |            lower(a) AS c" in result.stderr
    assert "LINE " not in result.stderr  # no excerpt of the SQL flowc wrote
    assert "Traceback" not in result.stderr


def test_a_refused_sql_file_is_shown_at_its_line_in_the_file(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "sql").mkdir()
    (root / "sql" / "t.sql").write_text("SELECT a,\n  b,\n  lower(a) AS c\nFROM raw\n")
    spec = SPEC.replace(
        SPEC[SPEC.index('  sql = """') : SPEC.rindex("}")], 'sql = file("sql/t.sql")\n'
    )
    (root / "s.flow").write_text(spec)
    result = flowc("run", "s.flow", cwd=root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "--> sql/t.sql:3:3" in result.stderr, result.stderr
    assert "3 |   lower(a) AS c" in result.stderr


def test_a_data_test_the_engine_refuses_is_shown_at_the_test(tmp_path: Path) -> None:
    root = project(tmp_path)
    spec = SPEC.replace(
        "columns { a int  b int }",
        "columns { a int  b int }\n  expect { check(\"lower(a) = 'x'\") }",
    )
    (root / "s.flow").write_text(spec.replace("lower(a) AS c", "a AS c"))
    result = flowc("run", "s.flow", cwd=root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error[F1001]: the engine refused the SQL of `raw`" in result.stderr, result.stderr
    assert "--> s.flow:8:12" in result.stderr, result.stderr


def test_a_refusal_inside_an_inlined_ephemeral_node_is_shown_in_that_node(
    tmp_path: Path,
) -> None:
    root = project(tmp_path)
    spec = SPEC.replace(
        "transform t {",
        "transform eph {\n  materialize = ephemeral\n"
        '  sql = "SELECT a, b, lower(b) AS lb FROM raw"\n}\n\ntransform t {',
    ).replace("lower(a) AS c\n    FROM raw", "a AS c\n    FROM eph")
    (root / "s.flow").write_text(spec)
    result = flowc("run", "s.flow", cwd=root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error[F1001]: the engine refused the SQL of `t`" in result.stderr, result.stderr
    assert "--> s.flow:12:23" in result.stderr
    assert "(`eph` is inlined into `t`)" in result.stderr


def test_a_bigquery_position_names_the_token_and_its_occurrence() -> None:
    # the emulator accepts what BigQuery refuses; the position's form is BigQuery's
    statements = ['SELECT\n  "a" AS x,\n  LOWER("a") AS "c"\nFROM "raw"']
    message = "No matching signature for function LOWER for argument types: INT64 at [3:3]"
    pointed, shown = spec_position._pointed(message, statements)
    assert shown == ""
    assert pointed == spec_position._Pointed("LOWER", 0)
    message = "Unrecognized name: a at [3:10]"
    pointed, _ = spec_position._pointed(message, statements)
    assert pointed == spec_position._Pointed("a", 1)  # the second `a` of the statement


def test_a_connection_that_cannot_be_opened_is_named_with_its_profile_and_line(
    tmp_path: Path,
) -> None:
    root = project(tmp_path)
    with socket.socket() as free:  # a port nothing listens on once it is closed
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = {
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(port),
        "POSTGRES_DBNAME": "nowhere",
        "POSTGRES_USER": "someone",
        "POSTGRES_PASSWORD": "s3cret-pw",
    }
    result = flowc("run", "s.flow", "--profile", "pg", cwd=root, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot connect to `warehouse` of profile `pg` (flow.toml:9)" in result.stderr
    assert f"port {port} failed" in result.stderr
    assert "failed at step" not in result.stderr  # no step is at fault
    assert "--resume" not in result.stderr  # resuming cannot help
    assert "hint: check connection `warehouse` in flow.toml" in result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr


@pytest.mark.parametrize("profile", ["duck", "pg"])
def test_select_of_a_node_whose_input_was_never_built_says_to_select_upstream_too(
    profile: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    root = project(tmp_path)
    (root / "s.flow").write_text(SPEC.replace("lower(a) AS c", "a + b AS c"))
    env = request.getfixturevalue("pg").env() if profile == "pg" else {}
    fresh = flowc("run", "s.flow", "--profile", profile, "--select", "t", cwd=root, env=env)
    assert fresh.returncode == 1, fresh.stdout + fresh.stderr
    assert "t: it reads `raw`, which `--select` leaves out and no run has built" in fresh.stderr
    assert "hint: `--select +t` builds what `t` reads too" in fresh.stderr
    assert "does not exist" not in fresh.stderr  # not the engine's words
    built = flowc("run", "s.flow", "--profile", profile, "--select", "+t", cwd=root, env=env)
    assert built.returncode == 0, built.stderr
    again = flowc("run", "s.flow", "--profile", profile, "--select", "t", cwd=root, env=env)
    assert again.returncode == 0, again.stderr
    assert [line.split()[0] for line in again.stdout.splitlines()[:1]] == ["t"]


BLOCK = """\
import pandas as pd


def clean(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.rename(columns={"a": "vendor_id"})
"""

PYTHON_SPEC = """\
pipeline errors {
  target = warehouse
}

source raw {
  from = csv("data/x.csv")
  columns { a int  b int }
}

transform clean {
  inputs = [raw]
  python = "blocks/clean.py:clean"
  expect { not_null(vendorid) }
}

sink out {
  input = clean
  to    = parquet("out/clean/", partition_by = [vendor])
}
"""


@pytest.mark.parametrize("profile", ["duck", "pg"])
def test_names_checked_against_the_frame_a_python_transform_returns(
    profile: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # issue 13 item 4: no `columns`, so `flowc check` cannot know them; the run can
    root = project(tmp_path)
    (root / "blocks").mkdir()
    (root / "blocks" / "clean.py").write_text(BLOCK)
    (root / "s.flow").write_text(PYTHON_SPEC)
    env = request.getfixturevalue("pg").env() if profile == "pg" else {}
    assert flowc("check", "s.flow", cwd=root).returncode == 0
    result = flowc("run", "s.flow", "--profile", profile, cwd=root, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error[F0306]: `not_null` names unknown column `vendorid` of `clean`" in result.stderr
    assert "--> s.flow:13:21" in result.stderr
    assert "error[F0306]: `partition_by` names unknown column `vendor` of `out`" in result.stderr
    assert "--> s.flow:18:49" in result.stderr
    assert result.stderr.count("did you mean `vendor_id`?") == 2
    assert not (root / "out").exists()  # nothing written
    assert "Traceback" not in result.stderr
