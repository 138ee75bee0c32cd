"""The Postgres adapter on a real server (tests/pg_server.py): types in and out, atomic
replace, append, merge, COPY errors, names, secrets, the run lock."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from flowc.project.config import PostgresSettings
from flowc.runtime.engines.base import CsvCopying, Query, RunLocking, TableName
from flowc.runtime.engines.postgres import PostgresEngine
from flowc.runtime.errors import DataError, StepError
from pg_server import PgDatabase
from psycopg2.extensions import make_dsn
from pydantic import SecretStr


@pytest.fixture
def engine(pg: PgDatabase) -> Iterator[PostgresEngine]:
    with PostgresEngine.connect(pg.dsn, schema="work") as opened:
        yield opened


ROWS = pa.table(
    {
        "VendorID": pa.array([1, None, 3], pa.int32()),
        "big": pa.array([1, 2, 3_000_000_000], pa.int64()),
        "fare": pa.array(
            [decimal.Decimal("8.50"), None, decimal.Decimal("-1.25")], pa.decimal128(10, 2)
        ),
        "x": pa.array([1.5, None, 2.25], pa.float64()),
        "name": pa.array(["a", "", None], pa.string()),
        "flag": pa.array([True, False, None], pa.bool_()),
        "day": pa.array([dt.date(2020, 10, 1), None, dt.date(2020, 12, 31)], pa.date32()),
        "at": pa.array(
            [dt.datetime(2020, 10, 1, 12, 30, 1, 5), None, dt.datetime(2021, 1, 1)],
            pa.timestamp("us"),
        ),
    }
)


def _reader(table: pa.Table) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=2))


def test_arrow_rows_round_trip_with_their_types(engine: PostgresEngine, pg: PgDatabase) -> None:
    assert engine.create_table("trips", _reader(ROWS)) == 3
    back = engine.read_batches("trips", batch_size=2).read_all()
    assert back.column_names == ROWS.column_names  # names as declared, as documented
    assert back.schema.types == ROWS.schema.types
    assert back.to_pylist() == ROWS.to_pylist()
    # the table landed in the connection's schema, which was created for it
    assert pg.query("SELECT count(*) FROM work.trips") == [(3,)]


def test_sums_and_averages_read_as_decimals_and_doubles(engine: PostgresEngine) -> None:
    engine.create_table("t", _reader(ROWS))
    sql = 'SELECT sum(fare) AS s, avg(x) AS a, count(*) AS n FROM "t"'
    found = engine.read_batches(Query(sql)).read_all()
    assert found.schema.field("s").type == pa.decimal128(38, 2)
    assert found.to_pylist() == [{"s": decimal.Decimal("7.25"), "a": 1.875, "n": 3}]


def test_a_query_binds_parameters_and_keeps_literal_percent(engine: PostgresEngine) -> None:
    engine.create_table("t", _reader(ROWS))
    sql = "SELECT count(*) AS n FROM \"t\" WHERE big >= %(low)s AND 'a%%' LIKE 'a%%'"
    assert engine.read_batches(Query(sql, {"low": 2})).read_all().to_pylist() == [{"n": 2}]


def test_a_failed_replace_leaves_the_old_table(engine: PostgresEngine, pg: PgDatabase) -> None:
    engine.create_table("t", Query("SELECT 1 AS x"))

    def build(staging: TableName) -> int:
        engine.create_table(staging, Query("SELECT 2 AS x"))
        raise StepError("the build failed")

    with pytest.raises(StepError, match="the build failed"):
        engine.replace_atomically("t", build)
    assert pg.query('SELECT x FROM work."t"') == [(1,)]
    assert pg.query("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%%staging%%'") == [(0,)]
    engine.replace_atomically("t", lambda s: engine.create_table(s, Query("SELECT 3 AS x")))
    assert pg.query('SELECT x FROM work."t"') == [(3,)]


def test_append_matches_columns_by_name_and_merge_upserts_by_key(
    engine: PostgresEngine, pg: PgDatabase
) -> None:
    table = "hist.sales"
    first = pa.table({"id": [1, 2], "amount": [1.0, 2.0]})
    assert engine.append(table, _reader(first)) == 2  # created, in its own schema
    reordered = pa.table({"AMOUNT": [3.0], "Id": [3]})
    assert engine.append(table, _reader(reordered)) == 1
    assert pg.query("SELECT id, amount FROM hist.sales ORDER BY id") == [
        (1, 1.0),
        (2, 2.0),
        (3, 3.0),
    ]
    changes = pa.table({"id": [2, 4], "amount": [20.0, 40.0]})
    assert engine.merge(table, ["ID"], _reader(changes)) == 2
    assert pg.query("SELECT id, amount FROM hist.sales ORDER BY id") == [
        (1, 1.0),
        (2, 20.0),
        (3, 3.0),
        (4, 40.0),
    ]
    twice = pa.table({"id": [5, 5], "amount": [1.0, 2.0]})
    with pytest.raises(StepError, match="repeat the key"):
        engine.merge(table, ["id"], _reader(twice))
    with pytest.raises(StepError, match="has no column `nope`"):
        engine.append(table, _reader(pa.table({"nope": [1]})))
    assert pg.query("SELECT count(*) FROM hist.sales") == [(4,)]


def test_copy_csv_names_file_row_and_column_of_a_bad_value(
    engine: PostgresEngine, pg: PgDatabase
) -> None:
    assert isinstance(engine, CsvCopying) and isinstance(engine, RunLocking)
    engine.execute('CREATE TABLE "trips" ("vendorid" INT, "fare" DECIMAL(10, 2) NOT NULL)')
    good = io.BytesIO(b"VendorID,fare\n1,8.50\n,1.00\n")
    assert engine.copy_csv("trips", ["vendorid", "fare"], good, origin="data/a.csv") == 2
    bad = io.BytesIO(b"fare,VendorID\n1.00,1\n2.00,x\n")
    with pytest.raises(DataError) as failed:
        engine.copy_csv("trips", ["fare", "vendorid"], bad, origin="data/b.csv")
    assert failed.value.origin == "data/b.csv"
    assert (failed.value.row, failed.value.column) == (2, "vendorid")
    assert 'invalid input syntax for type integer: "x"' in str(failed.value)
    empty = io.BytesIO(b"VendorID,fare\n1,\n")
    with pytest.raises(DataError, match=r"data/c.csv, row 1 \(line 2\), column `fare`: null"):
        engine.copy_csv("trips", ["vendorid", "fare"], empty, origin="data/c.csv")
    assert pg.query('SELECT count(*) FROM work."trips"') == [(2,)]


def test_a_sql_error_is_a_step_error_with_postgres_message(engine: PostgresEngine) -> None:
    with pytest.raises(StepError, match='Postgres: relation "nope" does not exist'):
        engine.execute('SELECT * FROM "nope"')


def test_passwords_never_appear_in_connection_errors() -> None:
    secret = "s3cr3t-p@ss"
    settings = PostgresSettings(
        url=SecretStr(f"postgresql://me:{secret.replace('@', '%40')}@/x?host=/nonexistent")
    )
    with pytest.raises(StepError) as failed:
        PostgresEngine.from_settings(settings, Path())
    assert "cannot connect to Postgres" in str(failed.value)
    assert secret not in str(failed.value) and "s3cr3t" not in str(failed.value)
    by_keys = PostgresSettings(host="/nonexistent", user="me", password=SecretStr(secret))
    with pytest.raises(StepError) as again:
        PostgresEngine.from_settings(by_keys, Path())
    assert "s3cr3t" not in str(again.value)


def test_a_second_run_waits_for_the_run_lock_and_says_so(pg: PgDatabase) -> None:
    first = PostgresEngine.connect(pg.dsn)
    second = PostgresEngine.connect(pg.dsn)
    try:
        first.lock_run("`p` of `x` (profile `pg`)", lambda m: None)
        first.begin()  # the lock is the session's: transactions come and go under it
        first.commit()
        heard: list[str] = []
        got_it = threading.Event()

        def run_second() -> None:
            second.lock_run("`p` of `x` (profile `pg`)", heard.append)
            got_it.set()

        waiter = threading.Thread(target=run_second)
        waiter.start()
        time.sleep(0.5)
        assert not got_it.is_set()
        assert heard and heard[0].startswith("waiting for another run of `p` of `x`")
        first.close()  # the run ends (or its process dies): the server frees the lock
        waiter.join(timeout=10)
        assert got_it.is_set()
    finally:
        first.close()
        second.close()


def test_copy_into_a_table_new_in_the_transaction_works_with_or_without_cursors(
    engine: PostgresEngine, pg: PgDatabase
) -> None:
    engine.begin()
    engine.execute('CREATE TABLE "t" ("x" INT)')
    assert engine.copy_csv("t", ["x"], io.BytesIO(b"x\n1\n"), origin="a.csv", new_table=True) == 1
    engine.execute('CREATE TABLE "u" ("x" INT)')
    open_read = engine.read_batches(Query('SELECT * FROM "t"'))  # a cursor is open now
    assert engine.copy_csv("u", ["x"], io.BytesIO(b"x\n2\n"), origin="b.csv", new_table=True) == 1
    assert open_read.read_all().num_rows == 1
    engine.commit()
    assert pg.query('SELECT x FROM work."t" UNION ALL SELECT x FROM work."u"') == [(1,), (2,)]
    # outside a transaction the table is not new to it: a plain COPY
    assert engine.copy_csv("u", ["x"], io.BytesIO(b"x\n3\n"), origin="c.csv", new_table=True) == 1


def test_a_source_error_while_copying_is_raised_as_itself(
    engine: PostgresEngine, pg: PgDatabase
) -> None:
    schema = pa.schema([pa.field("x", pa.int64())])

    def batches() -> Iterator[pa.RecordBatch]:
        yield pa.record_batch([pa.array([1, 2])], schema=schema)
        raise DataError("data/a.csv", 3, "x", "'y' is not a valid bigint")

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    with pytest.raises(DataError, match=r"data/a\.csv, row 3, column `x`"):
        engine.replace_atomically("t", lambda staging: engine.create_table(staging, reader))
    assert pg.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'work'") == [(0,)]


def test_time_zones_bytes_and_durations_round_trip(engine: PostgresEngine) -> None:
    table = pa.table(
        {
            "at": pa.array(
                [dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC), None], pa.timestamp("us", "UTC")
            ),
            "raw": pa.array([b"\x00\xffab", None], pa.binary()),
            "t": pa.array([dt.time(1, 2, 3), None], pa.time64("us")),
            "took": pa.array([dt.timedelta(days=1, microseconds=5), None], pa.duration("us")),
        }
    )
    engine.create_table("z", _reader(table))
    assert engine.read_batches("z").read_all().equals(table)


def test_lists_round_trip_as_arrays_not_text(engine: PostgresEngine, pg: PgDatabase) -> None:
    tricky = ['say "hi"', "back\\slash", "", None, "{braces},", "NULL", "李雷"]
    table = pa.table(
        {
            "words": pa.array([tricky, [], None], pa.list_(pa.string())),
            "ids": pa.array([[1, None, 3], [2**40], None], pa.list_(pa.int64())),
            "flags": pa.array([[True, False], [None], []], pa.list_(pa.bool_())),
            "days": pa.array([[dt.date(2020, 10, 1)], None, []], pa.list_(pa.date32())),
            "at": pa.array(
                [[dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC)], [], None],
                pa.list_(pa.timestamp("us", "UTC")),
            ),
            "x": pa.array([[0.5, -1e-05], [float("inf")], None], pa.list_(pa.float64())),
        }
    )
    engine.create_table("l", _reader(table))
    assert pg.query(
        "SELECT array_ndims(words), words[1], words[4] IS NULL FROM work.l LIMIT 1"
    ) == [(1, 'say "hi"', True)]
    assert engine.read_batches("l").read_all().equals(table)


def test_a_numeric_array_reads_as_exact_decimals(engine: PostgresEngine) -> None:
    query = Query("SELECT ARRAY[1.5, 2.25, NULL]::numeric[] AS a, ARRAY[]::numeric[] AS e")
    back = engine.read_batches(query).read_all()
    assert back.schema.field("a").type == pa.list_(pa.decimal128(38, 2))
    assert back.column("a").to_pylist() == [
        [decimal.Decimal("1.50"), decimal.Decimal("2.25"), None]
    ]
    assert back.column("e").to_pylist() == [[]]


def test_a_user_who_may_not_create_schemas_works_in_an_existing_one(pg: PgDatabase) -> None:
    role = f"flowc_reader_{uuid.uuid4().hex[:8]}"  # roles belong to the whole server
    pg.execute(
        f"CREATE ROLE {role} LOGIN PASSWORD 'reader-pw'; GRANT CREATE ON SCHEMA public TO {role}"
    )
    try:
        dsn = make_dsn(pg.dsn, user=role, password="reader-pw")
        with PostgresEngine.connect(dsn, schema="public") as engine:
            assert engine.create_table("t", Query("SELECT 1 AS x")) == 1
        with pytest.raises(StepError, match="permission denied"):
            PostgresEngine.connect(dsn, schema="elsewhere")
    finally:
        pg.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_a_profile_connects_by_url_or_by_keys(pg: PgDatabase) -> None:
    parts = pg.env()
    by_keys = PostgresSettings(
        host=parts["POSTGRES_HOST"],
        port=int(parts["POSTGRES_PORT"]),
        dbname=pg.dbname,
        user=parts["POSTGRES_USER"],
        password=SecretStr(parts["POSTGRES_PASSWORD"]) if parts["POSTGRES_PASSWORD"] else None,
        db_schema="Staging",
    )
    for settings in (PostgresSettings(url=SecretStr(pg.url)), by_keys):
        with PostgresEngine.from_settings(settings, Path()) as engine:
            engine.create_table("t", Query("SELECT 1 AS x"))
            engine.execute('DROP TABLE "t"')
    # the schema's name is as written, as every name flowc creates
    assert pg.query("SELECT nspname FROM pg_namespace WHERE nspname = 'Staging'") == [("Staging",)]


def test_fold_names_creates_every_name_in_lower_case(pg: PgDatabase) -> None:
    settings = PostgresSettings(url=SecretStr(pg.url), db_schema="Folded", fold_names=True)
    with PostgresEngine.from_settings(settings, Path()) as engine:
        assert engine.create_table("Trips", _reader(ROWS)) == 3
        back = engine.read_batches("Trips").read_all()
        assert back.column_names == [n.lower() for n in ROWS.column_names]
        assert engine.append("Trips", _reader(ROWS)) == 3  # columns matched ignoring case
    assert pg.query("SELECT count(*) FROM folded.trips") == [(6,)]


def test_a_stage_is_built_aside_and_published_by_moving_its_tables(
    engine: PostgresEngine, pg: PgDatabase
) -> None:
    engine.execute('CREATE TABLE "t" AS SELECT 1 AS x')
    engine.execute('CREATE TABLE "kept" AS SELECT 7 AS x')
    engine.use_stage("_flowc_p_1")
    engine.execute('DROP TABLE IF EXISTS "t" CASCADE')  # narrowed to the stage
    engine.execute('CREATE TABLE "t" AS SELECT x + 1 AS x FROM "kept"')
    engine.execute('CREATE VIEW "v" AS SELECT x * 10 AS y FROM "t"')
    other = engine.worker()
    try:
        assert other.read_batches(Query('SELECT * FROM "v"')).read_all().to_pylist() == [{"y": 80}]
    finally:
        other.close()
    assert pg.query("SELECT x FROM work.t") == [(1,)]  # others see the real table meanwhile
    engine.begin()
    engine.publish("_flowc_p_1", ["t", "v"])
    engine.use_stage(None)
    engine.commit()
    assert pg.query("SELECT x FROM work.t") == [(8,)]
    assert pg.query("SELECT y FROM work.v") == [(80,)]
    assert pg.query("SELECT count(*) FROM pg_namespace WHERE nspname = '_flowc_p_1'") == [(0,)]
    engine.use_stage("_flowc_p_2")
    engine.use_stage(None)
    engine.drop_stages("_flowc_p_", keep=())
    assert pg.query("SELECT count(*) FROM pg_namespace WHERE nspname LIKE '\\_flowc%%'") == [(0,)]
