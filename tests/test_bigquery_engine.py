"""The BigQuery adapter against a real BigQuery endpoint: the `local-bigquery` emulator
(tests/bq_emulator.py; skipped, with the reason, where it cannot be provisioned).

Each test works in datasets of its own, so the tests share one emulator and stay independent.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from bq_emulator import Emulator
from flowc.project.config import BigQuerySettings
from flowc.runtime.engines.base import Query
from flowc.runtime.engines.bigquery import SCRATCH_PREFIX, BigQueryEngine
from flowc.runtime.errors import StepError
from pydantic import SecretStr


def connect(emulator: Emulator, dataset: str) -> BigQueryEngine:
    settings = BigQuerySettings(
        project=emulator.project, dataset=dataset, api_endpoint=emulator.endpoint
    )
    return BigQueryEngine.from_settings(settings, Path.cwd())


@pytest.fixture
def dataset() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def engine(bigquery_emulator: Emulator, dataset: str) -> Iterator[BigQueryEngine]:
    with connect(bigquery_emulator, dataset) as opened:
        yield opened


@pytest.fixture
def other(bigquery_emulator: Emulator, dataset: str) -> Iterator[BigQueryEngine]:
    """A second session on the same dataset: what everyone else sees during a run."""
    with connect(bigquery_emulator, dataset) as opened:
        yield opened


TRIPS = pa.table(
    {
        "id": pa.array([1, 2, 3], pa.int64()),
        "vendor": ["a", "b", None],
        "fare": pa.array(
            [decimal.Decimal("8.50"), None, decimal.Decimal("1.25")], pa.decimal128(10, 2)
        ),
        "day": pa.array([dt.date(2020, 10, 1), dt.date(2020, 10, 2), None]),
        "at": pa.array(
            [dt.datetime(2020, 10, 1, 7, 30), None, dt.datetime(2020, 10, 3)], pa.timestamp("us")
        ),
    }
)


def reader(table: pa.Table) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=2))


def rows(engine: BigQueryEngine, sql: str) -> list[dict[str, object]]:
    found = engine.read_batches(Query(sql)).read_all().to_pylist()
    return sorted(found, key=repr)


def test_load_and_read_back_keep_values_and_types(engine: BigQueryEngine) -> None:
    assert engine.load_batches("trips", TRIPS.schema, iter(reader(TRIPS))) == 3
    back = engine.read_batches("trips").read_all().sort_by("id")
    assert back.column("id").to_pylist() == [1, 2, 3]
    assert back.column("vendor").to_pylist() == ["a", "b", None]
    assert [None if v is None else float(v) for v in back.column("fare").to_pylist()] == [
        8.5,
        None,
        1.25,
    ]
    assert back.column("day").to_pylist() == [dt.date(2020, 10, 1), dt.date(2020, 10, 2), None]
    assert back.column("at").to_pylist()[0] == dt.datetime(2020, 10, 1, 7, 30)
    assert engine.table_exists("trips") and not engine.table_exists("nope")
    schema = engine.table_schema("trips")
    assert schema is not None and schema.names == ["id", "vendor", "fare", "day", "at"]
    with pytest.raises(StepError, match="already exists"):
        engine.load_batches("trips", TRIPS.schema, iter(reader(TRIPS)))


def test_an_empty_result_still_has_its_columns(engine: BigQueryEngine) -> None:
    engine.load_batches("trips", TRIPS.schema, iter(reader(TRIPS)))
    empty = engine.read_batches(Query("SELECT id, vendor FROM trips WHERE id < 0")).read_all()
    assert empty.num_rows == 0 and empty.schema.names == ["id", "vendor"]


def test_params_are_bound_by_type(engine: BigQueryEngine) -> None:
    engine.load_batches("trips", TRIPS.schema, iter(reader(TRIPS)))
    params = {"since": dt.date(2020, 10, 2), "name": "a' OR 'x'='x", "unused": 1}
    got = engine.read_batches(
        Query("SELECT id FROM trips WHERE day >= CAST(@since AS DATE) OR vendor = @name", params)
    ).read_all()
    assert got.column("id").to_pylist() == [2]


def test_replace_append_and_merge(engine: BigQueryEngine) -> None:
    engine.load_batches("trips", TRIPS.schema, iter(reader(TRIPS)))
    query = Query("SELECT id, vendor FROM trips WHERE id <= @n", {"n": 2})
    assert engine.replace_atomically("ny.small", lambda s: engine.create_table(s, query)) == 2
    assert (
        engine.replace_atomically(
            "ny.small", lambda s: engine.create_table(s, Query("SELECT id, vendor FROM trips"))
        )
        == 3
    )
    assert (
        engine.append(
            "ny.small", reader(pa.table({"vendor": ["z"], "id": pa.array([9], pa.int64())}))
        )
        == 1
    )
    assert rows(engine, "SELECT id, vendor FROM ny.small WHERE id = 9") == [
        {"id": 9, "vendor": "z"}
    ]
    update = pa.table({"id": pa.array([1, 10], pa.int64()), "vendor": ["A", "new"]})
    assert engine.merge("ny.small", ["id"], reader(update)) == 2
    assert rows(engine, "SELECT id, vendor FROM ny.small") == sorted(
        [
            {"id": 1, "vendor": "A"},
            {"id": 2, "vendor": "b"},
            {"id": 3, "vendor": None},
            {"id": 9, "vendor": "z"},
            {"id": 10, "vendor": "new"},
        ],
        key=repr,
    )
    twice = pa.table({"id": pa.array([4, 4], pa.int64()), "vendor": ["x", "y"]})
    with pytest.raises(StepError, match="repeat the key"):
        engine.merge("ny.small", ["id"], reader(twice))
    assert len(rows(engine, "SELECT id FROM ny.small")) == 5


def test_bad_sql_is_a_step_error_in_bigquerys_words(engine: BigQueryEngine) -> None:
    engine.load_batches("trips", TRIPS.schema, iter(reader(TRIPS)))
    with pytest.raises(StepError, match="Unrecognized name: nope") as raised:
        engine.execute("SELECT nope FROM trips")
    assert "http" not in str(raised.value)


def scratch_datasets(engine: BigQueryEngine) -> list[str]:
    return [
        d.dataset_id
        for d in engine._client.list_datasets()
        if d.dataset_id.startswith(SCRATCH_PREFIX)
    ]


def run_writes(engine: BigQueryEngine) -> None:
    """What a run does: a transform, a replaced sink, an appended sink, a view, a load."""
    engine.execute(
        "CREATE OR REPLACE TABLE daily AS SELECT day, COUNT(*) AS n FROM trips GROUP BY day"
    )
    sink = f"{engine._dataset}_sink"  # a second dataset, created by the run
    engine.execute(
        f"CREATE SCHEMA IF NOT EXISTS `{sink}`; "
        f"CREATE OR REPLACE TABLE `{sink}`.`big` PARTITION BY day CLUSTER BY n AS "
        "SELECT * FROM daily WHERE n > 0"
    )
    engine.execute("INSERT INTO trips (id, vendor) SELECT 100, 'run'")
    engine.execute("CREATE OR REPLACE VIEW v_daily AS SELECT * FROM daily")
    small = pa.table({"id": pa.array([7], pa.int64())})
    engine.replace_atomically("loaded", lambda s: engine.create_table(s, reader(small)))


def test_a_run_is_invisible_until_commit(
    engine: BigQueryEngine, other: BigQueryEngine, dataset: str
) -> None:
    engine.load_batches("trips", TRIPS.schema, iter(reader(TRIPS)))
    engine.begin()
    run_writes(engine)
    # inside the run: its writes; elsewhere: nothing yet
    assert len(rows(engine, "SELECT id FROM trips")) == 4
    assert len(rows(engine, "SELECT * FROM v_daily")) == 3
    big = f"{dataset}_sink.big"
    assert engine.table_exists(big) and not other.table_exists(big)
    assert len(rows(other, "SELECT id FROM trips")) == 3
    assert not other.table_exists("daily") and not other.table_exists("v_daily")
    engine.commit()
    assert not engine.in_transaction and scratch_datasets(engine) == []
    assert len(rows(other, "SELECT id FROM trips")) == 4
    assert rows(other, f"SELECT n FROM {big} WHERE day = '2020-10-01'") == [{"n": 1}]
    assert len(rows(other, "SELECT * FROM v_daily")) == 3  # the view names the real table
    assert rows(other, "SELECT * FROM loaded") == [{"id": 7}]
    table = other._client.get_table(f"{other._project}.{big}")
    assert table.time_partitioning is not None and table.time_partitioning.field == "day"
    assert table.clustering_fields == ["n"]
    # the next run lays the table out otherwise: BigQuery cannot copy onto it, flowc drops it
    engine.begin()
    engine.execute(f"CREATE OR REPLACE TABLE {big} AS SELECT DATE '2020-01-01' AS day")
    engine.commit()
    table = other._client.get_table(f"{other._project}.{big}")
    assert table.time_partitioning is None and not table.clustering_fields
    assert rows(other, f"SELECT * FROM {big}") == [{"day": dt.date(2020, 1, 1)}]


def test_a_rolled_back_run_leaves_every_table_as_it_was(
    engine: BigQueryEngine, other: BigQueryEngine, dataset: str
) -> None:
    engine.load_batches("trips", TRIPS.schema, iter(reader(TRIPS)))
    before = rows(other, "SELECT * FROM trips")
    engine.begin()
    run_writes(engine)
    with pytest.raises(StepError):
        engine.execute("CREATE OR REPLACE TABLE trips AS SELECT nope FROM trips")
    for refused in ("DECLARE x INT64", "INSERT INTO `elsewhere.d.t` (id) VALUES (1)"):
        with pytest.raises(StepError, match="BigQuery: "):
            engine.execute(refused)
    engine.rollback()
    assert rows(other, "SELECT * FROM trips") == before
    for table in ("daily", f"{dataset}_sink.big", "v_daily", "loaded"):
        assert not other.table_exists(table), table
    assert scratch_datasets(engine) == []


def test_merge_and_append_inside_a_run(engine: BigQueryEngine, other: BigQueryEngine) -> None:
    engine.load_batches("trips", TRIPS.schema, iter(reader(TRIPS)))
    engine.begin()
    update = pa.table({"id": pa.array([1, 10], pa.int64()), "vendor": ["A", "new"]})
    engine.merge("trips", ["id"], reader(update))
    engine.append("trips", Query("SELECT 11 AS id, 'q' AS vendor"))
    assert len(rows(engine, "SELECT id FROM trips")) == 5
    assert len(rows(other, "SELECT id FROM trips")) == 3
    engine.commit()
    assert rows(other, "SELECT id, vendor FROM trips WHERE id IN (1, 10, 11)") == sorted(
        [{"id": 1, "vendor": "A"}, {"id": 10, "vendor": "new"}, {"id": 11, "vendor": "q"}],
        key=repr,
    )


def test_jobs_carry_the_runs_labels(engine: BigQueryEngine) -> None:
    engine.set_labels({"pipeline": "Green_Taxi", "run": "20201101-060000-ab12", "step": "a.b"})
    job = engine._query("SELECT 1", None)
    assert job.labels == {
        "flowc_pipeline": "green_taxi",
        "flowc_run": "20201101-060000-ab12",
        "flowc_step": "a_b",
    }


@pytest.mark.parametrize("content", [None, "{not json"])
def test_an_unreadable_service_account_file_is_a_step_error_without_its_path(
    tmp_path: Path, content: str | None
) -> None:
    secret = tmp_path / "secret-sa-file.json"
    if content is not None:
        secret.write_text(content)
    settings = BigQuerySettings(project="p", credentials=SecretStr(str(secret)))
    with pytest.raises(StepError, match="cannot read the BigQuery service-account file") as raised:
        BigQueryEngine.from_settings(settings, tmp_path)
    assert "secret-sa-file" not in str(raised.value)


def test_a_failed_replace_inside_a_run_commits_nothing_of_it(
    engine: BigQueryEngine, other: BigQueryEngine, dataset: str
) -> None:
    engine.load_batches("trips", TRIPS.schema, iter(reader(TRIPS)))
    engine.begin()

    def build(staging: object) -> int:
        engine.create_table(staging, Query("SELECT 1 AS id"))  # type: ignore[arg-type]
        raise StepError("the source broke")

    with pytest.raises(StepError, match="the source broke"):
        engine.replace_atomically("trips", build)
    engine.commit()
    names = [t.table_id for t in other._client.list_tables(dataset)]
    assert names == ["trips"]
    assert len(rows(other, "SELECT id FROM trips")) == 3
