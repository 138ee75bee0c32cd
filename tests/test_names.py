"""Names as declared, on every engine: the course's homework as a user writes it — three monthly
csv.gz files over HTTP, a SQL clean, a Python block renaming the TLC columns to snake_case, data
tests, a table sink and a Parquet sink partitioned by day — runs on DuckDB, Postgres and the
BigQuery emulator with a profile switch only, and gives the same tables, the same column names
and the same Parquet files, with the source columns declared and without.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import examples
import pyarrow.parquet as pq
import pytest
from bq_emulator import Emulator
from flowc_cli import FLOWC
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from pg_server import PgDatabase

Rows = list[tuple[object, ...]]
MONTHS = ("2020-10", "2020-11", "2020-12")

COLUMNS = """
  columns {
    VendorID               int
    lpep_pickup_datetime   timestamp  not null
    lpep_dropoff_datetime  timestamp
    store_and_fwd_flag     varchar
    RatecodeID             int
    PULocationID           int
    DOLocationID           int
    passenger_count        int
    trip_distance          double
    fare_amount            decimal(10, 2)
    extra                  decimal(10, 2)
    mta_tax                decimal(10, 2)
    tip_amount             decimal(10, 2)
    tolls_amount           decimal(10, 2)
    ehail_fee              decimal(10, 2)
    improvement_surcharge  decimal(10, 2)
    total_amount           decimal(10, 2)
    payment_type           int
    trip_type              int
    congestion_surcharge   decimal(10, 2)
  }
"""

SOURCE = """
source trips_ID {
  from = http("BASE/green_tripdata_MONTH.csv.gz", format = "csv")COLUMNS
}
"""

SPEC = """\
pipeline homework {
  target = warehouse
}
SOURCES
transform clean_trips {
  sql = \"\"\"
    SELECT *, CAST(lpep_pickup_datetime AS DATE) AS lpep_pickup_date
    FROM (
      SELECT * FROM trips_2020_10
      UNION ALL SELECT * FROM trips_2020_11
      UNION ALL SELECT * FROM trips_2020_12
    ) AS months
    WHERE passenger_count > 0 AND Trip_Distance > 0
  \"\"\"
  expect {
    accepted_values(vendorid, [1, 2])
  }
}

transform snake_trips {
  python = "blocks/rename.py:to_snake_case"
  inputs = [clean_trips]
  expect {
    not_null(vendor_id)
    accepted_values(vendor_id, [1, 2])
  }
}

transform by_vendor {
  sql = \"\"\"
    SELECT Vendor_ID, count(*), sum(Fare_Amount) AS Total_Fare
    FROM snake_trips GROUP BY vendor_id
  \"\"\"
}

sink green_taxi {
  input = snake_trips
  to    = table(warehouse, "ny_taxi.green_taxi")
}

sink green_files {
  input = snake_trips
  to    = parquet("out/green_taxi/", partition_by = [LPEP_pickup_date])
}

sink vendors {
  input = by_vendor
  to    = csv("out/by_vendor.csv")
}
"""

PROFILES = """\
[project]
name = "homework"
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
dataset      = "homework"
api_endpoint = "${BQ_API_ENDPOINT:-http://127.0.0.1:9050}"
"""

# the intermediate nodes live in the internal schema (BigQuery: dataset), the sink where it says
TABLES = (
    "flowc_internal.clean_trips",
    "flowc_internal.snake_trips",
    "flowc_internal.by_vendor",
    "ny_taxi.green_taxi",
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three monthly files (the example's two generated months, and a third of other trips)."""
    folder = tmp_path_factory.mktemp("tlc")
    generated = examples.green_taxi(folder, 600)
    data = generated / "data"
    shutil.copy(data / "green_tripdata_2020-10.csv.gz", folder / "green_tripdata_2020-10.csv.gz")
    shutil.copy(data / "green_tripdata_2020-11.csv.gz", folder / "green_tripdata_2020-11.csv.gz")
    other = folder / "other"
    subprocess.run(
        [
            sys.executable,
            str(generated / "generate_data.py"),
            *("--rows", "300", "--seed", "7"),
            "--out",
            str(other),
        ],
        check=True,
        capture_output=True,
    )
    shutil.copy(other / "green_tripdata_2020-11.csv.gz", folder / "green_tripdata_2020-12.csv.gz")
    return folder


@pytest.fixture(scope="module")
def base_url(files: Path) -> Iterator[str]:
    """The files over HTTP on the loopback, as the TLC serves them."""
    handler = functools.partial(_QuietHandler, directory=str(files))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No request log on the test's output."""


