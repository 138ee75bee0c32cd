"""dbt's demo project, jaffle_shop, translated by hand (tests/jaffle_shop/): the same tables on
DuckDB, Postgres and the BigQuery emulator, by a profile switch only.

Its `customers` model defines a CTE named `customers`, the table it builds: on BigQuery, where
a run builds its tables in a scratch dataset, that CTE once made flowc send `CREATE OR REPLACE
TABLE customers` to the live dataset (and the run then failed, reporting nothing changed). A
run that fails after building every model must leave the live dataset as it was, the first
time (no table at all) and after a successful run (the same tables and rows, the same views).
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import duckdb
import pytest
from bq_emulator import Emulator
from flowc_cli import FLOWC
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from pg_server import PgDatabase, profile_section

HERE = Path(__file__).parent / "jaffle_shop"
MODELS = ("stg_customers", "stg_orders", "stg_payments", "customers", "orders")
PROFILES = """\
[project]
name = "jaffle_shop"
default_profile = "duck"

[profiles.duck.warehouse]
type = "duckdb"
path = "warehouse.duckdb"

[profiles.bq.warehouse]
type         = "bigquery"
project      = "local"
dataset      = "jaffle"
api_endpoint = "${BQ_API_ENDPOINT:-http://127.0.0.1:9050}"
""" + profile_section("pg", "warehouse")
Rows = list[tuple[object, ...]]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "jaffle_shop"
    shutil.copytree(HERE, root)
    (root / "flow.toml").write_text(PROFILES)
    return root


def run(root: Path, profile: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLOWC, "run", "jaffle_shop.flow", "--profile", profile],
        cwd=root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def normalized(rows: Iterator[tuple[object, ...]] | Rows) -> Rows:
    """Rows comparable across engines: numbers as floats to 9 digits, sorted."""

    def value(v: object) -> object:
        if isinstance(v, decimal.Decimal | float):
            return round(float(v), 9)
        if isinstance(v, dt.datetime):
            return v.date() if v.time() == dt.time() else v
        return v

    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


def duckdb_models(root: Path) -> dict[str, Rows]:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        return {m: normalized(con.execute(f"SELECT * FROM {m}").fetchall()) for m in MODELS}


def on_duckdb(project: Path) -> dict[str, Rows]:
    result = run(project, "duck", {})
    assert result.returncode == 0, result.stdout + result.stderr
    return duckdb_models(project)


def test_jaffle_shop_on_duckdb_matches_dbts_own_results(project: Path) -> None:
    models = on_duckdb(project)
    assert len(models["customers"]) == 100 and len(models["orders"]) == 99
    # customer 1: orders 1 and 37 (2018-01-01, 2018-02-10), paid 1,000 + 2,300 cents
    first = next(row for row in models["customers"] if row[0] == 1)
    assert first == (1, "Michael", "P.", dt.date(2018, 1, 1), dt.date(2018, 2, 10), 2, 33.0)
    paid = sum(float(str(row[-1] or 0)) for row in models["orders"])
    assert paid == pytest.approx(1672.0)  # raw_payments' 167,200 cents


def test_jaffle_shop_on_postgres_equals_duckdb(project: Path, pg: PgDatabase) -> None:
    expected = on_duckdb(project)
    result = run(project, "pg", pg.env())
    assert result.returncode == 0, result.stdout + result.stderr
    found = {m: normalized(pg.query(f'SELECT * FROM "{m}"')) for m in MODELS}
    assert found == expected


@pytest.fixture
def client(bigquery_emulator: Emulator) -> Iterator[bigquery.Client]:
    opened = bigquery.Client(
        project=bigquery_emulator.project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": bigquery_emulator.endpoint},
    )
    yield opened
    opened.close()  # type: ignore[no-untyped-call]


def live(client: bigquery.Client, dataset: str) -> dict[str, object]:
    """What the dataset holds: each table's rows, each view's query (the emulator's
    `modified` times are not kept: it reports the time of asking for a copied table)."""
    found: dict[str, object] = {}
    for item in client.list_tables(dataset):
        table = client.get_table(item.reference)
        if table.table_type == "VIEW":
            found[item.table_id] = table.view_query
        else:
            rows = client.query_and_wait(f"SELECT * FROM `{dataset}`.`{item.table_id}`")
            found[item.table_id] = normalized(tuple(row.values()) for row in rows)
    return found


def failing_at_the_end(root: Path) -> None:
    """The spec with one more check, on the last model, that fails: every model is built
    (in the scratch dataset) before the run fails."""
    spec = root / "jaffle_shop.flow"
    spec.write_text(spec.read_text().replace("unique(order_id)", "row_count(max = 1)"))


def test_jaffle_shop_on_bigquery_equals_duckdb_and_touches_nothing_before_commit(
    project: Path, bigquery_emulator: Emulator, client: bigquery.Client
) -> None:
    expected = on_duckdb(project)
    dataset = f"jaffle_{os.getpid()}_{id(project) % 10_000}"
    (project / "flow.toml").write_text(PROFILES.replace('"jaffle"', f'"{dataset}"'))
    env = {"BQ_API_ENDPOINT": bigquery_emulator.endpoint}
    original = (project / "jaffle_shop.flow").read_text()

    failing_at_the_end(project)
    result = run(project, "bq", env)
    assert result.returncode == 1 and "orders.row_count(max = 1)" in result.stdout, result.stdout
    assert live(client, dataset) == {}  # `customers` never reached the live dataset

    (project / "jaffle_shop.flow").write_text(original)
    result = run(project, "bq", env)
    assert result.returncode == 0, result.stdout + result.stderr
    found = {
        m: normalized(
            tuple(r.values()) for r in client.query_and_wait(f"SELECT * FROM {dataset}.{m}")
        )
        for m in MODELS
    }
    assert found == expected
    before = live(client, dataset)

    failing_at_the_end(project)
    result = run(project, "bq", env)
    assert result.returncode == 1, result.stdout
    assert live(client, dataset) == before
    scratch = [d.dataset_id for d in client.list_datasets() if d.dataset_id.startswith("_flowc")]
    assert scratch == []
