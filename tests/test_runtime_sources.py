"""File sources against real files: gzip CSV globs (the green-taxi sample), Parquet, NDJSON."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flowc.runtime.errors import DataError, StepError
from flowc.runtime.io import sources
from flowc.runtime.io.columns import Column, arrow_type
from flowc.runtime.io.sources import read_csv, read_file, read_json, read_parquet, resolve_paths

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "specs" / "green_taxi" / "generate_data.py"

TAXI_COLUMNS = [
    Column("VendorID", "int"),
    Column("lpep_pickup_datetime", "timestamp", not_null=True),
    Column("lpep_dropoff_datetime", "timestamp"),
    Column("store_and_fwd_flag", "varchar"),
    Column("RatecodeID", "int"),
    Column("PULocationID", "int"),
    Column("DOLocationID", "int"),
    Column("passenger_count", "int"),
    Column("trip_distance", "double"),
    Column("fare_amount", "decimal(10, 2)"),
    Column("extra", "decimal(10, 2)"),
    Column("mta_tax", "decimal(10, 2)"),
    Column("tip_amount", "decimal(10, 2)"),
    Column("tolls_amount", "decimal(10, 2)"),
    Column("ehail_fee", "decimal(10, 2)"),
    Column("improvement_surcharge", "decimal(10, 2)"),
    Column("total_amount", "decimal(10, 2)"),
    Column("payment_type", "int"),
    Column("trip_type", "int"),
    Column("congestion_surcharge", "decimal(10, 2)"),
]


def arrow_schema(**types: pa.DataType) -> pa.Schema:
    """A schema from names and types (in a form the pyarrow stubs accept)."""
    return pa.schema(list(types.items()))


def generate_taxi(out: Path, rows: int) -> Path:
    """The green-taxi sample files (two months, gzip CSV) under `out/data`."""
    data = out / "data"
    command = [sys.executable, str(GENERATOR), "--rows", str(rows), "--out", str(data)]
    subprocess.run(command, check=True, capture_output=True)
    return data


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_green_taxi_gzip_glob_reads_every_row_with_declared_types(tmp_path: Path) -> None:
    generate_taxi(tmp_path, 2_000)
    reader = read_csv(tmp_path, "data/green_tripdata_2020-1*.csv.gz", columns=TAXI_COLUMNS)
    table = reader.read_all()
    assert table.num_rows == 2_000
    assert table.schema.names == [c.name for c in TAXI_COLUMNS]
    assert table.schema.field("fare_amount").type == pa.decimal128(10, 2)
    assert table.schema.field("lpep_pickup_datetime").type == pa.timestamp("us")
    months = {t.month for t in table.column("lpep_pickup_datetime").to_pylist() if t}
    assert months >= {10, 11}
    first_pickup = table.column("lpep_pickup_datetime")[0].as_py()
    assert first_pickup is not None and first_pickup.month in (
        9,
        10,
    )  # October's file first (sorted glob); a few from September


def test_glob_order_is_sorted_and_missing_files_fail(tmp_path: Path) -> None:
    for name in ("b.csv", "a.csv", "c.txt"):
        write(tmp_path / "in" / name, f"name\n{name}\n")
    assert [p.name for p in resolve_paths(tmp_path, "in/*.csv")] == ["a.csv", "b.csv"]
    table = read_csv(tmp_path, "in/*.csv", columns=[Column("name", "varchar")]).read_all()
    assert table.column("name").to_pylist() == ["a.csv", "b.csv"]
    with pytest.raises(StepError, match=re.escape("no file matches `in/*.json`")):
        read_json(tmp_path, "in/*.json")


def test_a_value_that_does_not_fit_names_file_row_and_column(tmp_path: Path) -> None:
    write(tmp_path / "data/t.csv", "id,fare\n1,8.5\n2,9\n3,abc\n")
    columns = [Column("id", "int"), Column("fare", "decimal(10, 2)")]
    with pytest.raises(DataError) as caught:
        read_csv(tmp_path, "data/t.csv", columns=columns).read_all()
    error = caught.value
    assert (error.origin, error.row, error.column) == ("data/t.csv", 3, "fare")
    assert "line 4" in str(error)
    assert "'abc' is not a valid decimal(10, 2)" in str(error)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1.2345", "'1.2345' has 4 decimal places, more than decimal(10, 2) keeps (2)"),
        (
            "123456789",
            "'123456789' has 9 digits before the point, more than decimal(10, 2) holds (8)",
        ),
    ],
)
def test_a_decimal_that_does_not_fit_says_which_limit(
    tmp_path: Path, value: str, problem: str
) -> None:
    write(tmp_path / "data/t.csv", f"fare\n8.5\n{value}\n")
    with pytest.raises(DataError, match=re.escape(problem)):
        read_csv(tmp_path, "data/t.csv", columns=[Column("fare", "decimal(10, 2)")]).read_all()


def test_the_row_is_counted_across_blocks_and_gzip(tmp_path: Path) -> None:
    lines = ["n"] + [str(i) for i in range(5_000)] + ["2147483648"]  # too big for an int
    with gzip.open(tmp_path / "big.csv.gz", "wt") as out:
        out.write("\n".join(lines) + "\n")
    reader = read_csv(tmp_path, "big.csv.gz", columns=[Column("n", "int")], block_bytes=1_000)
    with pytest.raises(DataError, match=r"big.csv.gz, row 5001 \(line 5002\), column `n`"):
        reader.read_all()


def test_rounding_is_not_fitting(tmp_path: Path) -> None:
    write(tmp_path / "t.csv", "fare\n8.555\n")
    with pytest.raises(DataError, match=re.escape("8.555")):
        read_csv(tmp_path, "t.csv", columns=[Column("fare", "decimal(10, 2)")]).read_all()


def test_not_null_is_enforced(tmp_path: Path) -> None:
    write(tmp_path / "t.csv", "id,name\n1,a\n,b\n")
    columns = [Column("id", "int", not_null=True), Column("name", "varchar")]
    with pytest.raises(DataError, match=r"row 2 .*column `id`.*not null"):
        read_csv(tmp_path, "t.csv", columns=columns).read_all()


def test_csv_columns_are_matched_by_name_in_any_order_and_case(tmp_path: Path) -> None:
    write(tmp_path / "t.csv", "extra,NAME,id\nx,a,1\ny,,2\n")
    columns = [Column("id", "bigint"), Column("Name", "varchar")]
    table = read_csv(tmp_path, "t.csv", columns=columns).read_all()
    assert table.schema == arrow_schema(id=pa.int64(), Name=pa.string())
    assert table.to_pylist() == [{"id": 1, "Name": "a"}, {"id": 2, "Name": None}]


def test_a_csv_lacking_a_declared_column_fails_naming_it(tmp_path: Path) -> None:
    write(tmp_path / "t.csv", "id\n1\n")
    columns = [Column("id", "int"), Column("name", "varchar")]
    with pytest.raises(StepError, match=re.escape("t.csv has no column `name` (it has `id`)")):
        read_csv(tmp_path, "t.csv", columns=columns).read_all()


def test_a_headerless_csv_takes_the_declared_columns_in_order(tmp_path: Path) -> None:
    write(tmp_path / "t.csv", "1;a\n2;b\n")
    columns = [Column("id", "int"), Column("name", "varchar")]
    table = read_csv(tmp_path, "t.csv", columns=columns, header=False, delimiter=";").read_all()
    assert table.column("name").to_pylist() == ["a", "b"]


def test_a_malformed_csv_fails_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path / "t.csv", "a,b\n1,2\n3\n")
    columns = [Column("a", "int"), Column("b", "int")]
    with pytest.raises(StepError, match=re.escape("t.csv: not valid CSV")):
        read_csv(tmp_path, "t.csv", columns=columns).read_all()


def test_csv_without_declared_columns_is_inferred(tmp_path: Path) -> None:
    write(tmp_path / "t.csv", "a,b\n1,x\n")
    table = read_file(tmp_path, "t.csv", "csv").read_all()
    assert table.schema == arrow_schema(a=pa.int64(), b=pa.string())


def test_parquet_reads_declared_columns_by_name_and_casts(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    for part, ids in (("1", [1, 2]), ("0", [0])):
        table = pa.table({"ID": pa.array(ids, pa.int64()), "other": ["x"] * len(ids)})
        pq.write_table(table, tmp_path / "p" / f"part-{part}.parquet")
    reader = read_parquet(tmp_path, "p/*.parquet", columns=[Column("id", "int")], batch_rows=1)
    assert reader.schema == arrow_schema(id=pa.int32())
    assert reader.read_all().column("id").to_pylist() == [0, 1, 2]


def test_parquet_value_out_of_range_names_the_row(tmp_path: Path) -> None:
    pq.write_table(pa.table({"n": pa.array([1, 2, 2**40])}), tmp_path / "n.parquet")
    with pytest.raises(DataError, match=re.escape("n.parquet, row 3, column `n`")):
        read_parquet(tmp_path, "n.parquet", columns=[Column("n", "int")]).read_all()


def test_ndjson_gzip_with_absent_keys_and_types(tmp_path: Path) -> None:
    records = [{"id": 1, "at": "2020-10-01 00:09:08", "fare": 8.5}, {"id": 2}]
    with gzip.open(tmp_path / "r.json.gz", "wt") as out:
        out.write("".join(json.dumps(r) + "\n" for r in records))
    columns = [Column("id", "bigint"), Column("at", "timestamp"), Column("fare", "decimal(6,2)")]
    table = read_json(tmp_path, "r.json.gz", columns=columns).read_all()
    assert table.column("fare").to_pylist() == [Decimal("8.50"), None]
    assert table.column("at").type == pa.timestamp("us")


def test_ndjson_bad_value_names_the_line(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i}) for i in range(100)] + [json.dumps({"id": "x"})]
    write(tmp_path / "r.json", "\n".join(lines) + "\n")
    reader = read_json(tmp_path, "r.json", columns=[Column("id", "int")], chunk_bytes=64)
    with pytest.raises(DataError, match=re.escape("r.json, row 101, column `id`")):
        reader.read_all()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("int", pa.int32()),
        ("BIGINT", pa.int64()),
        ("decimal(10, 2)", pa.decimal128(10, 2)),
        ("numeric", pa.decimal128(18, 3)),
        ("timestamptz", pa.timestamp("us", tz="UTC")),
        ("varchar(20)", pa.string()),
        ("unknown", None),
    ],
)
def test_declared_types_map_to_arrow(text: str, expected: pa.DataType | None) -> None:
    assert arrow_type(text) == expected


MEMORY_SCRIPT = """
import resource, sys
from pathlib import Path
import pyarrow as pa
from flowc.runtime.io.columns import Column
from flowc.runtime.engines.duckdb import DuckDBEngine
from flowc.runtime.io.sources import read_csv
root = Path(sys.argv[1])
columns = [Column(n, t, False) for n, t in (c.split(":", 1) for c in sys.argv[2:])]
reader = read_csv(root, "data/*.csv.gz", columns=columns, block_bytes=256 * 1024)
with DuckDBEngine.connect(root / "load.duckdb") as engine:
    rows = engine.load_batches("trips", reader.schema, iter(reader))
