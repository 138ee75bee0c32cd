"""BigQuery end to end, driven as a user does (`flowc` in a subprocess):

- `flowc check --profile all` reports, at its line, what has no GoogleSQL form (F0308);
- the green-taxi example runs on the `local-bigquery` emulator with `--profile bq` and nothing
  else changed (the endpoint and project come from the environment its flow.toml reads), its
  sink partitioned and clustered, and its tables hold the same rows as a DuckDB run's;
- a failed run on BigQuery leaves every table as it was, and no scratch dataset behind.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import examples
import pytest
from bq_emulator import Emulator
from flowc_cli import FLOWC, flowc
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

SPEC = "specs/green_taxi.flow"
ROWS = 1_000
# the intermediate nodes live in the internal schema (BigQuery: dataset), the sink where it says
TABLES = (
    "flowc_internal.trips",
    "flowc_internal.clean_trips",
    "flowc_internal.snake_trips",
    "flowc_internal.daily_stats",
    "ny_taxi.green_taxi",
)
Rows = list[tuple[object, ...]]

CHECKED = '''\
pipeline p {
  target = warehouse
}

source orders {
  from = csv("orders.csv", header = true)
  columns {
    id   int
    tags varchar
    day  date
  }
}

transform tagged {
  sql = """
    SELECT id, list_transform(string_split(tags, ','), t -> upper(t)) AS tags FROM orders
  """
}

sink out {
  input = orders
  to    = table(warehouse, "d.out", partition_by = [id])
}
'''
PROFILES = """\
[project]
name = "p"
default_profile = "duck"

[profiles.duck.warehouse]
type = "duckdb"
path = "w.duckdb"

