"""TPC-H on the three engines, driven as a user does (`flowc` in a subprocess).

One pipeline (tests/tpch.py): the 8 tables as Parquet sources with their columns declared,
the 22 queries as DuckDB's `tpch` extension writes them (one transform each, `sql = file(...)`,
text untouched), a CSV sink per query. It runs once per engine — DuckDB, the embedded Postgres,
the BigQuery emulator — with a profile switch only, and every CSV file it writes must hold the
official answer at scale factor 0.01 (`tpch_answers()`): the same column names (DuckDB's, the
spec's dialect), the same rows, numbers within a relative 1e-6.

`flowc check --profile all` finds no error in it (no construct refused on any engine).
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


def run_and_compare(root: Path, data: tpch.Tpch, profile: str, env: Mapping[str, str]) -> None:
    """One `flowc run` of the 22 queries, then every output against its answer."""
    result = flowc(root, "run", "tpch.flow", "--profile", profile, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    problems = {
        number: tpch.differences(data, number, root / "out" / f"q{number:02d}.csv")
        for number in range(1, tpch.QUERIES + 1)
    }
    shown = "\n".join(line for found in problems.values() for line in found[:3])
    assert not shown, shown


def test_check_all_profiles_finds_no_error(project: Path) -> None:
    result = flowc(project, "check", "tpch.flow", "--profile", "all", env=DUMMY_POSTGRES)
    assert result.returncode == 0, result.stdout
    assert "error" not in result.stdout, result.stdout


def test_tpch_on_duckdb(project: Path, data: tpch.Tpch) -> None:
    run_and_compare(project, data, "duck", {})


def test_tpch_on_postgres(project: Path, data: tpch.Tpch, pg: PgDatabase) -> None:
    run_and_compare(project, data, "pg", pg.env())


def test_tpch_on_bigquery(project: Path, data: tpch.Tpch, bigquery_emulator: Emulator) -> None:
    run_and_compare(project, data, "bq", {"BQ_API_ENDPOINT": bigquery_emulator.endpoint})
