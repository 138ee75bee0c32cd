"""The course homework spec (specs/homework): three monthly files over HTTP from a local
server -> clean -> snake_case -> tests -> a table and Parquet by day, on DuckDB and Postgres."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from examples import REPO
from flowc_cli import flowc
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
