"""The green-taxi job as a plain pandas script: the baseline of the Python-blocks benchmark.

    python benchmarks/pandas_baseline.py PROJECT

PROJECT is a copy of specs/green_taxi with its data/ generated. What a data engineer writes
without a framework: read the CSV files with pandas (the declared types), clean, check,
rename to snake_case with the project's own `blocks/rename.py`, then land the same outputs as
the pipeline: the DuckDB warehouse table, Parquet by day, the daily CSV. Outputs go to
PROJECT/pandas/ (replaced on every run).
"""

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import duckdb
import pandas as pd

root = Path(sys.argv[1]).resolve()
out = root / "pandas"
shutil.rmtree(out, ignore_errors=True)
out.mkdir()
spec = importlib.util.spec_from_file_location("rename", root / "blocks" / "rename.py")
assert spec is not None and spec.loader is not None
rename = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rename)

ints = ("VendorID", "RatecodeID", "PULocationID", "DOLocationID", "passenger_count")
dtypes = dict.fromkeys((*ints, "payment_type", "trip_type"), "Int32")
dtypes |= {"store_and_fwd_flag": "string", "trip_distance": "float64"}
times = ["lpep_pickup_datetime", "lpep_dropoff_datetime"]
files = sorted((root / "data").glob("green_tripdata_2020-1*.csv.gz"))
trips = pd.concat(
    [pd.read_csv(f, dtype=dtypes, parse_dates=times) for f in files], ignore_index=True
)
keep = (trips.passenger_count > 0) & (trips.trip_distance > 0)
clean = trips[keep & (trips.lpep_pickup_datetime >= "2020-10-01")].copy()
del trips
clean["lpep_pickup_date"] = clean.lpep_pickup_datetime.dt.date
assert clean.VendorID.notna().all() and clean.VendorID.isin([1, 2]).all() and len(clean) >= 1
snake = rename.to_snake_case(clean)
del clean
daily = (
    snake.groupby("lpep_pickup_date")
    .agg(
        trips=("vendor_id", "size"),
        total_fare=("fare_amount", "sum"),
        avg_distance=("trip_distance", "mean"),
    )
    .reset_index()
)
with duckdb.connect(str(out / "warehouse.duckdb")) as con:
    con.execute("CREATE SCHEMA ny_taxi")
    con.execute("CREATE TABLE ny_taxi.green_taxi AS SELECT * FROM snake")
    con.execute("CREATE TABLE daily_stats AS SELECT * FROM daily")
snake.to_parquet(out / "green_taxi", partition_cols=["lpep_pickup_date"], index=False)
daily.to_csv(out / "daily_stats.csv", index=False)
# Leave as `flowc` does: no interpreter teardown (which also, now and then, aborts in a
# library's thread destructor).
os._exit(0)
