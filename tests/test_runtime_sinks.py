"""Sinks against real files and a real DuckDB file: Parquet layout, CSV, tables, atomicity."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from flowc.runtime.engines.base import Query
from flowc.runtime.engines.duckdb import DuckDBEngine
from flowc.runtime.errors import DataError, StepError
from flowc.runtime.io.sinks import stage_parquet_query, write_csv, write_parquet, write_table

_TYPES: dict[str, pa.DataType] = {"day": pa.date32(), "trips": pa.int64(), "note": pa.string()}
SCHEMA = pa.schema(list(_TYPES.items()))


def stream(*rows: tuple[date, int, str | None], fail: bool = False) -> pa.RecordBatchReader:
    def batches() -> Iterator[pa.RecordBatch]:
        for day, trips, note in rows:
            yield pa.RecordBatch.from_pylist([{"day": day, "trips": trips, "note": note}], SCHEMA)
        if fail:
            raise DataError("upstream.csv", len(rows) + 1, "trips", "'x' is not a valid bigint")

    return pa.RecordBatchReader.from_batches(SCHEMA, batches())


D1, D2 = date(2020, 10, 1), date(2020, 10, 2)


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_partitioned_parquet_is_one_file_per_partition_hive_style(tmp_path: Path) -> None:
    rows = write_parquet(
        tmp_path,
        "out/trips/",
        stream((D1, 1, "a"), (D2, 2, "b"), (D1, 3, "c")),
        partition_by=["DAY"],
    )
    assert rows == 3
    out = tmp_path / "out" / "trips"
    assert files(out) == ["day=2020-10-01/part-0.parquet", "day=2020-10-02/part-0.parquet"]
    first = pq.read_table(out / "day=2020-10-01" / "part-0.parquet")
    assert first.schema.names == ["trips", "note"]  # the partition value is in the folder name
    assert first.column("trips").to_pylist() == [1, 3]
    back = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    assert sorted(int(n or 0) for n in back.column("trips").to_pylist()) == [1, 2, 3]
    query = f"SELECT sum(trips) FROM read_parquet('{out}/*/*.parquet', hive_partitioning=1)"
    with duckdb.connect() as connection:
        assert connection.execute(query).fetchall() == [(6,)]


def test_parquet_without_partitions_is_one_file_and_replaces_the_old_output(
    tmp_path: Path,
) -> None:
    write_parquet(tmp_path, "out/all", stream((D1, 1, "a")), partition_by=["day"])
    write_parquet(tmp_path, "out/all", stream((D1, 5, None), (D2, 6, "z")))
    out = tmp_path / "out" / "all"
    assert files(out) == ["part-0.parquet"]
    assert pq.read_table(out / "part-0.parquet").column("trips").to_pylist() == [5, 6]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["all"]  # nothing left aside


def test_an_empty_stream_still_writes_the_schema(tmp_path: Path) -> None:
    write_parquet(tmp_path, "out/none", stream())
    assert pq.read_schema(tmp_path / "out" / "none" / "part-0.parquet") == SCHEMA


def test_a_failing_parquet_write_leaves_the_old_output_intact(tmp_path: Path) -> None:
    write_parquet(tmp_path, "out/t", stream((D1, 1, "old")), partition_by=["day"])
    before = files(tmp_path / "out" / "t")
    with pytest.raises(DataError):
        write_parquet(tmp_path, "out/t", stream((D2, 2, "new"), fail=True), partition_by=["day"])
    assert files(tmp_path / "out" / "t") == before
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["t"]


def test_partition_by_an_unknown_column_fails(tmp_path: Path) -> None:
    with pytest.raises(StepError, match="no column `month`"):
        write_parquet(tmp_path, "out/t", stream((D1, 1, "a")), partition_by=["month"])


def test_duckdb_writes_the_same_parquet_layout_itself(tmp_path: Path) -> None:
    """The executor's route: DuckDB writes a query's rows, staged like the Arrow route."""
    with DuckDBEngine.connect(tmp_path / "w.duckdb") as engine:
        write_table(engine, "t", stream((D1, 1, "a"), (D2, 2, "b"), (D1, 3, None)))
        query = Query("SELECT * FROM t WHERE trips >= $low", {"low": 1, "unused": 0})
        staged = stage_parquet_query(tmp_path, "out/t", engine, query, partition_by=["DAY"])
        assert staged.rows == 3 and not (tmp_path / "out" / "t").exists()  # not yet in place
        staged.commit()
        out = tmp_path / "out" / "t"
        assert files(out) == ["day=2020-10-01/part-0.parquet", "day=2020-10-02/part-0.parquet"]
        first = pq.read_table(out / "day=2020-10-01" / "part-0.parquet")
        assert first.schema.names == ["trips", "note"]
        assert first.column("note").to_pylist() == ["a", None]

        none = Query("SELECT * FROM t WHERE trips > 9")
        stage_parquet_query(tmp_path, "out/none", engine, none).commit()
        assert pq.read_table(tmp_path / "out" / "none" / "part-0.parquet").num_rows == 0
        stage_parquet_query(tmp_path, "out/t", engine, none, partition_by=["day"]).commit()
        assert files(out) == []  # replaced by an empty folder
        with pytest.raises(StepError, match="no column `month`"):
            stage_parquet_query(tmp_path, "out/t", engine, query, partition_by=["month"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["none", "t"]


def test_csv_has_a_header_and_is_replaced_atomically(tmp_path: Path) -> None:
    assert write_csv(tmp_path, "out/daily.csv", stream((D1, 1, "a,b"), (D2, 2, None))) == 2
    with (tmp_path / "out" / "daily.csv").open(newline="") as text:
        assert list(csv.reader(text)) == [
            ["day", "trips", "note"],
            ["2020-10-01", "1", "a,b"],
            ["2020-10-02", "2", ""],
        ]
    before = (tmp_path / "out" / "daily.csv").read_bytes()
    with pytest.raises(DataError):
        write_csv(tmp_path, "out/daily.csv", stream((D2, 9, "new"), fail=True))
    assert (tmp_path / "out" / "daily.csv").read_bytes() == before
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["daily.csv"]


def test_csv_writes_lists_structs_and_maps_as_json_text(tmp_path: Path) -> None:
    table = pa.table(
        {
            "ids": pa.array([[1, None], None], pa.list_(pa.int64())),
            "words": pa.array([['say "hi"', "李"], []], pa.list_(pa.string())),
            "pair": pa.array(
                [{"at": date(2020, 1, 2), "fare": Decimal("1.50")}, None],
                pa.struct([("at", pa.date32()), ("fare", pa.decimal128(5, 2))]),
            ),
            "tags": pa.array([[("k", 1.5)], None], pa.map_(pa.string(), pa.float64())),
        }
    )
    write_csv(
        tmp_path, "nested.csv", pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    )
    with (tmp_path / "nested.csv").open(newline="", encoding="utf-8") as text:
        rows = list(csv.reader(text))
    assert rows == [
        ["ids", "words", "pair", "tags"],
        ["[1, null]", '["say \\"hi\\"", "李"]', '{"at": "2020-01-02", "fare": 1.50}', '{"k": 1.5}'],
        ["", "[]", "", ""],
    ]


def test_csv_gz_is_compressed(tmp_path: Path) -> None:
    write_csv(tmp_path, "daily.csv.gz", stream((D1, 1, "a")))
    text = gzip.decompress((tmp_path / "daily.csv.gz").read_bytes()).decode()
    assert text.splitlines()[0] == '"day","trips","note"'


def test_table_sinks_replace_append_and_merge(tmp_path: Path) -> None:
    with DuckDBEngine.connect(tmp_path / "w.duckdb") as engine:
        assert write_table(engine, "ny.daily", stream((D1, 1, "a"))) == 1
        assert write_table(engine, "ny.daily", stream((D1, 2, "b"), (D2, 3, "c"))) == 2
        write_table(engine, "ny.daily", stream((D2, 4, "d")), mode="append")
        write_table(engine, "ny.daily", stream((D2, 5, "e")), mode="merge", key=["trips"])
        write_table(engine, "ny.daily", stream((D1, 2, "B")), mode="merge", key=["trips"])
        got = engine.read_batches(Query("SELECT trips, note FROM ny.daily ORDER BY trips"))
        assert got.read_all().to_pylist() == [
            {"trips": 2, "note": "B"},
            {"trips": 3, "note": "c"},
            {"trips": 4, "note": "d"},
            {"trips": 5, "note": "e"},
        ]


def test_a_failing_table_replace_keeps_the_old_table(tmp_path: Path) -> None:
    with DuckDBEngine.connect(tmp_path / "w.duckdb") as engine:
        write_table(engine, "daily", stream((D1, 1, "old")))
        with pytest.raises(DataError):
            write_table(engine, "daily", stream((D2, 2, "new"), fail=True))
        rows = engine.read_batches("daily").read_all().column("note").to_pylist()
        assert rows == ["old"]
