"""BigQuery's scratch rewrite (runtime/engines/bigquery.py): within a run, every table the run
wrote is read from its copy in the scratch dataset, and every write goes there.

The rewrite works on resolved names: which table references name tables and which name CTEs
(sqlglot's scopes), so a CTE called like a table (dbt's `WITH customers AS (...)` in the
`customers` model) stays the CTE, the table a statement creates is never taken for it, and a
renamed table keeps its name as its alias (`WHERE dt.d_date_sk = store_sales.ss_sold_date_sk`).

Properties, over generated statements (CTEs named like tables, defined before or after their
use, qualified and aliased references, columns qualified by the table's name):
- without an emulator, for many statements: after the rewrite no reference names a table the
  run wrote, every CTE reference is as it was, every column qualifier names a source in its
  scope, and the target of the write is in the scratch dataset;
- on the emulator, for a few: the statements run inside a run leave the live dataset exactly
  as it was (until the commit), and read the same rows as the same statements run outside one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import sqlglot
from bq_emulator import Emulator
from flowc.project.config import BigQuerySettings
from flowc.runtime.engines.base import Query
from flowc.runtime.engines.bigquery import BigQueryEngine, _Ref, relations
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

TABLES = ("store_sales", "customers", "orders")
SCRATCH = "_flowc_run_test"
DATASET = "d"


# --- generated statements ----------------------------------------------------------------


@st.composite
def source(draw: st.DrawFn, visible: list[str]) -> tuple[str, str]:
    """A FROM item and the qualifier its columns take: a table (maybe `dataset.table`, maybe
    aliased) or a visible CTE."""
    name = draw(st.sampled_from([*TABLES, *visible]))
    qualified = name in TABLES and draw(st.booleans())
    text = f"`{DATASET}`.`{name}`" if qualified else f"`{name}`"
    if draw(st.booleans()):
        alias = draw(st.sampled_from(["a", "dt", "x"]))
        return f"{text} AS `{alias}`", alias
    return text, name


@st.composite
def statement(draw: st.DrawFn) -> str:
    """`CREATE OR REPLACE TABLE t AS [WITH ...] SELECT ...`: CTEs named like tables or not,
    each reading a table or an earlier CTE (its own name, inside itself, is the table)."""
    target = draw(st.sampled_from(TABLES))
    names = draw(st.lists(st.sampled_from([*TABLES, "c1", "c2"]), max_size=2, unique=True))
    ctes = []
    for index, name in enumerate(names):
        item, q = draw(source(names[:index]))
        ctes.append(f"`{name}` AS (SELECT `{q}`.`id`, `{q}`.`v` FROM {item})")
    first, q1 = draw(source(names))
    body = f"SELECT `{q1}`.`id`, `{q1}`.`v` + 1 AS `v` FROM {first}"
    if draw(st.booleans()):
        second, q2 = draw(source(names))
        if q2 != q1:
            body += f" JOIN {second} ON `{q2}`.`id` = `{q1}`.`id`"
    with_ = f"WITH {', '.join(ctes)} " if ctes else ""
    return f"CREATE OR REPLACE TABLE `{target}` AS {with_}{body}"


def offline_engine() -> BigQueryEngine:
    """An engine in a run, none of whose calls reaches a server: only `_rewrite` is used."""
    client = bigquery.Client(
        project="p",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": "http://127.0.0.1:9"},
    )
    engine = BigQueryEngine(client, dataset=DATASET)
    engine._scratch = SCRATCH
    return engine


def cte_references(statement: exp.Expr) -> list[str]:
    real = {id(t) for t in relations(statement)}
    return sorted(t.name for t in statement.find_all(exp.Table) if id(t) not in real)


def unresolved_qualifiers(statement: exp.Expr) -> list[str]:
    query = statement.expression if isinstance(statement, exp.Create) else statement
    missing = []
    for scope in traverse_scope(query):
        for column in scope.columns:
            if column.table and column.table not in scope.sources:
                missing.append(column.sql("bigquery"))
    return missing


@settings(max_examples=300)
@given(sql=statement(), moved=st.sets(st.sampled_from(TABLES)))
def test_the_rewrite_renames_tables_only_and_keeps_their_names(sql: str, moved: set[str]) -> None:
    engine = offline_engine()
    original = sqlglot.parse_one(sql, read="bigquery")
    assert unresolved_qualifiers(original) == []
    target = original.this.name
    for name in {*moved, target}:  # the target is claimed before the rewrite
        engine._moved[_Ref(DATASET, name)] = _Ref(SCRATCH, f"{DATASET}__{name}")
    rewritten = sqlglot.parse_one(engine._rewrite(original.copy()), read="bigquery")
    assert rewritten.this.db == SCRATCH and rewritten.this.name == f"{DATASET}__{target}"
    for table in relations(rewritten):
        assert table.db == SCRATCH or table.name not in {*moved, target}, table.sql("bigquery")
    assert cte_references(rewritten) == cte_references(original)
    assert unresolved_qualifiers(rewritten) == []


def test_a_cte_named_like_the_created_table_is_no_reason_to_write_the_live_table() -> None:
    engine = offline_engine()
    sql = (
        "CREATE OR REPLACE TABLE `customers` AS WITH `customers` AS (SELECT * FROM `stg`), "
        "`final` AS (SELECT `customers`.`id` FROM `customers`) SELECT * FROM `final`"
    )
    engine._moved[_Ref(DATASET, "customers")] = _Ref(SCRATCH, "d__customers")
    engine._moved[_Ref(DATASET, "stg")] = _Ref(SCRATCH, "d__stg")
    rewritten = engine._rewrite(sqlglot.parse_one(sql, read="bigquery"))
    assert rewritten.startswith("CREATE OR REPLACE TABLE `p`.`_flowc_run_test`.`d__customers` AS")
    assert "FROM `p`.`_flowc_run_test`.`d__stg` AS `stg`" in rewritten
    assert "SELECT `customers`.`id` FROM `customers`" in rewritten  # the CTE, untouched


def test_a_cte_reading_the_table_of_its_own_name_reads_the_table() -> None:
    engine = offline_engine()
    engine._moved[_Ref(DATASET, "paid")] = _Ref(SCRATCH, "d__paid")
    sql = "WITH `paid` AS (SELECT * FROM `paid`) SELECT `paid`.`x` FROM `paid`"
    rewritten = engine._rewrite(sqlglot.parse_one(sql, read="bigquery"))
    assert rewritten == (
        "WITH `paid` AS (SELECT * FROM `p`.`_flowc_run_test`.`d__paid` AS `paid`) "
        "SELECT `paid`.`x` FROM `paid`"
    )


# --- on the emulator ----------------------------------------------------------------------

BASE = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "v": pa.array([5, -1, 7], pa.int64())})


def connect(emulator: Emulator, dataset: str) -> BigQueryEngine:
    settings_ = BigQuerySettings(
        project=emulator.project, dataset=dataset, api_endpoint=emulator.endpoint
    )
    return BigQueryEngine.from_settings(settings_, Path.cwd())


@pytest.fixture
def engines(bigquery_emulator: Emulator) -> Iterator[dict[str, BigQueryEngine]]:
    """`run` and `plain` work in two datasets holding the same tables; `observer` is another
    session on `run`'s dataset: what everyone else sees during a run."""
    datasets = {"run": f"s_{uuid.uuid4().hex[:10]}", "plain": f"s_{uuid.uuid4().hex[:10]}"}
    datasets["observer"] = datasets["run"]
    opened = {role: connect(bigquery_emulator, dataset) for role, dataset in datasets.items()}
    try:
        for role in ("run", "plain"):
            for table in TABLES:
                reader = pa.RecordBatchReader.from_batches(BASE.schema, BASE.to_batches())
                opened[role].create_table(table, reader)
        yield opened
    finally:
        for engine in opened.values():
            engine.close()


