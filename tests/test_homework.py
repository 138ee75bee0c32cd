"""The course homework spec (specs/homework): three monthly files over HTTP from a local
server -> clean -> snake_case -> tests -> a table and Parquet by day, on DuckDB, Postgres and the
BigQuery emulator: a profile switch, nothing else."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from bq_emulator import Emulator
from examples import REPO
from flowc_cli import FLOWC, flowc
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from pg_server import PgDatabase
from test_extract import _Server, _static, server

__all__ = ["server"]  # the fixture, shared

HOMEWORK = REPO / "specs" / "homework"
SPEC = "specs/homework.flow"


@pytest.fixture(scope="module")
def months(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The TLC-like files of Oct, Nov and Dec 2020 (the generator writes Oct and Nov; Dec is
    Nov's rows again)."""
    out = tmp_path_factory.mktemp("tlc")
    generator = REPO / "specs" / "green_taxi" / "generate_data.py"
    subprocess.run([sys.executable, str(generator), "--rows", "600", "--out", str(out)], check=True)
    found = {p.name: p.read_bytes() for p in out.glob("*.csv.gz")}
    found["green_tripdata_2020-12.csv.gz"] = found["green_tripdata_2020-11.csv.gz"]
    return found


@pytest.fixture
def homework(tmp_path: Path, server: _Server, months: dict[str, bytes]) -> Path:
    root = tmp_path / "homework"
    shutil.copytree(HOMEWORK, root, ignore=shutil.ignore_patterns(".flowc", "out"))
    for name, body in months.items():
        server.routes[f"/green/{name}"] = _static(body)
    return root


def _run(root: Path, server: _Server, *extra: str) -> subprocess.CompletedProcess[str]:
    base = f"base={server.url('/green/green_tripdata')}"
    return flowc("run", SPEC, "--param", base, *extra, cwd=root)


def test_the_homework_spec_is_under_60_lines() -> None:
    assert len((HOMEWORK / SPEC).read_text().splitlines()) < 60


def test_the_homework_runs_on_duckdb(homework: Path, server: _Server) -> None:
    done = _run(homework, server)
    assert done.returncode == 0, done.stderr
    assert sorted(s.path for s in server.seen) == [
        f"/green/green_tripdata_2020-{m}.csv.gz" for m in ("10", "11", "12")
    ]
    with duckdb.connect(str(homework / ".flowc" / "warehouse.duckdb"), read_only=True) as con:
        [(rows, months)] = con.execute(
            "SELECT count(*), count(DISTINCT month(lpep_pickup_datetime)) FROM green_taxi"
        ).fetchall()
        names = [r[0] for r in con.execute("DESCRIBE green_taxi").fetchall()]
    assert rows > 0 and months == 2  # Dec's file holds Nov's trips
    assert names[:2] == ["vendor_id", "lpep_pickup_datetime"] and "pu_location_id" in names
    days = sorted(p.name for p in (homework / "out" / "green_taxi").iterdir())
    assert days[0].startswith("lpep_pickup_date=2020-")
    assert pq.read_table(homework / "out" / "green_taxi").num_rows == rows


def test_the_homework_runs_on_postgres(
    homework: Path, server: _Server, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in pg.env().items():
        monkeypatch.setenv(name, value)
    done = _run(homework, server, "--profile", "pg")
    assert done.returncode == 0, done.stderr
    [(rows,)] = pg.query("SELECT count(*) FROM public.green_taxi")
    assert isinstance(rows, int) and rows > 0
    assert pq.read_table(homework / "out" / "green_taxi").num_rows == rows


def test_the_homework_runs_on_bigquery(
    homework: Path, server: _Server, bigquery_emulator: Emulator
) -> None:
    project = f"flowc-{uuid.uuid4().hex[:8]}"  # a project of its own on the shared emulator
    environment = {**os.environ, "BQ_API_ENDPOINT": bigquery_emulator.endpoint}
    base = f"base={server.url('/green/green_tripdata')}"
    done = subprocess.run(
        [*FLOWC, "run", SPEC, "--profile", "bq", "--param", base],
        cwd=homework,
        env={**environment, "GCP_PROJECT": project},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    client = bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": bigquery_emulator.endpoint},
    )
    try:
        [(rows,)] = list(client.query("SELECT count(*) FROM ny_taxi.green_taxi").result())
    finally:
        client.close()  # type: ignore[no-untyped-call]
    assert isinstance(rows, int) and rows > 0
    files = pq.read_table(homework / "out" / "green_taxi")
    assert files.num_rows == rows
    assert "vendor_id" in files.column_names  # the Python block's names, as on every engine