def make_project(folder: Path, base_url: str, *, declared: bool) -> Path:
    root = folder / ("declared" if declared else "undeclared")
    (root / "specs").mkdir(parents=True)
    (root / "blocks").mkdir()
    shutil.copy(examples.GREEN_TAXI / "blocks" / "rename.py", root / "blocks" / "rename.py")
    sources = "".join(
        SOURCE.replace("ID", month.replace("-", "_"))
        .replace("MONTH", month)
        .replace("BASE", base_url)
        .replace("COLUMNS", COLUMNS if declared else "")
        for month in MONTHS
    )
    (root / "specs" / "homework.flow").write_text(SPEC.replace("SOURCES", sources))
    (root / "flow.toml").write_text(PROFILES)
    return root


def run(root: Path, profile: str, env: dict[str, str]) -> None:
    result = subprocess.run(
        [*FLOWC, "run", "specs/homework.flow", "--profile", profile],
        cwd=root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def normalized(value: object) -> object:
    if isinstance(value, decimal.Decimal | float):
        return f"{float(value):.9g}"
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def table(columns: list[str], rows: Rows) -> tuple[list[str], Rows]:
    normal = sorted((tuple(normalized(v) for v in row) for row in rows), key=repr)
    return columns, normal


def duckdb_tables(root: Path) -> dict[str, tuple[list[str], Rows]]:
    found = {}
    with duckdb.connect(str(root / ".flowc" / "warehouse.duckdb"), read_only=True) as con:
        for name in TABLES:
            cursor = con.execute(f"SELECT * FROM {name}")
            rows = cursor.fetchall()
            found[name] = table([d[0] for d in cursor.description], rows)
    return found


def pg_tables(pg: PgDatabase) -> dict[str, tuple[list[str], Rows]]:
    found = {}
    with pg.connect() as con, con.cursor() as cursor:
        for name in TABLES:
            quoted = ".".join(f'"{part}"' for part in name.split("."))
            cursor.execute(f"SELECT * FROM {quoted}")
            found[name] = table([d.name for d in cursor.description or ()], cursor.fetchall())
    return found


def bq_tables(client: bigquery.Client) -> dict[str, tuple[list[str], Rows]]:
    found = {}
    for name in TABLES:
        qualified = name if "." in name else f"homework.{name}"
        result = client.query_and_wait(f"SELECT * FROM {qualified}")
        columns = [field.name for field in result.schema]
        found[name] = table(columns, [tuple(row.values()) for row in result])
    return found


def files_written(root: Path) -> tuple[list[str], list[str], str]:
    """The Parquet sink's partition folders and file columns, and the CSV sink's header."""
    folder = root / "out" / "green_taxi"
    partitions = sorted(p.name for p in folder.iterdir() if p.is_dir())
    first = next(folder.rglob("*.parquet"))
    header = (root / "out" / "by_vendor.csv").read_text().splitlines()[0]
    return partitions, pq.read_schema(first).names, header


@pytest.fixture(scope="module")
def gcp_project() -> str:
    return f"flowc-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
def test_the_homework_gives_the_same_names_and_rows_on_every_engine(
    declared: bool,
    base_url: str,
    tmp_path: Path,
    pg: PgDatabase,
    bigquery_emulator: Emulator,
    gcp_project: str,
) -> None:
    root = make_project(tmp_path, base_url, declared=declared)
    run(root, "duck", {})
    on_duckdb, duck_files = duckdb_tables(root), files_written(root)

    shutil.rmtree(root / "out")
    run(root, "pg", pg.env())
    on_postgres, pg_files = pg_tables(pg), files_written(root)

    shutil.rmtree(root / "out")
    project = f"{gcp_project}-{'d' if declared else 'u'}"
    run(root, "bq", {"BQ_API_ENDPOINT": bigquery_emulator.endpoint, "GCP_PROJECT": project})
    client = bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": bigquery_emulator.endpoint},
    )
    on_bigquery, bq_files = bq_tables(client), files_written(root)
    client.close()  # type: ignore[no-untyped-call]

    columns, rows = on_duckdb["flowc_internal.clean_trips"]
    assert columns[:2] == ["VendorID", "lpep_pickup_datetime"] and len(rows) > 100
    assert on_duckdb["ny_taxi.green_taxi"][0][:2] == ["vendor_id", "lpep_pickup_datetime"]
    assert on_duckdb["flowc_internal.by_vendor"][0] == ["vendor_id", "_col_1", "Total_Fare"]
    for name in TABLES:
        assert on_postgres[name] == on_duckdb[name], f"{name} on Postgres"
        assert on_bigquery[name] == on_duckdb[name], f"{name} on BigQuery"
    partitions, file_columns, header = duck_files
    assert partitions[0].startswith("lpep_pickup_date=2020-")
    assert file_columns[0] == "vendor_id" and "lpep_pickup_date" not in file_columns
    assert header == '"vendor_id","_col_1","Total_Fare"'
    assert pg_files == duck_files
    assert bq_files == duck_files


