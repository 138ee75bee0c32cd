"""`flowc run --profile pg` end to end, driven as a user does (a subprocess), against a real
PostgreSQL (tests/pg_server.py) reached through the `POSTGRES_*` variables the example's
flow.toml reads: the green-taxi example gives the same rows as on DuckDB, a failure at any
step (or a `kill -9` in the middle of a load) leaves every table as it was, two runs at once
take turns, and every kind of step works with Postgres as the warehouse.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import gzip
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import examples
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flowc_cli import FLOWC, flowc
from pg_server import PgDatabase
from test_run import KINDS_FLOW, VENDORS_PY

SPEC = "specs/green_taxi.flow"
ROWS = 2_000
Rows = list[tuple[object, ...]]


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project with generated data, never run."""
    return examples.green_taxi(tmp_path_factory.mktemp("pg_green_taxi"), ROWS)


@pytest.fixture
def project(example: Path, tmp_path: Path, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example whose `pg` profile points at this test's database."""
    root = tmp_path / "green_taxi"
    shutil.copytree(example, root)
    for name, value in pg.env().items():
        monkeypatch.setenv(name, value)
    return root


def normalized(rows: Rows) -> Rows:
    """Rows comparable across engines: decimals and floats as rounded text, sorted."""

    def value(v: object) -> object:
        if isinstance(v, decimal.Decimal | float):
            return f"{float(v):.9g}"
        if isinstance(v, dt.datetime | dt.date):
            return v.isoformat()
        return v

    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


def pg_tables(pg: PgDatabase) -> dict[str, Rows]:
    """Every table of the database's user schemas with its rows."""
    names = pg.query(
        "SELECT schemaname, tablename FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
        "AND NOT starts_with(schemaname, '_flowc_') ORDER BY 1, 2"
    )
    return {f"{s}.{t}": normalized(pg.query(f'SELECT * FROM "{s}"."{t}"')) for s, t in names}


def duckdb_rows(root: Path, sql: str) -> Rows:
    with duckdb.connect(str(root / ".flowc" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


# --- the example on Postgres = the example on DuckDB ----------------------------------------


def test_green_taxi_on_postgres_gives_the_rows_it_gives_on_duckdb(
    project: Path, pg: PgDatabase
) -> None:
    on_pg = flowc("run", SPEC, "--profile", "pg", "--param", "run_date=2020-10-15", cwd=project)
    assert on_pg.returncode == 0, on_pg.stdout + on_pg.stderr
    assert "succeeded: 14 steps" in on_pg.stdout
    pg_daily_csv = (project / "out" / "daily_stats.csv").read_text()
    pg_files = pq.read_table(project / "out" / "green_taxi").num_rows
    found = pg_tables(pg)

    on_duckdb = flowc("run", SPEC, "--param", "run_date=2020-10-15", cwd=project)
    assert on_duckdb.returncode == 0, on_duckdb.stderr
    for table in ("ny_taxi.green_taxi", "flowc_internal.daily_stats", "flowc_internal.clean_trips"):
        expected = normalized(duckdb_rows(project, f"SELECT * FROM {table}"))
        assert found[table] == expected, table
        assert len(expected) > 0
    assert (project / "out" / "daily_stats.csv").read_text() == pg_daily_csv
    assert pq.read_table(project / "out" / "green_taxi").num_rows == pg_files
    # names as declared: the spec's VendorID is Postgres's "VendorID"
    columns = pg.query(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'ny_taxi' AND table_name = 'green_taxi' ORDER BY ordinal_position"
    )
    assert [c for (c,) in columns][:2] == ["vendor_id", "lpep_pickup_datetime"]
    trips = pg.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'trips' "
        "ORDER BY ordinal_position"
    )
    assert [c for (c,) in trips][:5] == [
        "VendorID",
        "lpep_pickup_datetime",
        "lpep_dropoff_datetime",
        "store_and_fwd_flag",
        "RatecodeID",
    ]
    assert not [t for t in found if "__flowc" in t]


# --- atomicity: fail each kind of step ------------------------------------------------------


def _edit(path: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        text = (root / path).read_text()
        assert old in text, f"{old!r} not in {path}"
        (root / path).write_text(text.replace(old, new))

    return edit


def _bad_csv_value(root: Path) -> None:
    source = root / "data" / "green_tripdata_2020-11.csv.gz"
    with gzip.open(source, "rt") as text:
        header, first, second = text.readline(), text.readline(), text.readline()
    cells = second.split(",")
    cells[7] = "two"  # passenger_count is an int
    with gzip.open(root / "data" / "green_tripdata_2020-12.csv.gz", "wt") as out:
        out.write(header + first + ",".join(cells))


def _blocked_csv(root: Path) -> None:
    (root / "out" / "blocker").write_text("a file where the sink wants a folder\n")
    _edit(SPEC, 'csv("out/daily_stats.csv")', 'csv("out/blocker/daily_stats.csv")')(root)


FAILURES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "load": (
        _bad_csv_value,
        "trips",
        "data/green_tripdata_2020-12.csv.gz, row 2 (line 3), column `passenger_count`: "
        'invalid input syntax for type integer: "two"',
    ),
    "sql": (
        _edit(
            SPEC,
            "WHERE passenger_count > 0",
            "WHERE CAST(store_and_fwd_flag AS INT) = 0 AND passenger_count > 0",
        ),
        "clean_trips",
        "Postgres: invalid input syntax for type integer",
    ),
    "check": (
        _edit(SPEC, "row_count(min = 1)", "row_count(min = 1000000)"),
        "clean_trips.row_count(min = 1000000)",
        "row_count(min = 1000000) failed",
    ),
    "python raises": (
        _edit("blocks/rename.py", '    """Return', '    raise ValueError("boom")\n    """Return'),
        "snake_trips.py",
        "ValueError: boom",
    ),
    "sql file": (
        _edit("sql/daily_stats.sql", "SUM(fare_amount)", "SUM(CAST(store_and_fwd_flag AS INT))"),
        "daily_stats",
        "Postgres:",
    ),
    "last export": (_blocked_csv, "daily_csv", "cannot write"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_failed_run_changes_no_table(project: Path, pg: PgDatabase, case: str) -> None:
    first = flowc("run", SPEC, "--profile", "pg", "--param", "run_date=2020-11-01", cwd=project)
    assert first.returncode == 0, first.stderr
    before = pg_tables(pg)
    inject, step, needle = FAILURES[case]
    inject(project)
    result = flowc("run", SPEC, "--profile", "pg", cwd=project)  # would change every table
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"failed at step `{step}" in result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr or case == "python raises"
    assert pg_tables(pg) == before


# --- a killed run, and two runs at once -----------------------------------------------------


def _big_data(root: Path, copies: int) -> None:
    """The December file: the November rows `copies` times over (a load that takes a while)."""
    with gzip.open(root / "data" / "green_tripdata_2020-11.csv.gz", "rt") as text:
        header, *rows = text.readlines()
    with gzip.open(root / "data" / "green_tripdata_2020-12.csv.gz", "wt", compresslevel=1) as out:
        out.write(header)
        for _ in range(copies):
            out.writelines(rows)


def _wait_for(pg: PgDatabase, sql: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not pg.query(sql)[0][0]:
        assert time.monotonic() < deadline, f"timed out waiting for: {sql}"
        time.sleep(0.02)


def _start(project: Path, *arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*FLOWC, "run", SPEC, "--profile", "pg", *arguments],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_kill_9_in_the_middle_of_a_load_leaves_the_table(project: Path, pg: PgDatabase) -> None:
    first = flowc("run", SPEC, "--profile", "pg", cwd=project)
    assert first.returncode == 0, first.stderr
    before = pg_tables(pg)
    _big_data(project, copies=150)
    run = _start(project)
    try:
        _wait_for(
            pg,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'flowc' "
            "AND state = 'active' AND query LIKE 'COPY \"trips\"%%'",
        )
        time.sleep(0.05)  # rows are flowing into the new table
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == -signal.SIGKILL
    _wait_for(pg, "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'flowc'")
    assert pg_tables(pg) == before


ADVISORY_HELD = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def test_two_runs_at_once_take_turns(project: Path, pg: PgDatabase) -> None:
    rename = project / "blocks" / "rename.py"  # the first run holds its lock a while
    rename.write_text(
        rename.read_text().replace(
            "    return clean_trips.rename",
            "    __import__('time').sleep(3)\n    return clean_trips.rename",
        )
    )
    first = _start(project, "--param", "run_date=2020-10-01")
    try:
        _wait_for(pg, ADVISORY_HELD)
        second = flowc(
            "run", SPEC, "--profile", "pg", "--param", "run_date=2020-11-01", cwd=project
        )
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    assert "waiting for another run of `green_taxi` of `green_taxi` (profile `pg`)" in (
        second.stderr
    )
    days = pg.query("SELECT min(lpep_pickup_date)::text FROM flowc_internal.daily_stats")
    assert days == [("2020-11-01",)]  # the second run committed last, whole
    count = pg.query("SELECT count(*) FROM ny_taxi.green_taxi")[0][0]
    assert count == pg.query("SELECT count(*) FROM flowc_internal.clean_trips")[0][0]


# --- every kind of step, with Postgres as the warehouse -------------------------------------

KINDS_TOML = """\
[project]
name = "kinds"
default_profile = "dev"

[profiles.dev.local]
type = "duckdb"
path = ".flowc/local.duckdb"

[profiles.dev.warehouse]
type     = "postgres"
host     = "${POSTGRES_HOST}"
port     = "${POSTGRES_PORT}"
dbname   = "${POSTGRES_DBNAME}"
user     = "${POSTGRES_USER}"
password = "${POSTGRES_PASSWORD:-}"
schema   = "${POSTGRES_SCHEMA:-public}"
"""

CSV_SOURCE = """
source fares {
  from = csv("data/fares.csv", header = true)
  columns { VendorID int  fare decimal(10, 2) not null }
}

transform by_vendor {
  sql = "SELECT VendorID, sum(fare) AS total FROM fares GROUP BY VendorID"
  materialize = table
}

sink by_vendor_csv {
  input = by_vendor
  to = csv("out/by_vendor.csv")
}
"""


@pytest.fixture
def kinds(tmp_path: Path, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "kinds"
    for folder in ("specs", "blocks", "data"):
        (root / folder).mkdir(parents=True)
    (root / "flow.toml").write_text(KINDS_TOML)
    (root / "specs" / "kinds.flow").write_text(KINDS_FLOW + CSV_SOURCE)
    (root / "blocks" / "vendors.py").write_text(VENDORS_PY)
    pq.write_table(
        pa.table({"id": [1, 2, 3, 4], "amount": [1.5, 2.5, 3.5, 4.5]}), root / "data/sales.parquet"
    )
    (root / "data" / "events.json").write_text('{"id": 1, "kind": "x"}\n{"id": 2, "kind": "y"}\n')
    with (root / "data" / "fares.csv").open("w", newline="") as out:
        csv.writer(out).writerows([["fare", "vendorid"], ["1.50", "1"], ["2.25", "2"], ["3", "1"]])
    for name, value in pg.env(schema="flowc_work").items():
        monkeypatch.setenv(name, value)
    yield root


def test_every_kind_of_step_with_a_postgres_warehouse(kinds: Path, pg: PgDatabase) -> None:
    spec = "specs/kinds.flow"
    first = flowc("run", spec, cwd=kinds)
    assert first.returncode == 0, first.stdout + first.stderr
    steps = [line.split()[:3] for line in first.stdout.splitlines()]
    assert ["joined.not_null(name)", "warned", "1"] in steps
    assert "name=NULL | id=4, amount=4.5, kind=NULL" in first.stderr  # the tested column first
    assert ["fares", "succeeded", "3"] in steps  # the CSV, straight into COPY
    second = flowc("run", spec, "--param", "min_id=2", cwd=kinds)
    assert second.returncode == 0, second.stderr
    assert ["history", "succeeded", "3"] in [
        line.split()[:3] for line in second.stdout.splitlines()
    ]
    assert pg.query("SELECT count(*) FROM hist.sales") == [(4 + 3,)]
    latest = pg.query("SELECT id, name, kind FROM hist.latest ORDER BY id")
    assert latest == [(1, "a", "x"), (2, "b", "y"), (3, "c", None), (4, None, None)]
    # not published: in the internal schema, beside the connection's own schema flowc_work
    assert pg.query("SELECT count(*) FROM flowc_internal.vendors") == [(2,)]
    assert pg.query(
        "SELECT table_type FROM information_schema.tables WHERE table_name = 'joined'"
    ) == [("VIEW",)]
    assert pg.query('SELECT "VendorID", total FROM flowc_internal.by_vendor ORDER BY 1') == [
        (1, decimal.Decimal("4.50")),
        (2, decimal.Decimal("2.25")),
    ]
    by_vendor = (kinds / "out" / "by_vendor.csv").read_text().splitlines()
    assert by_vendor[0] == '"VendorID","total"'  # the spec's spelling, as on DuckDB
    assert sorted(by_vendor[1:]) == ["1,4.50", "2,2.25"]
    # a failing check on Postgres rolls back the DuckDB file's transaction too
    flow = kinds / "specs" / "kinds.flow"
    flow.write_text(flow.read_text().replace("on_fail = warn", "on_fail = error"))
    before = pg_tables(pg)
    failed = flowc("run", spec, "--param", "min_id=3", cwd=kinds)
    assert failed.returncode == 1
    assert "failed at step `joined.not_null(name)`" in failed.stderr
    assert pg_tables(pg) == before
    with duckdb.connect(str(kinds / ".flowc" / "local.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM flowc_internal.local_sales").fetchall() == [(3,)]


def test_a_user_who_may_not_create_schemas_runs_all_or_nothing_without_a_stage(
    kinds: Path, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = f"flowc_plain_{os.getpid()}"  # roles belong to the whole server
    pg.execute(
        f"CREATE ROLE {role} LOGIN PASSWORD 'plain-pw'; "
        f"CREATE SCHEMA flowc_work AUTHORIZATION {role}; "
        f"REVOKE CREATE ON DATABASE {pg.dbname} FROM PUBLIC"
    )
    monkeypatch.setenv("POSTGRES_USER", role)
    monkeypatch.setenv("POSTGRES_PASSWORD", "plain-pw")
    (kinds / "specs" / "kinds.flow").write_text(
        "pipeline kinds {\n  target = warehouse\n}\n" + CSV_SOURCE
    )
    try:
        done = flowc("run", "specs/kinds.flow", cwd=kinds)
        assert done.returncode == 0, done.stdout + done.stderr
        # it may not create the internal schema either: by_vendor stays in its own schema
        assert pg.query('SELECT "VendorID", total FROM flowc_work.by_vendor ORDER BY 1') == [
            (1, decimal.Decimal("4.50")),
            (2, decimal.Decimal("2.25")),
        ]
        assert pg.query("SELECT count(*) FROM pg_namespace WHERE nspname LIKE '\\_flowc%%'") == [
            (0,)
        ]
        (kinds / "data" / "fares.csv").write_text("fare,vendorid\nnot a number,1\n")
        failed = flowc("run", "specs/kinds.flow", cwd=kinds)
        assert failed.returncode == 1
        assert pg.query("SELECT count(*) FROM flowc_work.by_vendor") == [(2,)]
    finally:
        pg.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_files_written_from_postgres_have_the_columns_of_the_spec(
    kinds: Path, pg: PgDatabase
) -> None:
    flow = "pipeline kinds {\n  target = warehouse\n}\n" + CSV_SOURCE
    flow += 'sink by_vendor_parquet {\n  input = by_vendor\n  to = parquet("out/pq/", '
    flow += "partition_by = [VendorID])\n}\n"
    (kinds / "specs" / "kinds.flow").write_text(flow)
    done = flowc("run", "specs/kinds.flow", cwd=kinds)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in (kinds / "out" / "pq").iterdir()) == ["VendorID=1", "VendorID=2"]
    table = pq.read_table(kinds / "out" / "pq")
    assert sorted(table.column_names) == ["VendorID", "total"]
