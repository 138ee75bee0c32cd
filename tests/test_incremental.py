"""Incremental transforms, end to end on DuckDB: each run adds only the rows from the
watermark on, a batch seen twice never duplicates a row, `--full-refresh` rebuilds."""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
import pytest
from bq_emulator import Emulator
from flowc_cli import flowc
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from pg_server import PgDatabase, profile_section

FLOW_TOML = '[project]\nname = "i"\n[profiles.dev.local]\ntype = "duckdb"\npath = "w.duckdb"\n'

SPEC = """
pipeline events {{
  target = local
}}
source raw {{
  from = csv("data/*.csv", header = true)
  columns {{
    id       int
    at       timestamp
    amount   int
  }}
}}
transform totals {{
  sql = "SELECT id, at, amount * 10 AS amount FROM raw"
  materialize = incremental
  {keys}
}}
"""

BATCHES = {
    1: "id,at,amount\n1,2026-01-01 10:00:00,1\n2,2026-01-01 11:00:00,2\n",
    2: "id,at,amount\n3,2026-01-02 10:00:00,3\n4,2026-01-02 11:00:00,4\n",
    3: "id,at,amount\n5,2026-01-03 10:00:00,5\n",
}


def project(tmp_path: Path, keys: str) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "flow.toml").write_text(FLOW_TOML)
    (tmp_path / "events.flow").write_text(SPEC.format(keys=keys))
    return tmp_path


TWICE = ((1,), (2,), (2,), (3, 2))  # batch 2 again, then a late copy of it next to batch 3


def feed(root: Path, *batches: int, options: tuple[str, ...] = ()) -> None:
    """The source's folder holds exactly these batches, then the pipeline runs."""
    for old in (root / "data").glob("*.csv"):
        old.unlink()
    for index, batch in enumerate(batches):
        (root / "data" / f"{index}_{batch}.csv").write_text(BATCHES[batch])
    done = flowc("run", "events.flow", *options, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr


def rows(root: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(root / "w.duckdb")) as con:
        return con.execute(TOTALS).fetchall()


# `totals` is not published: it lives in the internal schema (BigQuery: dataset)
TOTALS = "SELECT id, amount FROM flowc_internal.totals ORDER BY id, amount"
EVERY_ROW = [(1, 10), (2, 20), (3, 30), (4, 40), (5, 50)]
KEYS = {
    "unique_key": "unique_key = [id]\n  time_column = at",
    "key_only": "unique_key = [id]",
    "time_only": "time_column = at",
}


@pytest.mark.parametrize("keys", KEYS.values(), ids=KEYS.keys())
def test_three_batches_one_of_them_twice_leave_no_duplicate(tmp_path: Path, keys: str) -> None:
    root = project(tmp_path, keys)
    for batches in TWICE:
        feed(root, *batches)
    assert rows(root) == EVERY_ROW


def test_a_table_that_becomes_incremental_is_built_whole_then_added_to(tmp_path: Path) -> None:
    root = project(tmp_path, "unique_key = [id]")
    spec = root / "events.flow"
    spec.write_text(spec.read_text().replace("materialize = incremental", "materialize = table"))
    feed(root, 1)  # a staged table, published on DuckDB as a view over the run's stage
    spec.write_text(SPEC.format(keys="unique_key = [id]"))
    feed(root, 1, 2)  # now built in the run's last transaction: a table, whole
    feed(root, 3)
    assert rows(root) == EVERY_ROW


def test_only_rows_from_the_watermark_on_are_processed(tmp_path: Path) -> None:
    root = project(tmp_path, "unique_key = [id]\n  time_column = at")
    feed(root, 1, 2)
    with duckdb.connect(str(root / "w.duckdb")) as con:  # changed by hand: an old row stays
        con.execute("UPDATE flowc_internal.totals SET amount = -1 WHERE id = 1")
    feed(root, 1, 2, 3)
    assert rows(root) == [(1, -1), *EVERY_ROW[1:]]
    feed(root, 1, 2, 3, options=("--full-refresh",))
    assert rows(root) == EVERY_ROW


def test_lookback_reprocesses_the_recent_rows(tmp_path: Path) -> None:
    root = project(tmp_path, 'unique_key = [id]\n  time_column = at\n  lookback = "1d"')
    feed(root, 1, 2)
    with duckdb.connect(str(root / "w.duckdb")) as con:
        con.execute("UPDATE flowc_internal.totals SET amount = -1")
    feed(root, 1, 2)  # the watermark is 01-02 11:00, less a day: from 01-01 11:00 on
    assert rows(root) == [(1, -1), (2, 20), (3, 30), (4, 40)]


def test_a_key_repeated_in_the_new_rows_fails_and_changes_nothing(tmp_path: Path) -> None:
    root = project(tmp_path, "unique_key = [id]")
    feed(root, 1)
    (root / "data" / "dup.csv").write_text(BATCHES[2])
    (root / "data" / "dup2.csv").write_text(BATCHES[2])
    done = flowc("run", "events.flow", cwd=root)
    assert done.returncode == 1
    assert "repeat a `unique_key` (id=3)" in done.stderr
    assert rows(root) == EVERY_ROW[:2]


# --- the same on BigQuery (the emulator) ---------------------------------------------------

BQ_PROFILE = """
[profiles.bq.local]
type = "bigquery"
project = "${GCP_PROJECT}"
dataset = "events"
api_endpoint = "${BQ_API_ENDPOINT}"
"""


@pytest.mark.parametrize("keys", KEYS.values(), ids=KEYS.keys())
def test_on_bigquery_a_batch_fed_twice_leaves_no_duplicate(
    tmp_path: Path, keys: str, bigquery_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, keys)
    with (root / "flow.toml").open("a") as toml:
        toml.write(BQ_PROFILE)
    gcp_project = f"inc-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("GCP_PROJECT", gcp_project)
    monkeypatch.setenv("BQ_API_ENDPOINT", bigquery_emulator.endpoint)
    for batches in TWICE:
        feed(root, *batches, options=("--profile", "bq"))
    client = bigquery.Client(
        project=gcp_project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": bigquery_emulator.endpoint},
    )
    found = client.query_and_wait(TOTALS)
    assert [tuple(row.values()) for row in found] == EVERY_ROW
    client.close()  # type: ignore[no-untyped-call]


# --- the same on Postgres -------------------------------------------------------------------


@pytest.mark.parametrize("keys", KEYS.values(), ids=KEYS.keys())
def test_on_postgres_a_batch_fed_twice_leaves_no_duplicate(
    tmp_path: Path, keys: str, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, keys)
    with (root / "flow.toml").open("a") as toml:
        toml.write(profile_section("pg", "local"))
    for name, value in pg.env().items():
        monkeypatch.setenv(name, value)
    for batches in TWICE:
        feed(root, *batches, options=("--profile", "pg"))
    assert pg.query(TOTALS) == EVERY_ROW