def test_fold_names_keeps_the_old_postgres_habit_for_tables_only(
    base_url: str, tmp_path: Path, pg: PgDatabase
) -> None:
    root = make_project(tmp_path, base_url, declared=True)
    toml = root / "flow.toml"
    toml.write_text(
        toml.read_text().replace('schema   = "public"', 'schema = "public"\nfold_names = true')
    )
    run(root, "duck", {})
    duck_files = files_written(root)
    shutil.rmtree(root / "out")
    run(root, "pg", pg.env())
    columns = pg_tables(pg)
    assert columns["flowc_internal.clean_trips"][0][:2] == ["vendorid", "lpep_pickup_datetime"]
    assert columns["flowc_internal.by_vendor"][0] == ["vendor_id", "_col_1", "total_fare"]
    # Python blocks and files see the spec's names still
    assert columns["ny_taxi.green_taxi"][0][0] == "vendor_id"
    assert files_written(root) == duck_files


LOADER = """\
import pandas as pd


def load() -> pd.DataFrame:
    return pd.DataFrame({"VendorID": [1, 2, 2], "Fare": [1.5, 2.0, 3.25]})
"""

LATE_SPEC = """\
pipeline late {
  target = warehouse
}

source fares {
  python = "blocks/load.py:load"
}

transform by_vendor {
  sql = "SELECT vendorid, sum(FARE) AS total FROM fares GROUP BY VENDORID"
  expect { not_null(VENDORID) }
}

sink out {
  input = by_vendor
  to    = parquet("out/by_vendor/", partition_by = [vendorID])
}
"""


def late_project(folder: Path, sql: str | None = None) -> Path:
    (folder / "blocks").mkdir(parents=True)
    (folder / "blocks" / "load.py").write_text(LOADER)
    spec = (
        LATE_SPEC
        if sql is None
        else LATE_SPEC.replace(
            "SELECT vendorid, sum(FARE) AS total FROM fares GROUP BY VENDORID", sql
        )
    )
    (folder / "late.flow").write_text(spec)
    (folder / "flow.toml").write_text(PROFILES)
    return folder


@pytest.mark.parametrize("profile", ["duck", "pg"])
def test_columns_only_the_run_knows_are_resolved_as_if_declared(
    profile: str, tmp_path: Path, pg: PgDatabase
) -> None:
    root = late_project(tmp_path)
    explained = subprocess.run(
        [*FLOWC, "explain", "late.flow", "--profile", profile],
        cwd=root,
        env={**os.environ, **pg.env()},
        capture_output=True,
        text=True,
        check=False,
    )
    assert "planned again at run time, once the columns of fares are known" in explained.stdout
    result = subprocess.run(
        [*FLOWC, "run", "late.flow", "--profile", profile],
        cwd=root,
        env={**os.environ, **pg.env()},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    folders = sorted(p.name for p in (root / "out" / "by_vendor").iterdir())
    assert folders == ["VendorID=1", "VendorID=2"]
    assert pq.read_table(root / "out" / "by_vendor").column_names == ["total", "VendorID"]


@pytest.mark.parametrize("profile", ["duck", "pg"])
def test_a_column_that_the_data_lacks_is_an_error_at_its_line(
    profile: str, tmp_path: Path, pg: PgDatabase
) -> None:
    root = late_project(tmp_path, "SELECT VendorID, sum(fair) AS total FROM fares GROUP BY 1")
    result = subprocess.run(
        [*FLOWC, "run", "late.flow", "--profile", profile],
        cwd=root,
        env={**os.environ, **pg.env()},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "by_vendor: with the columns `fares` has in this run:" in result.stderr
    assert "error[F0301]: unknown column `fair`" in result.stderr
    assert "--> late.flow:10:31" in result.stderr
    assert "did you mean `Fare`?" in result.stderr
    assert "Traceback" not in result.stderr
