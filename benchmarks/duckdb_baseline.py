"""The green-taxi job done directly in DuckDB: the baseline `flowc run` is timed against.

    python benchmarks/duckdb_baseline.py PROJECT [--rename sql|pandas]

PROJECT is a copy of specs/green_taxi with its data/ generated. Same SQL as the spec, same
checks, same outputs: the warehouse tables, Parquet by day, the daily CSV. The rename: in SQL
(`sql`, the default: the cheapest a hand-writer could do), or by the example's own Python
block on a pandas DataFrame (`pandas`: the same job as the pipeline, Python code included).
Outputs go to PROJECT/baseline/ (replaced on every run).
"""

import os
import shutil
import sys
from pathlib import Path

import duckdb

root = Path(sys.argv[1]).resolve()
in_pandas = sys.argv[2:] == ["--rename", "pandas"]
out = root / "baseline"
shutil.rmtree(out, ignore_errors=True)
out.mkdir()
MONEY = "DECIMAL(10, 2)"
COLUMNS = {"VendorID": "INT", "lpep_pickup_datetime": "TIMESTAMP"}
COLUMNS |= {"lpep_dropoff_datetime": "TIMESTAMP", "store_and_fwd_flag": "VARCHAR"}
COLUMNS |= dict.fromkeys(("RatecodeID", "PULocationID", "DOLocationID", "passenger_count"), "INT")
COLUMNS |= {"trip_distance": "DOUBLE", "fare_amount": MONEY, "extra": MONEY, "mta_tax": MONEY}
COLUMNS |= dict.fromkeys(("tip_amount", "tolls_amount", "ehail_fee"), MONEY)
COLUMNS |= {"improvement_surcharge": MONEY, "total_amount": MONEY, "payment_type": "INT"}
COLUMNS |= {"trip_type": "INT", "congestion_surcharge": MONEY}
SNAKE = {"VendorID": "vendor_id", "RatecodeID": "ratecode_id", "PULocationID": "pu_location_id"}
SNAKE["DOLocationID"] = "do_location_id"
columns = ", ".join(f"'{name}': '{kind}'" for name, kind in COLUMNS.items())
renamed = ", ".join(f'"{name}" AS {SNAKE.get(name, name)}' for name in COLUMNS)
con = duckdb.connect(str(out / "warehouse.duckdb"))
con.begin()
con.execute(f"CREATE TABLE trips AS FROM read_csv('{root}/data/*.csv.gz', columns={{{columns}}})")
con.execute("""CREATE TABLE clean_trips AS SELECT *, CAST(lpep_pickup_datetime AS DATE) AS
    lpep_pickup_date FROM trips WHERE passenger_count > 0 AND trip_distance > 0
    AND lpep_pickup_datetime >= DATE '2020-10-01'""")
for where in ("VendorID IS NULL OR lpep_pickup_date IS NULL", "VendorID NOT IN (1, 2)"):
    assert not con.execute(f"FROM clean_trips WHERE {where} LIMIT 5").fetchall(), where
assert not con.execute("FROM clean_trips WHERE NOT passenger_count > 0 LIMIT 5").fetchall()
assert con.execute("SELECT count(*) FROM clean_trips").fetchall()[0][0] >= 1
if in_pandas:  # the pipeline's own block, as a script would call it
    sys.path.insert(0, str(root / "blocks"))
    from rename import to_snake_case  # type: ignore[import-not-found]

    snake = to_snake_case(con.sql("FROM clean_trips").df())
    con.execute("CREATE TABLE snake_trips AS FROM snake")
else:
    con.execute(f"CREATE TABLE snake_trips AS SELECT {renamed}, lpep_pickup_date FROM clean_trips")
assert not con.execute("FROM snake_trips WHERE vendor_id IS NULL LIMIT 5").fetchall()
con.execute("""CREATE TABLE daily_stats AS SELECT lpep_pickup_date, COUNT(*) AS trips,
    SUM(fare_amount) AS total_fare, AVG(trip_distance) AS avg_distance FROM snake_trips
    GROUP BY lpep_pickup_date ORDER BY lpep_pickup_date""")
con.execute("CREATE SCHEMA ny_taxi")
con.execute("CREATE TABLE ny_taxi.green_taxi AS FROM snake_trips")
con.execute(
    f"COPY snake_trips TO '{out}/green_taxi' (FORMAT parquet, PARTITION_BY (lpep_pickup_date))"
)
con.execute(f"COPY daily_stats TO '{out}/daily_stats.csv' (HEADER)")
con.commit()
con.close()
# Leave as `flowc` does: no interpreter teardown (which also, now and then, aborts in a
# library's thread destructor).
os._exit(0)