def contents(engine: BigQueryEngine) -> dict[str, list[dict[str, object]]]:
    dataset = engine._dataset
    assert dataset is not None
    found = {}
    for item in engine._client.list_tables(dataset):
        rows = engine.read_batches(Query(f"SELECT * FROM `{dataset}`.`{item.table_id}`"))
        found[item.table_id] = sorted(rows.read_all().to_pylist(), key=repr)
    return found


def rows(engine: BigQueryEngine, table: str) -> list[dict[str, object]]:
    return (
        engine.read_batches(Query(f"SELECT * FROM `{table}` ORDER BY `id`")).read_all().to_pylist()
    )


@settings(max_examples=4, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sqls=st.lists(statement(), min_size=1, max_size=3))
def test_a_run_writes_only_its_scratch_dataset_and_reads_what_plain_sql_reads(
    engines: dict[str, BigQueryEngine], sqls: list[str]
) -> None:
    run, plain, observer = engines["run"], engines["plain"], engines["observer"]
    before = contents(observer)
    run.begin()
    try:
        for sql in sqls:
            target = sqlglot.parse_one(sql, read="bigquery").this.name
            run.execute(sql.replace(f"`{DATASET}`.", f"`{run._dataset}`."))
            plain.execute(sql.replace(f"`{DATASET}`.", f"`{plain._dataset}`."))
            assert rows(run, target) == rows(plain, target)
        assert contents(observer) == before  # the live dataset: as it was, tables and rows
    finally:
        run.rollback()
    for table in TABLES:  # the examples share the fixture: the plain dataset as it was
        plain.execute(
            f"CREATE OR REPLACE TABLE `{table}` AS SELECT * FROM `{run._dataset}`.`{table}`"
        )
