"""`flowc run`, `flowc runs`, `flowc show` end to end, driven as a user does (a subprocess),
on a copy of specs/green_taxi with 2,000 generated rows.

The atomicity test fails each kind of step in turn (a bad CSV value in the load, a SQL error
at run time, a failing check, a raising Python block, a Python block returning the wrong
columns, a failing check after Python, a failing SQL file, a file sink that cannot be
written) after a successful run, and asserts that every table and file the run would have
replaced is exactly as before.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import examples
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flowc_cli import flowc, runs_listed, steps_shown

SPEC = "specs/green_taxi.flow"
WAREHOUSE = Path(".flowc") / "warehouse.duckdb"
ROWS = 2_000


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project with generated data, never run."""
    return examples.green_taxi(tmp_path_factory.mktemp("green_taxi"), ROWS)


@pytest.fixture(scope="module")
def ran(fresh: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project after one successful run with run_date=2020-11-01."""
    root = tmp_path_factory.mktemp("ran") / "green_taxi"
    shutil.copytree(fresh, root)
    result = flowc("run", SPEC, "--param", "run_date=2020-11-01", cwd=root)
    assert result.returncode == 0, result.stderr
    return root


def copy(project: Path, tmp_path: Path) -> Path:
    target = tmp_path / "green_taxi"
    shutil.copytree(project, target)
    return target


def tables(root: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table and view users see in the warehouse, with its rows (sorted); not flowc's
    stage schemas (`_flowc_*`), which a failed run leaves for `--resume`."""
    with duckdb.connect(str(root / WAREHOUSE), read_only=True) as con:
        names = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE NOT starts_with(table_schema, '_flowc_') ORDER BY ALL"
        ).fetchall()
        return {
            f"{schema}.{name}": sorted(
                con.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall(), key=repr
            )
            for schema, name in names
        }


def files(root: Path) -> dict[str, str]:
    """Every file under out/ (hidden ones included), by content hash."""
    out = root / "out"
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


# --- success --------------------------------------------------------------------------------


def test_run_lands_tables_and_files(fresh: Path, tmp_path: Path) -> None:
    root = copy(fresh, tmp_path)
    result = flowc("run", SPEC, cwd=root)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["trips", "succeeded"]
    assert lines[0].split()[2] == str(ROWS)
    assert "succeeded: 14 steps" in lines[-1]

    found = tables(root)
    assert len(found["flowc_internal.trips"]) == ROWS
    clean = len(found["flowc_internal.clean_trips"])
    assert 0 < clean < ROWS
    assert len(found["ny_taxi.green_taxi"]) == clean
    assert not [name for name in found if "__flowc" in name]
    with duckdb.connect(str(root / WAREHOUSE), read_only=True) as con:
        columns = [r[0] for r in con.execute("DESCRIBE ny_taxi.green_taxi").fetchall()]
    assert columns[:2] == ["vendor_id", "lpep_pickup_datetime"]
    assert "pu_location_id" in columns and "lpep_pickup_date" in columns

    parts = sorted(p.name for p in (root / "out" / "green_taxi").iterdir())
    assert parts and all(p.startswith("lpep_pickup_date=2020-1") for p in parts)
    assert len(parts) == len(found["flowc_internal.daily_stats"])
    table = pq.read_table(root / "out" / "green_taxi")  # hive partitions read back
    assert table.num_rows == clean
    csv_lines = (root / "out" / "daily_stats.csv").read_text().splitlines()
    assert csv_lines[0] == '"lpep_pickup_date","trips","total_fare","avg_distance"'
    assert len(csv_lines) == 1 + len(found["flowc_internal.daily_stats"])
    assert not [p for p in (root / "out").iterdir() if p.name.startswith(".")]


