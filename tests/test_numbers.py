"""Numbers survive the trip: decimals of any precision and scale, read from each engine, reach
CSV and Parquet files, a Python block and the other engines exactly; where a destination holds
fewer digits than the values have, they are rounded as the destination's type says, and the
step is told (a note), never silently.

Properties over generated values (precision, scale, values), on real engines:
- Postgres NUMERIC without a precision (what `avg`, `sum` and arithmetic give), of up to 90
  digits and 50 places, through both of its read paths (COPY, and the cursor for results
  with a column COPY text cannot carry): exact up to 76 digits (Arrow's widest decimal),
  beyond rounded to the places 76 digits leave (less one, for a carry), with a note;
- DuckDB DECIMAL(p, s), every p up to 38: exact, into Postgres too;
- into DuckDB, decimals wider than DuckDB's 38 digits (Postgres, BigQuery's BIGNUMERIC):
  exact DECIMAL(38, s) where the values fit, else rounded, with a note;
- BigQuery NUMERIC (the emulator holds NUMERIC exactly; its BIGNUMERIC has only 38 digits
  and 18 places, so BIGNUMERIC is not exercised there): into and out of DuckDB and Postgres.
"""

from __future__ import annotations

import csv
import decimal
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bq_emulator import Emulator
from flowc.project.config import BigQuerySettings
from flowc.runtime.engines.base import Query
from flowc.runtime.engines.bigquery import BigQueryEngine
from flowc.runtime.engines.duckdb import DuckDBEngine
from flowc.runtime.engines.postgres import PostgresEngine
from flowc.runtime.io import sinks
from flowc.runtime.usercode import pyblocks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pg_server import PgServer

D = decimal.Decimal
WIDE = decimal.Context(prec=200)  # the default context (28 digits) would round the values
RELAXED = [HealthCheck.function_scoped_fixture]


@st.composite
def numbers(draw: st.DrawFn, max_digits: int, max_scale: int) -> tuple[int, int, list[D]]:
    """(integer digits, places, values): up to 5 values with at most that many digits before
    the point and exactly that many places (trailing zeros included)."""
    scale = draw(st.integers(0, max_scale))
    digits = draw(st.integers(0, max_digits - scale))
    bound = 10 ** (digits + scale) - 1
    unscaled = draw(st.lists(st.integers(-bound, bound), min_size=1, max_size=5))
    return digits, scale, [D(u).scaleb(-scale, context=WIDE) for u in unscaled]


def needed(values: Sequence[D]) -> tuple[int, int]:
    """The most digits before the point and places after it (no trailing zeros) of values."""
    texts = [format(v.copy_abs(), "f").partition(".") for v in values]
    digits = max(len(whole.lstrip("0")) for whole, _, _ in texts)
    return digits, max(len(fraction.rstrip("0")) for _, _, fraction in texts)


def rounded(values: Sequence[D], places: int) -> list[D]:
    context = decimal.Context(prec=200, rounding=decimal.ROUND_HALF_UP)
    return [v.quantize(D(1).scaleb(-places), context=context) for v in values]


def column(reader: pa.RecordBatchReader) -> list[D]:
    found: list[D] = list(reader.read_all().column(0).to_pylist())  # type: ignore[arg-type]
    return found


def files_hold(tmp: Path, table: pa.Table, values: Sequence[object]) -> None:
    """`table` written by the CSV and the Parquet sink reads back as `values`."""
    name = uuid.uuid4().hex[:8]
    sinks.write_csv(
        tmp, f"{name}.csv", pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    )
    with (tmp / f"{name}.csv").open(newline="") as file:
        texts = [row[0] for row in list(csv.reader(file))[1:]]
    assert [D(t) if t else None for t in texts] == list(values)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    sinks.write_parquet(tmp, name, reader)
    assert pq.read_table(tmp / name).column(0).to_pylist() == list(values)


# --- engines --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres(pg_server: PgServer) -> Iterator[PostgresEngine]:
    database = pg_server.create_database()
    try:
        with PostgresEngine.connect(database.dsn) as engine:
            yield engine
    finally:
        pg_server.drop_database(database.dbname)


@pytest.fixture(scope="module")
def duck() -> Iterator[DuckDBEngine]:
    with DuckDBEngine.connect(":memory:") as engine:
        yield engine


