"""The DuckDB adapter against a real DuckDB file: loads, reads, atomic replace, append, merge."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from flowc.project.config import DuckDBSettings
from flowc.runtime.engines.base import Query, TableName
from flowc.runtime.engines.duckdb import DIALECT, DuckDBEngine, default_memory_limit
from flowc.runtime.errors import DataError, StepError


def arrow_schema(**types: pa.DataType) -> pa.Schema:
    """A schema from names and types (in a form the pyarrow stubs accept)."""
    return pa.schema(list(types.items()))


SCHEMA = arrow_schema(id=pa.int64(), Name=pa.string())


def batches(*rows: tuple[int, str]) -> Iterator[pa.RecordBatch]:
    for row_id, name in rows:
        yield pa.record_batch([pa.array([row_id]), pa.array([name])], schema=SCHEMA)


def reader(*rows: tuple[int, str]) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(SCHEMA, batches(*rows))


def rows(engine: DuckDBEngine, table: str) -> list[tuple[object, ...]]:
    result = engine.read_batches(Query(f"SELECT * FROM {engine.quote(table)} ORDER BY 1"))
    return [tuple(r.values()) for r in result.read_all().to_pylist()]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DuckDBEngine]:
    with DuckDBEngine.connect(tmp_path / "db" / "local.duckdb") as opened:
        yield opened


def test_connect_creates_the_file_and_its_folder(tmp_path: Path) -> None:
    settings = DuckDBSettings(path=".flowc/local.duckdb")
    with DuckDBEngine.from_settings(settings, tmp_path) as engine:
        engine.execute("CREATE TABLE t AS SELECT 1 AS x")
    assert (tmp_path / ".flowc" / "local.duckdb").is_file()
    assert DIALECT == "duckdb" == engine.dialect


def memory_limit(engine: DuckDBEngine) -> object:
    found = engine.read_batches(Query("SELECT current_setting('memory_limit') AS m"))
    return found.read_all().to_pylist()[0]["m"]


def setting(engine: DuckDBEngine, name: str) -> object:
    found = engine.read_batches(Query(f"SELECT current_setting('{name}') AS m"))
    return found.read_all().to_pylist()[0]["m"]


def test_the_buffer_pool_is_a_quarter_of_the_machine_by_default_and_flow_toml_sets_it(
    tmp_path: Path,
) -> None:
    with DuckDBEngine.from_settings(DuckDBSettings(path="a.duckdb"), tmp_path) as engine:
        shown = str(memory_limit(engine))
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    number, unit = shown.split()
    given = float(number) * {"MiB": 2**20, "GiB": 2**30}[unit]
    wanted = int(default_memory_limit().removesuffix("MiB")) * 2**20
    assert abs(given - wanted) <= 0.1 * 2**30  # DuckDB shows it to one decimal place
    assert 256 * 2**20 <= wanted <= max(physical // 4, 256 * 2**20)  # not DuckDB's 80%
    settings = DuckDBSettings(path="b.duckdb", memory_limit="1GB")
    with DuckDBEngine.from_settings(settings, tmp_path) as engine:
        assert memory_limit(engine) == "953.6 MiB"


def test_threads_and_temp_directory_come_from_flow_toml(tmp_path: Path) -> None:
    settings = DuckDBSettings(path="c.duckdb", threads=1, temp_directory="spill")
    with DuckDBEngine.from_settings(settings, tmp_path) as engine:
        assert setting(engine, "threads") == 1
        assert setting(engine, "temp_directory") == str(tmp_path / "spill")


def test_duckdb_prints_no_progress_bar(tmp_path: Path) -> None:
    # in a process of its own: under pytest's captured output DuckDB starts without it
    script = (
        "from flowc.runtime.engines.duckdb import DuckDBEngine\n"
        f"engine = DuckDBEngine.connect({str(tmp_path / 'p.duckdb')!r})\n"
        "print(engine.scalar(\"SELECT current_setting('enable_progress_bar')\"))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert shown.stdout.strip() == "False", shown.stdout + shown.stderr


def test_out_of_memory_names_the_flow_toml_setting(tmp_path: Path) -> None:
    settings = DuckDBSettings(path="d.duckdb", memory_limit="32MB", threads=1)
    with DuckDBEngine.from_settings(settings, tmp_path) as engine:
        engine.execute("SET temp_directory = ''")  # nowhere to spill: the limit is hard
        wide = ", ".join(f"repeat('x', 200) || i AS c{n}" for n in range(50))
        with pytest.raises(StepError) as caught:
            engine.execute(f"CREATE TABLE w AS SELECT {wide} FROM range(200000) t(i) ORDER BY c1")
    message = caught.value.message
    assert message.startswith("DuckDB ran out of memory: "), message
    assert "`memory_limit` of the DuckDB connection in flow.toml" in message
    assert "SET " not in message


def test_load_and_read_batches_round_trip_in_a_new_schema(engine: DuckDBEngine) -> None:
    loaded = engine.load_batches("ny_taxi.people", SCHEMA, batches((1, "a"), (2, "b")))
    assert loaded == 2
    assert engine.table_exists("NY_TAXI.PEOPLE")  # names compare case-insensitively
    assert engine.table_schema("ny_taxi.people") == SCHEMA  # declared case kept: `Name`
    assert rows(engine, "ny_taxi.people") == [(1, "a"), (2, "b")]
    assert engine.read_batches("ny_taxi.people", batch_size=1).read_all().num_rows == 2


def test_execute_binds_parameters_and_ignores_unused_ones(engine: DuckDBEngine) -> None:
    engine.execute("CREATE TABLE t AS SELECT $day::DATE AS d", {"day": "2020-10-01", "x": 1})
    got = engine.read_batches(Query("SELECT d FROM t WHERE d >= $day", {"day": "2020-01-01"}))
    assert got.read_all().num_rows == 1


def test_sql_errors_are_step_errors(engine: DuckDBEngine) -> None:
    with pytest.raises(StepError, match="DuckDB"):
        engine.execute("SELECT * FROM missing_table")


def test_a_failing_stream_creates_no_table_and_keeps_its_own_error(engine: DuckDBEngine) -> None:
    def failing() -> Iterator[pa.RecordBatch]:
        yield from batches((1, "a"))
        raise DataError("data/x.csv", 2, "id", "'x' is not a valid bigint")

    with pytest.raises(DataError, match="row 2"):
        engine.load_batches("t", SCHEMA, failing())
    assert not engine.table_exists("t")


def test_replace_swaps_in_the_new_table(engine: DuckDBEngine) -> None:
    engine.load_batches("s.t", SCHEMA, batches((1, "old")))
    rows_written = engine.replace_atomically(
        "s.t", lambda staging: engine.load_batches(staging, SCHEMA, batches((2, "new"), (3, "x")))
    )
    assert rows_written == 2
    assert rows(engine, "s.t") == [(2, "new"), (3, "x")]
    assert _tables(engine) == ["t"]  # no staging table left behind


def test_a_failing_replace_leaves_the_old_table_unchanged(engine: DuckDBEngine) -> None:
    engine.load_batches("s.t", SCHEMA, batches((1, "old"), (2, "old")))

    def build(staging: TableName) -> int:
        engine.load_batches(staging, SCHEMA, batches((9, "half")))
        raise RuntimeError("the build failed after writing part of the new table")

    with pytest.raises(RuntimeError):
        engine.replace_atomically("s.t", build)
    assert rows(engine, "s.t") == [(1, "old"), (2, "old")]
    assert engine.table_schema("s.t") == SCHEMA
    assert _tables(engine) == ["t"]


def test_a_reader_sees_the_old_table_or_the_new_one(engine: DuckDBEngine) -> None:
    engine.load_batches("t", SCHEMA, batches((1, "old")))
    old_snapshot = engine.read_batches(Query("SELECT * FROM t"))  # opened before the swap
    engine.replace_atomically("t", lambda s: engine.load_batches(s, SCHEMA, batches((2, "new"))))
    assert old_snapshot.read_all().column("Name").to_pylist() == ["old"]
    assert rows(engine, "t") == [(2, "new")]


def test_replace_replaces_a_view_too(engine: DuckDBEngine) -> None:
    engine.execute("CREATE VIEW v AS SELECT 1 AS id, 'view' AS \"Name\"")
    engine.replace_atomically("v", lambda s: engine.load_batches(s, SCHEMA, batches((5, "t"))))
    assert rows(engine, "v") == [(5, "t")]


def test_append_creates_then_adds_by_column_name(engine: DuckDBEngine) -> None:
    assert engine.append("s.t", reader((1, "a"))) == 1
    swapped = arrow_schema(Name=pa.string(), id=pa.int64())
    later = pa.RecordBatchReader.from_batches(
        swapped, iter([pa.record_batch([pa.array(["b"]), pa.array([2])], schema=swapped)])
    )
    assert engine.append("s.t", later) == 1
    assert engine.append("s.t", Query("SELECT 3 AS id, 'c' AS \"Name\"")) == 1
    assert rows(engine, "s.t") == [(1, "a"), (2, "b"), (3, "c")]


def test_a_failing_append_adds_nothing(engine: DuckDBEngine) -> None:
    engine.append("t", reader((1, "a")))

    def failing() -> Iterator[pa.RecordBatch]:
        yield from batches((2, "b"))
        raise DataError("f.csv", 2, "id", "bad")

    with pytest.raises(DataError):
        engine.append("t", pa.RecordBatchReader.from_batches(SCHEMA, failing()))
    assert rows(engine, "t") == [(1, "a")]


def test_merge_replaces_rows_by_key_and_adds_new_ones(engine: DuckDBEngine) -> None:
    engine.merge("t", ["id"], reader((1, "a"), (2, "b")))
    assert engine.merge("t", ["id"], reader((2, "B"), (3, "c"))) == 2
    assert rows(engine, "t") == [(1, "a"), (2, "B"), (3, "c")]


def test_merge_rejects_repeated_keys_and_changes_nothing(engine: DuckDBEngine) -> None:
    engine.merge("t", ["id"], reader((1, "a")))
    with pytest.raises(StepError, match="repeat the key"):
        engine.merge("t", ["id"], reader((1, "x"), (1, "y")))
    assert rows(engine, "t") == [(1, "a")]


def _tables(engine: DuckDBEngine) -> list[str]:
    result = engine.read_batches(Query("SELECT table_name FROM information_schema.tables"))
    return sorted(str(name) for name in result.read_all().column(0).to_pylist())


def test_a_run_transaction_sees_its_own_writes_and_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "run.duckdb"
    with DuckDBEngine.connect(path) as engine:
        engine.load_batches("t", SCHEMA, batches((1, "old")))
        engine.begin()
        assert engine.in_transaction
        engine.replace_atomically("t", lambda s: engine.create_table(s, reader((2, "new"))))
        engine.append("u", reader((3, "x")))
        assert rows(engine, "t") == [(2, "new")]  # a read inside sees the uncommitted table
        with pytest.raises(StepError):
            engine.begin()
        engine.rollback()
        assert not engine.in_transaction
        assert rows(engine, "t") == [(1, "old")]
        assert not engine.table_exists("u")
        engine.begin()
        engine.append("u", reader((3, "x")))
        engine.commit()
    with DuckDBEngine.connect(path, read_only=True) as again:
        assert rows(again, "u") == [(3, "x")]


# --- a run built aside (`Staging`) -----------------------------------------------------------


def _rows(engine: DuckDBEngine, sql: str) -> list[dict[str, object]]:
    return engine.read_batches(Query(sql)).read_all().to_pylist()


def test_a_stage_is_read_first_and_written_to_and_leaves_the_real_tables(
    engine: DuckDBEngine,
) -> None:
    engine.execute("CREATE TABLE t AS SELECT 1 AS x")
    engine.execute("CREATE TABLE kept AS SELECT 7 AS x")
    engine.use_stage("_flowc_p_1")
    engine.execute('DROP TABLE IF EXISTS "t"')  # narrowed to the stage: the real t stays
    engine.execute('CREATE OR REPLACE TABLE "t" AS SELECT x + 1 AS x FROM "kept"')
    assert _rows(engine, 'SELECT * FROM "t"') == [{"x": 8}]  # the stage's, then the real kept
    assert _rows(engine, "SELECT * FROM main.t") == [{"x": 1}]
    assert engine.worker().table_exists("t")  # a worker's connection has the stage too
    engine.use_stage(None)
    assert _rows(engine, 'SELECT * FROM "t"') == [{"x": 1}]


def test_publish_puts_views_over_the_stage_and_old_stages_go_when_unread(
    engine: DuckDBEngine,
) -> None:
    engine.execute("CREATE TABLE t AS SELECT 1 AS x")
    for stage, value in (("_flowc_p_1", 2), ("_flowc_p_2", 3)):
        engine.use_stage(stage)
        engine.execute(f'CREATE TABLE "t" AS SELECT {value} AS x')
        engine.begin()
        engine.publish(stage, ["t"])
        engine.use_stage(None)
        engine.commit()
        assert _rows(engine, "SELECT * FROM t") == [{"x": value}]
    engine.use_stage("_flowc_other_9")  # another pipeline's stage is not this one's to drop
    engine.use_stage(None)
    engine.drop_stages("_flowc_p_", keep=())
    schemas = _rows(engine, "SELECT schema_name AS s FROM duckdb_schemas() ORDER BY 1")
    names = [row["s"] for row in schemas]
    assert "_flowc_p_1" not in names and "_flowc_p_2" in names and "_flowc_other_9" in names
    assert _rows(engine, "SELECT * FROM t") == [{"x": 3}]


def test_written_tables_leave_the_buffer_pool_when_no_transaction_is_open(
    tmp_path: Path,
) -> None:
    cache = 'SELECT sum(memory_usage_bytes) AS m FROM duckdb_memory() WHERE tag = "BASE_TABLE"'
    settings = DuckDBSettings(path="e.duckdb", memory_limit="2GB")
    with DuckDBEngine.from_settings(settings, tmp_path) as engine:
        for i in range(40):  # 40 steps of 3.2 MB each: 128 MB written, all of it cached
            engine.begin()
            engine.execute(
                f"CREATE TABLE t{i} AS SELECT random() AS a, hash(range) AS b FROM range(200000)"
            )
            engine.commit()
        engine.execute("CHECKPOINT")
        engine.begin()
        engine.commit()
        kept = engine.read_batches(Query(cache.replace('"', "'"))).read_all().to_pylist()[0]["m"]
        assert kept <= 40 * 2**20  # what is left cached (16-32 MiB), not the 128 MB written
        assert memory_limit(engine) == "1.8 GiB"  # and the limit is the connection's again
        assert engine.scalar("SELECT count(*) FROM t0") == 200_000