def test_param_changes_the_result(ran: Path, tmp_path: Path) -> None:
    root = copy(ran, tmp_path)
    november = tables(root)
    days = [str(row[0]) for row in november["flowc_internal.daily_stats"]]
    assert min(days) == "2020-11-01"
    result = flowc("run", SPEC, "--param", "run_date=2020-10-01", "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[-1]["event"] == "run" and events[-1]["status"] == "succeeded"
    ends = {e["step"]: e for e in events if e["event"] == "step" and e["status"] != "running"}
    october = tables(root)
    assert len(october["flowc_internal.clean_trips"]) > len(november["flowc_internal.clean_trips"])
    assert ends["clean_trips"]["rows"] == len(october["flowc_internal.clean_trips"])
    assert min(str(row[0]) for row in october["flowc_internal.daily_stats"]) < "2020-11-01"


@pytest.mark.parametrize(
    ("argument", "needle"),
    [("run_date=someday", "not a valid date"), ("nope=1", "unknown parameter"), ("x", "NAME")],
)
def test_bad_param_is_a_usage_error(fresh: Path, argument: str, needle: str) -> None:
    result = flowc("run", SPEC, "--param", argument, cwd=fresh)
    assert result.returncode == 2
    assert needle in result.stderr
    assert not (fresh / WAREHOUSE).exists()


def test_spec_with_errors_exits_1(fresh: Path, tmp_path: Path) -> None:
    root = copy(fresh, tmp_path)
    spec = root / SPEC
    spec.write_text(spec.read_text().replace("FROM trips", "FROM tripz"))
    result = flowc("run", SPEC, cwd=root)
    assert result.returncode == 1
    assert "tripz" in result.stderr
    assert not (root / WAREHOUSE).exists()


def test_runs_and_show(ran: Path, tmp_path: Path) -> None:
    root = copy(ran, tmp_path)
    listed = flowc("runs", SPEC, cwd=root)
    assert listed.returncode == 0, listed.stderr
    first = runs_listed(listed.stdout)[0]
    run_id = first[0]
    assert first[1:4] == ["succeeded", "green_taxi", "dev"]
    assert "run_date=2020-11-01" in listed.stdout
    assert flowc("runs", cwd=root).stdout == listed.stdout
    shown = flowc("show", run_id[:17], cwd=root)
    assert shown.returncode == 0, shown.stderr
    assert f"run {run_id}: succeeded" in shown.stdout
    steps = {row[0]: row[1:4] for row in steps_shown(shown.stdout)}
    assert steps["trips"] == ["load", "succeeded", "2000 loaded"]
    assert steps["daily_csv"][:2] == ["export", "succeeded"]
    assert flowc("show", "nosuchrun", cwd=root).returncode == 2


def _steps_run(stdout: str) -> list[str]:
    return [re.split(r"\s{2,}", line)[0] for line in stdout.splitlines()[:-1]]


def test_select_downstream_and_upstream(ran: Path, tmp_path: Path) -> None:
    root = copy(ran, tmp_path)
    before = tables(root)
    down = flowc("run", SPEC, "--select", "daily_stats+", cwd=root)
    assert down.returncode == 0, down.stderr
    assert _steps_run(down.stdout) == ["daily_stats", "daily_csv"]
    after = tables(root)
    assert after == before  # same inputs (snake_trips as it was): same result
    up = flowc("run", SPEC, "--select", "+clean_trips", cwd=root)
    assert up.returncode == 0, up.stderr
    assert _steps_run(up.stdout) == [
        "trips",
        "clean_trips",
        "clean_trips.not_null(VendorID, lpep_pickup_date)",
        "clean_trips.accepted_values(VendorID, [1, 2])",
        "clean_trips.row_count(min = 1)",
        'clean_trips.check("passenger_count > 0")',
    ]
    assert len(tables(root)["flowc_internal.clean_trips"]) > len(
        before["flowc_internal.clean_trips"]
    )  # default date
    assert tables(root)["ny_taxi.green_taxi"] == before["ny_taxi.green_taxi"]  # not selected
    python = flowc("run", SPEC, "--select", "snake_trips", cwd=root)
    assert _steps_run(python.stdout)[:2] == ["clean_trips.into.snake_trips", "snake_trips.py"]
    bad = flowc("run", SPEC, "--select", "nope+", cwd=root)
    assert bad.returncode == 2
    assert "no node `nope`" in bad.stderr


def test_an_unreachable_warehouse_is_a_connection_error(fresh: Path, tmp_path: Path) -> None:
    root = copy(fresh, tmp_path)
    (root / ".env").write_text("POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT=1\n")  # nothing there
    result = flowc("run", SPEC, "--profile", "pg", cwd=root)
    assert result.returncode == 1
    assert "cannot connect to `warehouse` of profile `pg` (flow.toml:" in result.stderr
    assert "failed at step" not in result.stderr and "--resume" not in result.stderr
    assert "Traceback" not in result.stderr


# --- atomicity: fail each step in turn ------------------------------------------------------


def _edit(path: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        text = (root / path).read_text()
        assert old in text, f"{old!r} not in {path}"
        (root / path).write_text(text.replace(old, new))

    return edit


def _bad_csv_value(root: Path) -> None:
    source = root / "data" / "green_tripdata_2020-11.csv.gz"
    with gzip.open(source, "rt") as text:
        header, row = text.readline(), text.readline()
    cells = row.split(",")
    cells[9] = "8.555"  # fare_amount is decimal(10, 2)
    with gzip.open(root / "data" / "green_tripdata_2020-12.csv.gz", "wt") as out:
        out.write(header + ",".join(cells))


def _blocked_csv(root: Path) -> None:
    (root / "out" / "blocker").write_text("a file where the sink wants a folder\n")
    _edit(SPEC, 'csv("out/daily_stats.csv")', 'csv("out/blocker/daily_stats.csv")')(root)


FAILURES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "load": (_bad_csv_value, "trips", "fare_amount"),
    "sql": (
        _edit(
            SPEC,
            "WHERE passenger_count > 0",
            "WHERE CAST(store_and_fwd_flag AS INT) = 0 AND passenger_count > 0",
        ),
        "clean_trips",
        "DuckDB",
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
    "python columns": (
        _edit("blocks/rename.py", "rename(columns=snake_case)", "rename(columns=str.upper)"),
        "snake_trips",
        "snake_trips",
    ),
    "check after python": (
        _edit(
            "blocks/rename.py",
            "return clean_trips.rename",
            'clean_trips["VendorID"] = None\n    return clean_trips.rename',
        ),
        "snake_trips.not_null(vendor_id)",
        "not_null(vendor_id) failed",
    ),
    "sql file": (
        _edit("sql/daily_stats.sql", "SUM(fare_amount)", "SUM(CAST(store_and_fwd_flag AS INT))"),
        "daily_stats",
        "DuckDB",
    ),
    "last export": (_blocked_csv, "daily_csv", "cannot write"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_failed_run_changes_nothing(ran: Path, tmp_path: Path, case: str) -> None:
    inject, step, needle = FAILURES[case]
    root = copy(ran, tmp_path)
    inject(root)
    before_tables, before_files = tables(root), files(root)
    result = flowc("run", SPEC, cwd=root)  # run_date 2020-10-01: would change everything
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"failed at step `{step}" in result.stderr
    assert needle in result.stderr
    assert "nothing was changed" in result.stderr
    assert "flowc/runtime" not in result.stderr  # the user's frames only
    assert tables(root) == before_tables
    assert files(root) == before_files
    run_id = runs_listed(flowc("runs", cwd=root).stdout)[0][0]
    shown = flowc("show", run_id, cwd=root).stdout
    assert f"run {run_id}: failed" in shown
    assert "skipped" in shown or step == "daily_csv"


# --- the other kinds of step, on two DuckDB files -------------------------------------------

KINDS_TOML = """\
[project]
name = "kinds"
default_profile = "dev"

[profiles.dev.local]
type = "duckdb"
path = ".flowc/local.duckdb"

[profiles.dev.warehouse]
type = "duckdb"
path = ".flowc/warehouse.duckdb"
"""

KINDS_FLOW = """\
pipeline kinds {
  target = warehouse
  params {
    min_id int = 1
  }
}

source vendors {
  python = "blocks/vendors.py:vendors"
  columns { id bigint  name varchar }
}

source sales {
  from = parquet("data/sales.parquet")
  columns { id bigint  amount double }
}

source events {
  from = json("data/events.json")
  columns { id bigint  kind varchar }
}

transform local_sales {
  target = local
  sql = "SELECT id, amount FROM sales WHERE id >= :min_id"
  materialize = table
}

transform joined {
  sql = \"\"\"
    SELECT s.id, s.amount, v.name, e.kind
    FROM local_sales AS s
    LEFT JOIN vendors AS v ON v.id = s.id
    LEFT JOIN events AS e ON e.id = s.id
  \"\"\"
  materialize = view
  expect {
    not_null(name)
    on_fail = warn
  }
}

sink history {
  input = joined
  to = table(warehouse, "hist.sales")
  mode = append
}

sink latest {
  input = joined
  to = table(warehouse, "hist.latest")
  mode = merge
  key = [id]
}
"""

VENDORS_PY = """\
import pandas as pd


def vendors(min_id: int) -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]}).query("id >= @min_id")
"""


def _query(path: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_every_kind_of_step_on_two_duckdb_files(tmp_path: Path) -> None:
    root = tmp_path / "kinds"
    for folder in ("specs", "blocks", "data"):
        (root / folder).mkdir(parents=True)
    (root / "flow.toml").write_text(KINDS_TOML)
    (root / "specs" / "kinds.flow").write_text(KINDS_FLOW)
    (root / "blocks" / "vendors.py").write_text(VENDORS_PY)
    pq.write_table(
        pa.table({"id": [1, 2, 3, 4], "amount": [1.5, 2.5, 3.5, 4.5]}), root / "data/sales.parquet"
    )
    (root / "data" / "events.json").write_text('{"id": 1, "kind": "x"}\n{"id": 2, "kind": "y"}\n')
    spec = "specs/kinds.flow"
    warehouse, local = root / WAREHOUSE, root / ".flowc" / "local.duckdb"

    first = flowc("run", spec, cwd=root)
    assert first.returncode == 0, first.stderr
    steps = [line.split()[:3] for line in first.stdout.splitlines()]
    assert ["joined.not_null(name)", "warned", "1"] in steps
    assert "expect not_null(name) failed: 1 row" in first.stderr
    assert "name=NULL | id=4, amount=4.5, kind=NULL" in first.stderr  # the tested column first
    second = flowc("run", spec, "--param", "min_id=2", cwd=root)
    assert second.returncode == 0, second.stderr
    second_steps = [line.split()[:3] for line in second.stdout.splitlines()]
    assert ["history", "succeeded", "3"] in second_steps  # rows appended
    assert len(_query(warehouse, "SELECT * FROM hist.sales")) == 4 + 3
    latest = _query(warehouse, "SELECT id, name, kind FROM hist.latest ORDER BY id")
    assert latest == [(1, "a", "x"), (2, "b", "y"), (3, "c", None), (4, None, None)]
    assert _query(local, "SELECT count(*) FROM flowc_internal.local_sales") == [(3,)]
    assert _query(warehouse, "SELECT count(*) FROM flowc_internal.vendors") == [
        (2,)
    ]  # min_id reached Python

    # a failing check on the warehouse rolls back the local file's transaction too
    flow = root / "specs" / "kinds.flow"
    flow.write_text(flow.read_text().replace("on_fail = warn", "on_fail = error"))
    before = (_query(local, "FROM flowc_internal.local_sales ORDER BY ALL"), tables(root))
    failed = flowc("run", spec, "--param", "min_id=3", cwd=root)
    assert failed.returncode == 1
    assert "failed at step `joined.not_null(name)`" in failed.stderr
    assert (_query(local, "FROM flowc_internal.local_sales ORDER BY ALL"), tables(root)) == before