peak = pa.default_memory_pool().max_memory()
full = read_csv(root, "data/*.csv.gz", columns=columns).read_all().nbytes
print(rows, peak, full, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_a_200k_row_csv_streams_through_load_batches_in_bounded_memory(tmp_path: Path) -> None:
    """Arrow's allocations peak at a few blocks, not the table (in a fresh process, so the
    peak is this load's alone); RSS is checked only loosely, DuckDB keeps its table."""
    generate_taxi(tmp_path, 200_000)
    specs = [f"{c.name}:{c.type}" for c in TAXI_COLUMNS]
    command = [sys.executable, "-c", MEMORY_SCRIPT, str(tmp_path), *specs]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rows, peak, full, max_rss_kb = (int(v) for v in output.split())
    assert rows == 200_000
    assert peak < full / 4, f"peak {peak} bytes of Arrow memory for a {full}-byte table"
    assert max_rss_kb < 1_000_000


# --- CSV blocks parsed in parallel ----------------------------------------------------------


@pytest.fixture
def parse_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks parsed on three threads, whatever the machine's cores (the parallel path)."""
    monkeypatch.setattr(sources, "PARSE_THREADS", 3)


@pytest.mark.usefixtures("parse_threads")
def test_blocks_parsed_in_parallel_keep_the_file_order(tmp_path: Path) -> None:
    rows = [f"{i},{i % 7}.25,name {i}" for i in range(20_000)]
    write(tmp_path / "t.csv", "id,fare,name\n" + "\n".join(rows) + "\n")
    columns = [Column("id", "int"), Column("fare", "decimal(10, 2)"), Column("name", "varchar")]
    reader = read_csv(tmp_path, "t.csv", columns=columns, block_bytes=2_000)
    batches = list(reader)
    assert len(batches) > 100  # many blocks, so several were in flight at once
    table = pa.Table.from_batches(batches)
    assert table.column("id").to_pylist() == list(range(20_000))
    assert table.column("fare")[8].as_py() == Decimal("1.25")


@pytest.mark.usefixtures("parse_threads")
def test_the_first_bad_value_in_file_order_is_reported(tmp_path: Path) -> None:
    """A later block may fail first on its thread; the error is the earlier block's."""
    values = [str(i) for i in range(3_000)]
    values[1_000] = "3.5"  # not an int, in an early block
    values[2_900] = " 5"  # not an int either, in a later (smaller) block
    write(tmp_path / "t.csv", "n\n" + "\n".join(values) + "\n")
    reader = read_csv(tmp_path, "t.csv", columns=[Column("n", "int")], block_bytes=500)
    with pytest.raises(DataError) as caught:
        reader.read_all()
    assert (caught.value.row, caught.value.column) == (1_001, "n")
    assert "line 1002" in str(caught.value)
    assert "'3.5' is not a valid int" in str(caught.value)


@pytest.mark.usefixtures("parse_threads")
def test_a_malformed_row_in_a_later_block_names_the_rows_of_its_block(tmp_path: Path) -> None:
    lines = [f"{i},{i}" for i in range(2_000)]
    lines[1_500] = "1500"  # one field short
    write(tmp_path / "t.csv", "a,b\n" + "\n".join(lines) + "\n")
    columns = [Column("a", "int"), Column("b", "int")]
    reader = read_csv(tmp_path, "t.csv", columns=columns, block_bytes=1_000)
    with pytest.raises(StepError, match=r"t.csv: not valid CSV \(in the rows from (\d+) on\)") as e:
        reader.read_all()
    first = int(re.findall(r"from (\d+) on", str(e.value))[0])
    assert 1_300 < first <= 1_501  # the start of the block holding row 1,501


@pytest.mark.usefixtures("parse_threads")
def test_a_truncated_gzip_fails_after_the_rows_before_it(tmp_path: Path) -> None:
    """Reading ahead does not change which failure is reported: a bad value before the
    point where the file breaks off is reported, not the broken file."""
    values = [str(i) for i in range(50_000)]
    values[10] = "x"
    data = gzip.compress(("n\n" + "\n".join(values) + "\n").encode())
    (tmp_path / "t.csv.gz").write_bytes(data[: len(data) * 3 // 4])
    reader = read_csv(tmp_path, "t.csv.gz", columns=[Column("n", "int")], block_bytes=1_000)
    with pytest.raises(DataError, match=re.escape("t.csv.gz, row 11 (line 12), column `n`")):
        reader.read_all()
    whole = read_csv(tmp_path, "t.csv.gz", columns=[Column("n", "varchar")], block_bytes=1_000)
    with pytest.raises(StepError, match=re.escape("t.csv.gz: cannot read it")):
        whole.read_all()


def test_in_order_hands_back_results_in_order_and_bounds_the_work_in_flight() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def work(item: int) -> int:
        with lock:
            started.append(item)
        time.sleep(0.001 * (item % 3))  # later items often finish first
        return item * 2

    results = []
    for future in sources.in_order(work, range(40), 3):
        results.append(future.result())
        with lock:  # never more than 2 * threads handed to the pool ahead of the consumer
            assert len(started) - len(results) <= 6
    assert results == [i * 2 for i in range(40)]


def test_in_order_stops_when_the_consumer_stops() -> None:
    def items() -> Iterator[int]:
        yield from range(10)
        raise AssertionError("read past the point where the consumer stopped")

    futures = sources.in_order(lambda i: i, items(), 2)
    assert next(futures).result() == 0
    futures.close()  # no hang, no error