[profiles.bq.warehouse]
type    = "bigquery"
project = "local"
dataset = "d"
"""


def test_check_all_profiles_reports_what_googlesql_cannot_express(tmp_path: Path) -> None:
    (tmp_path / "flow.toml").write_text(PROFILES)
    (tmp_path / "p.flow").write_text(CHECKED)
    assert flowc("check", "p.flow", cwd=tmp_path).returncode == 0  # fine on DuckDB
    result = flowc("check", "p.flow", "--profile", "all", cwd=tmp_path)
    assert result.returncode == 1
    assert "error[F0308]: a lambda expression (`x -> ...`) has no BigQuery equivalent" in (
        result.stdout
    )
    assert "--> p.flow:16:61" in result.stdout  # the lambda (sqlglot locates its body)
    assert "BigQuery partitions by a date or timestamp column; `id` is int" in result.stdout
    assert "--> p.flow:20:6" in result.stdout  # the sink


@pytest.mark.parametrize("partition", ["day", "date(day)"])
def test_a_timestamp_column_partitions_by_its_date(tmp_path: Path, partition: str) -> None:
    (tmp_path / "flow.toml").write_text(PROFILES)
    spec = CHECKED.replace(
        "partition_by = [id]", f"partition_by = [{partition}], cluster_by = [id]"
    )
    spec = spec.replace("day  date", "day  timestamp")
    spec = spec.replace("list_transform(string_split(tags, ','), t -> upper(t))", "upper(tags)")
    (tmp_path / "p.flow").write_text(spec)
    for profile in ("bq", "duck"):
        result = flowc("compile", "p.flow", "--profile", profile, "-o", profile, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
    bq = (tmp_path / "bq" / "p" / "03_out.sql").read_text()
    assert "CREATE OR REPLACE TABLE `d`.`out`\nPARTITION BY DATE(`day`)\nCLUSTER BY `id` AS" in bq
    assert "PARTITION" not in (tmp_path / "duck" / "p" / "03_out.sql").read_text()


# --- the green-taxi example on the emulator ------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return examples.green_taxi(tmp_path_factory.mktemp("bq_green_taxi"), ROWS)


@pytest.fixture(scope="module")
def gcp_project() -> str:
    return f"flowc-{uuid.uuid4().hex[:8]}"  # a project of its own on the shared emulator


@pytest.fixture(scope="module")
def client(bigquery_emulator: Emulator, gcp_project: str) -> Iterator[bigquery.Client]:
    opened = bigquery.Client(
        project=gcp_project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": bigquery_emulator.endpoint},
    )
    yield opened
    opened.close()  # type: ignore[no-untyped-call]


def run_bq(root: Path, emulator: Emulator, gcp_project: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "BQ_API_ENDPOINT": emulator.endpoint, "GCP_PROJECT": gcp_project}
    return subprocess.run(
        [*FLOWC, "run", SPEC, "--profile", "bq", "--param", "run_date=2020-11-01"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def ran_bq(project: Path, bigquery_emulator: Emulator, gcp_project: str) -> Path:
    result = run_bq(project, bigquery_emulator, gcp_project)
    assert result.returncode == 0, result.stdout + result.stderr
    return project


def normalized(value: object) -> object:
    """One spelling per value across engines: NUMERIC(38, 9) and DECIMAL(10, 2) are numbers,
    a float is compared to 9 digits."""
    if isinstance(value, decimal.Decimal | float):
        return round(float(value), 9)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def sorted_rows(rows: Iterator[tuple[object, ...]] | Rows) -> Rows:
    return sorted((tuple(normalized(v) for v in row) for row in rows), key=repr)


def bq_tables(client: bigquery.Client) -> dict[str, Rows]:
    found = {}
    for table in TABLES:
        name = table if "." in table else f"ny_taxi.{table}"
        result = client.query_and_wait(f"SELECT * FROM {name}")
        found[table] = sorted_rows(tuple(row.values()) for row in result)
    return found


def duckdb_tables(root: Path) -> dict[str, Rows]:
    found: dict[str, Rows] = {}
    for path in (root / ".flowc").glob("*.duckdb"):
        with duckdb.connect(str(path), read_only=True) as con:
            for table in TABLES:
                schema, _, name = table.rpartition(".")
                hits = con.execute(
                    "SELECT 1 FROM information_schema.tables WHERE table_schema = ? "
                    "AND table_name = ?",
                    [schema or "main", name],
                ).fetchall()
                if hits:
                    rows = con.execute(f"SELECT * FROM {table}").fetchall()
                    found[table] = sorted_rows(rows)
    return found


def scratch(client: bigquery.Client) -> list[str]:
    return [d.dataset_id for d in client.list_datasets() if d.dataset_id.startswith("_flowc")]


def test_green_taxi_on_bigquery_equals_duckdb(ran_bq: Path, client: bigquery.Client) -> None:
    on_bigquery = bq_tables(client)
    result = flowc("run", SPEC, "--param", "run_date=2020-11-01", cwd=ran_bq)  # profile dev
    assert result.returncode == 0, result.stderr
    on_duckdb = duckdb_tables(ran_bq)
    assert set(on_duckdb) == set(TABLES)
    for table in TABLES:
        assert on_bigquery[table], table
        assert on_bigquery[table] == on_duckdb[table], table
    sink = client.get_table("ny_taxi.green_taxi")
    assert sink.time_partitioning is not None
    assert sink.time_partitioning.field == "lpep_pickup_date"
    assert sink.clustering_fields == ["vendor_id"]
    assert scratch(client) == []


def test_a_failed_run_on_bigquery_changes_no_table(
    ran_bq: Path, client: bigquery.Client, bigquery_emulator: Emulator, gcp_project: str
) -> None:
    before = bq_tables(client)
    spec = ran_bq / SPEC
    original = spec.read_text()
    # the sink's step fails after every table before it was rebuilt (by a later date)
    spec.write_text(original.replace("not_null(vendor_id)", "row_count(max = 1)"))
    try:
        result = run_bq(ran_bq, bigquery_emulator, gcp_project)
    finally:
        spec.write_text(original)
    assert result.returncode == 1
    assert "snake_trips.row_count(max = 1)" in result.stdout and "failed" in result.stdout
    assert "Traceback" not in result.stderr
    assert bq_tables(client) == before
    assert scratch(client) == []
