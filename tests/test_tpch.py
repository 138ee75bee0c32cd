"""TPC-H on the three engines, driven as a user does (`flowc` in a subprocess).

One pipeline (tests/tpch.py): the 8 tables as Parquet sources with their columns declared,
the 22 queries as DuckDB's `tpch` extension writes them (one transform each, `sql = file(...)`,
text untouched), a CSV sink per query. It runs once per engine — DuckDB, the embedded Postgres,
the BigQuery emulator — with a profile switch only, and every CSV file it writes must hold the
official answer at scale factor 0.01 (`tpch_answers()`): the same column names (DuckDB's, the
spec's dialect), the same rows, numbers within a relative 1e-6.

Known gaps that other work of issue 20 closes are listed, each with the query, the profile and
the error: REFUSED (`flowc check` refuses the query; until it compiles the run uses an
equivalent), DIFFERENT (the output differs from the answer). The tests assert that exactly
those fail, so a test fails, saying which entry to remove, as soon as one is fixed.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
import tpch
from bq_emulator import Emulator
from flowc_cli import FLOWC
from pg_server import PgDatabase, profile_section

PROFILES = """\
[project]
name = "tpch"
default_profile = "duck"

[profiles.duck.warehouse]
type = "duckdb"
path = "warehouse.duckdb"

[profiles.bq.warehouse]
type         = "bigquery"
project      = "local"
dataset      = "tpch"
api_endpoint = "${BQ_API_ENDPOINT:-http://127.0.0.1:9050}"
""" + profile_section("pg", "warehouse")

# (profile, query) -> what fails there today, and which branch of issue 20 fixes it
REFUSED: dict[tuple[str, int], str] = {
    ("bq", 13): "F0308 `AS c_orders (c_custkey, c_count)`: a column-alias list on a derived "
    "table (branch `rewrites`)",
}
DIFFERENT: dict[tuple[str, int], str] = {}
# GoogleSQL has no column-alias list on a derived table: q13 with its select list aliased
Q13_ALIASED = (
    (
        "    SELECT\n        c_custkey,\n        count(o_orderkey)\n",
        "    SELECT\n        c_custkey AS c_custkey,\n        count(o_orderkey) AS c_count\n",
    ),
    ("c_custkey) AS c_orders (c_custkey,\n        c_count)\n", "c_custkey) AS c_orders\n"),
)
DUMMY_POSTGRES = {
    "POSTGRES_HOST": "localhost",
    "POSTGRES_PORT": "5432",
    "POSTGRES_DBNAME": "x",
    "POSTGRES_USER": "x",
}


@pytest.fixture(scope="module")
def data() -> tpch.Tpch:
    try:
        return tpch.provision()
    except tpch.Unavailable as why:
        pytest.skip(f"no TPC-H data: {why}")


@pytest.fixture
def project(data: tpch.Tpch, tmp_path: Path) -> Path:
    return tpch.project(data, tmp_path / "tpch", PROFILES)


def flowc(root: Path, *arguments: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLOWC, *arguments],
        cwd=root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def listed(known: Mapping[tuple[str, int], str], profile: str) -> set[int]:
    return {number for (where, number) in known if where == profile}


def run_and_compare(root: Path, data: tpch.Tpch, profile: str, env: Mapping[str, str]) -> None:
    """One `flowc run` of the 22 queries, then every output against its answer: exactly the
    queries DIFFERENT lists for `profile` differ."""
    result = flowc(root, "run", "tpch.flow", "--profile", profile, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    problems = {
        number: tpch.differences(data, number, root / "out" / f"q{number:02d}.csv")
        for number in range(1, tpch.QUERIES + 1)
    }
    failing = {number for number, found in problems.items() if found}
    shown = "\n".join(line for found in problems.values() for line in found[:3])
    fixed = listed(DIFFERENT, profile) - failing
    assert not fixed, f"fixed now, remove from DIFFERENT: {sorted(fixed)}"
    assert failing <= listed(DIFFERENT, profile), shown


def test_check_all_profiles_finds_no_error(project: Path) -> None:
    result = flowc(project, "check", "tpch.flow", "--profile", "all", env=DUMMY_POSTGRES)
    refused = {
        ("bq", int(line.split("sql/q")[1][:2]))
        for line in result.stdout.splitlines()
        if line.strip().startswith("--> sql/q")
    }
    expected = set(REFUSED)  # F0308 at the query's line, nothing else
    assert refused == expected, result.stdout
    assert result.returncode == (1 if expected else 0), result.stdout


def test_tpch_on_duckdb(project: Path, data: tpch.Tpch) -> None:
    run_and_compare(project, data, "duck", {})


def test_tpch_on_postgres(project: Path, data: tpch.Tpch, pg: PgDatabase) -> None:
    run_and_compare(project, data, "pg", pg.env())


def test_tpch_on_bigquery(project: Path, data: tpch.Tpch, bigquery_emulator: Emulator) -> None:
    if 13 in listed(REFUSED, "bq"):  # until the column-alias list is rewritten
        path = project / "sql" / "q13.sql"
        text = path.read_text()
        for old, new in Q13_ALIASED:
            assert old in text
            text = text.replace(old, new)
        path.write_text(text)
    env = {"BQ_API_ENDPOINT": bigquery_emulator.endpoint}
    run_and_compare(project, data, "bq", env)