@pytest.fixture(scope="module")
def bq(bigquery_emulator: Emulator) -> Iterator[BigQueryEngine]:
    settings_ = BigQuerySettings(
        project=bigquery_emulator.project,
        dataset=f"n_{uuid.uuid4().hex[:10]}",
        api_endpoint=bigquery_emulator.endpoint,
    )
    with BigQueryEngine.from_settings(settings_, Path.cwd()) as engine:
        yield engine


def values_sql(values: Sequence[D], cast: str, extra: str = "") -> str:
    rows = ", ".join(f"(CAST('{v:f}' AS {cast}){extra})" for v in values)
    return f"SELECT * FROM (VALUES {rows}) AS t(x{', b' if extra else ''})"


def fresh(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


# --- Postgres NUMERIC of any scale ------------------------------------------------------


@settings(max_examples=120, suppress_health_check=RELAXED)
@given(drawn=numbers(max_digits=90, max_scale=50), path=st.sampled_from(["copy", "cursor"]))
def test_postgres_numeric_reads_exactly_or_says_it_rounded(
    postgres: PostgresEngine,
    duck: DuckDBEngine,
    tmp_path: Path,
    drawn: tuple[int, int, list[D]],
    path: str,
) -> None:
    _, _, values = drawn
    extra = ", NULL::bytea" if path == "cursor" else ""  # bytea: read through a cursor
    postgres.take_notes()
    table = postgres.read_batches(Query(values_sql(values, "numeric", extra))).read_all()
    notes = postgres.take_notes()
    digits, places = needed(values)
    expected: list[object]
    if digits + places <= 76:
        expected = list(values)
        assert notes == []
    else:
        expected = [*rounded(values, 75 - digits)] if digits < 76 else [float(v) for v in values]
        assert len(notes) == 1 and "more than a decimal holds (76 digits)" in notes[0]
    assert table.column(0).to_pylist() == expected
    if digits < 76:
        files_hold(tmp_path, table.select([0]), expected)
        into_duckdb(duck, table.select([0]), expected)


def into_duckdb(duck: DuckDBEngine, table: pa.Table, values: Sequence[object]) -> None:
    """A transfer into DuckDB: exact within 38 digits, else rounded with a note."""
    name = fresh("t")
    duck.take_notes()  # an example that failed before reading them left its own
    duck.create_table(name, pa.RecordBatchReader.from_batches(table.schema, table.to_batches()))
    found = column(duck.read_batches(name))
    notes = duck.take_notes()
    digits, places = needed([D(str(v)) for v in values])
    if digits + places <= 38 or not isinstance(table.schema.field(0).type, pa.Decimal256Type):
        assert found == list(values) and notes == []
    elif digits < 38:  # a digit kept for a carry
        assert found == rounded([D(str(v)) for v in values], 37 - digits) and len(notes) == 1
    else:
        assert found == [float(str(v)) for v in values] and "stored as DOUBLE" in notes[0]


def test_an_average_of_decimals_on_postgres_keeps_its_places(postgres: PostgresEngine) -> None:
    sql = "SELECT avg(x) AS a, sum(x) / 7 AS s FROM (VALUES (1.25), (2.5), (4.0)) AS t(x)"
    row = postgres.read_batches(Query(sql)).read_all().to_pylist()[0]
    assert row == {"a": D("2.5833333333333333"), "s": D("1.10714285714285714286")}


def test_nan_numeric_is_a_clear_error(postgres: PostgresEngine) -> None:
    from flowc.runtime.errors import StepError

    with pytest.raises(StepError, match="holds NaN or Infinity"):
        postgres.read_batches(Query("SELECT 'NaN'::numeric AS x"))


# --- DuckDB DECIMAL(p, s) ---------------------------------------------------------------


@st.composite
def duck_decimals(draw: st.DrawFn) -> tuple[int, int, list[D]]:
    """DECIMAL(p, s) for any p DuckDB has, and values of it."""
    precision = draw(st.integers(1, 38))
    scale = draw(st.integers(0, precision))
    bound = 10**precision - 1
    unscaled = draw(st.lists(st.integers(-bound, bound), min_size=1, max_size=5))
    return precision, scale, [D(u).scaleb(-scale, context=WIDE) for u in unscaled]


@settings(max_examples=120, suppress_health_check=RELAXED)
@given(drawn=duck_decimals())
def test_duckdb_decimals_reach_files_python_and_postgres_exactly(
    duck: DuckDBEngine, postgres: PostgresEngine, tmp_path: Path, drawn: tuple[int, int, list[D]]
) -> None:
    precision, scale, values = drawn
    read = duck.read_batches(Query(values_sql(values, f"DECIMAL({precision}, {scale})"))).read_all()
    assert read.schema.field(0).type == pa.decimal128(precision, scale)
    assert read.column(0).to_pylist() == values
    files_hold(tmp_path, read, values)
    assert through_python(tmp_path, read) == values
    name = fresh("d")
    postgres.create_table(name, pa.RecordBatchReader.from_batches(read.schema, read.to_batches()))
    assert column(postgres.read_batches(name)) == values


def through_python(tmp: Path, table: pa.Table) -> list[D]:
    """The values a pandas block sees (Arrow-backed decimals) and hands back."""
    (tmp / "same.py").write_text(
        "import decimal\n\ndef same(rows):\n"
        "    assert all(isinstance(v, decimal.Decimal) for v in rows['x'])\n"
        "    return rows\n"
    )
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    out = pyblocks.run_transform(tmp, "same.py:same", {"rows": reader})
    return column(out)


# --- BigQuery NUMERIC, through the emulator ----------------------------------------------


@settings(max_examples=6, suppress_health_check=RELAXED)
@given(drawn=numbers(max_digits=38, max_scale=9).filter(lambda d: d[0] <= 29))
def test_bigquery_numeric_to_and_from_duckdb_and_postgres(
    bq: BigQueryEngine,
    duck: DuckDBEngine,
    postgres: PostgresEngine,
    drawn: tuple[int, int, list[D]],
) -> None:
    _, _, values = drawn
    listed = ", ".join(f"CAST('{v:f}' AS NUMERIC)" for v in values)
    read = bq.read_batches(Query(f"SELECT x FROM UNNEST([{listed}]) AS x")).read_all()
    assert sorted(
        column(pa.RecordBatchReader.from_batches(read.schema, read.to_batches()))
    ) == sorted(values)
    for engine in (duck, postgres):
        name = fresh("b")
        engine.create_table(name, pa.RecordBatchReader.from_batches(read.schema, read.to_batches()))
        assert sorted(column(engine.read_batches(name))) == sorted(values)
    from_postgres = postgres.read_batches(Query(values_sql(values, "numeric"))).read_all()
    name = fresh("p")
    reader = pa.RecordBatchReader.from_batches(from_postgres.schema, from_postgres.to_batches())
    bq.create_table(name, reader)
    assert sorted(column(bq.read_batches(name))) == sorted(values)


# --- declared decimals the engine rounds: said in the plan ---------------------------------

NOTED = """\
pipeline p {
  target = warehouse
}

source fares {
  from = csv("f.csv", header = true)
  columns {
    fare numeric
    tip  decimal(10, 2)
  }
}
"""
NOTED_PROFILES = """\
[project]
name = "p"
default_profile = "duck"

[profiles.duck.warehouse]
type = "duckdb"
path = "w.duckdb"

[profiles.bq.warehouse]
type    = "bigquery"
project = "local"
dataset = "d"

[profiles.pg.warehouse]
type = "postgres"
host = "localhost"
dbname = "x"
user = "x"
"""


@pytest.mark.parametrize(
    ("profile", "noted"), [("duck", "DECIMAL(18, 3)"), ("bq", "NUMERIC"), ("pg", None)]
)
def test_a_decimal_without_precision_is_noted_where_the_engine_rounds_it(
    tmp_path: Path, profile: str, noted: str | None
) -> None:
    import json

    from flowc_cli import flowc

    (tmp_path / "flow.toml").write_text(NOTED_PROFILES)
    (tmp_path / "p.flow").write_text(NOTED)
    plans = []
    for out in ("a", "b"):
        result = flowc("compile", "p.flow", "--profile", profile, "-o", out, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        plans.append((tmp_path / out / "p" / "plan.json").read_text())
    assert plans[0] == plans[1]  # deterministic
    [step] = json.loads(plans[0])["steps"]
    notes = step.get("notes", [])
    if noted is None:
        assert notes == []
    else:
        assert len(notes) == 1 and notes[0].startswith("`fare numeric` declares no precision: on")
        assert noted in notes[0] and "tip" not in notes[0]
    explained = flowc("explain", "p.flow", "--profile", profile, cwd=tmp_path).stdout
    assert ("note: `fare numeric`" in explained) == (noted is not None)
