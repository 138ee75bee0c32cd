"""Generated SQL against the real thing.

Differential: for every example (and a generated project), the plan compiled for DuckDB (every
connection of the profile made a DuckDB one, all in one database) is executed step by step on
small generated data, and every table it makes holds the same rows as the user's SQL run
directly on DuckDB over the same data. The Postgres and BigQuery SQL of every plan re-parses
with sqlglot in its dialect. The identifier case policy (docs/engines.md) is checked on all
three dialects, and run for real on DuckDB.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from flowc.compiler import ir, plan
from flowc.compiler.analysis import project_file
from flowc.compiler.analysis.bind import Scope
from flowc.compiler.codegen.generate import Renderer
from flowc.compiler.diagnostics import Diagnostics
from flowc.compiler.driver.check import analyze
from flowc.compiler.driver.compile import compile_spec
from flowc.compiler.planning.planner import plan_spec
from flowc.project import config
from flowc.project.spans import point
from sqlglot import exp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import generate_project  # noqa: E402

EXAMPLES = {
    "green_taxi": ROOT / "specs" / "green_taxi" / "specs" / "green_taxi.flow",
    "reference": ROOT / "specs" / "reference" / "specs" / "green_taxi.flow",
    "fusion": ROOT / "tests" / "golden" / "fusion" / "specs" / "fusion.flow",
    "checks": ROOT / "tests" / "golden" / "checks" / "specs" / "checks.flow",
    "cte_clash": ROOT / "tests" / "golden" / "cte_clash" / "specs" / "cte_clash.flow",
}
ROWS = 40


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = generate_project(tmp_path_factory.mktemp("bench"), 60, seed=3)
    return root / "specs" / "bench.flow"


def spec_paths(generated: Path) -> dict[str, Path]:
    return {**EXAMPLES, "generated": generated}


# --- the differential test -----------------------------------------------------------------


@pytest.mark.parametrize("case", [*sorted(EXAMPLES), "generated"])
def test_flowc_sql_gives_the_rows_of_the_users_sql(case: str, generated: Path) -> None:
    path = spec_paths(generated)[case]
    spec, _trees, order, compiled = compile_for_duckdb(path)
    data = {n.name: rows_for(n) for n in spec.nodes if _is_data(n)}
    user = run_users_sql(spec, order, data)
    ours = run_plan(compiled, spec, data)
    made = [n for n in order if isinstance(spec.node(n), ir.TransformNode) and n in ours.tables]
    assert made, "the plan makes no table to compare"
    for name in made:
        query = f'SELECT * FROM "{name}"'
        assert _sorted(ours.db.execute(query).fetchall()) == _sorted(
            user.execute(query).fetchall()
        ), name
    for name in [n for n in order if n in user.tables and n not in made]:
        node = spec.node(name)
        if isinstance(node, ir.TransformNode) and node.sql is not None:
            assert compiled.nodes[name].materialization == "ephemeral", name


def compile_for_duckdb(path: Path) -> tuple[ir.Spec, Any, list[str], plan.Plan]:
    root = config.find_project_root(path)
    _project, [profile], _ = project_file.load_project(root, profile=None, env={})
    duck = config.Profile(
        name="duck",
        connections={
            name: config.Connection(name=name, type="duckdb", span=point("flow.toml"))
            for name in profile.connections
        },
    )
    scope = Scope(root=root, connections={"duck": duck.names})
    diagnostics = Diagnostics()
    analysis = analyze(path.read_text(encoding="utf-8"), str(path), scope, diagnostics)
    assert not diagnostics.has_errors, list(diagnostics)
    planned = plan_spec(
        analysis.spec, analysis.trees, analysis.order, project="p", profile=duck, consume=False
    )
    assert not planned.problems
    return analysis.spec, analysis.trees, analysis.order, planned.plan


def _is_data(node: ir.SourceNode | ir.TransformNode | ir.SinkNode) -> bool:
    """Nodes whose rows come from outside SQL: sources and Python transforms."""
    if isinstance(node, ir.SinkNode) or node.columns is None:
        return False
    return isinstance(node, ir.SourceNode) or node.python is not None


def rows_for(node: ir.SourceNode | ir.TransformNode | ir.SinkNode) -> list[tuple[Any, ...]]:
    assert node.columns is not None
    rng = random.Random(node.name)
    return [tuple(_value(c, rng) for c in node.columns) for _ in range(ROWS)]


def _value(column: ir.Column, rng: random.Random) -> Any:
    if not column.not_null and rng.random() < 0.1:
        return None
    kind = column.type.split("(")[0]
    if kind in ("int", "integer", "bigint", "smallint"):
        return rng.randint(0, 4)
    if kind in ("double", "float", "real"):
        return rng.choice([0.5, 1.25, 3.0, 12.5, 40.0, -2.0])
    if kind in ("decimal", "numeric"):
        return Decimal(rng.choice(["0.00", "9.99", "12.50", "150.00", "-3.25"]))
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "date":
        return dt.date(2020, 9, 20) + dt.timedelta(days=rng.randint(0, 60))
    if kind == "timestamp":
        return dt.datetime(2020, 9, 20, 6) + dt.timedelta(hours=rng.randint(0, 1500))
    return rng.choice(["a", "b", "cancelled", "Queens", "x%y"])


def _create(db: duckdb.DuckDBPyConnection, name: str, node: Any, rows: list[Any]) -> None:
    columns = ", ".join(f'"{c.name}" {c.type}' for c in node.columns)
    db.execute(f'CREATE OR REPLACE TABLE "{name}" ({columns})')
    _insert(db, name, rows)


def _insert(db: duckdb.DuckDBPyConnection, name: str, rows: list[Any]) -> None:
    if rows:
        marks = ", ".join("?" for _ in rows[0])
        db.executemany(f'INSERT INTO "{name}" VALUES ({marks})', rows)


class _Db:
    def __init__(self) -> None:
        self.db = duckdb.connect()
        self.db.execute("SET threads = 1")
        self.tables: set[str] = set()

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        return self.db.execute(sql, params) if params else self.db.execute(sql)


def _defaults(spec: ir.Spec) -> dict[str, Any]:
    assert spec.pipeline is not None
    return {
        p.name: p.default.value
        for p in spec.pipeline.params
        if isinstance(p.default, ir.Str | ir.Num)
    }


def run_users_sql(spec: ir.Spec, order: list[str], data: dict[str, list[Any]]) -> _Db:
    """Every SQL transform's own text, transpiled to DuckDB, parameters as literals."""
    user = _Db()
    assert spec.pipeline is not None
    dialect = spec.pipeline.dialect
    types = {p.name: p.type for p in spec.pipeline.params}
    values = _defaults(spec)
    for name in order:
        node = spec.node(name)
        if name in data:
            _create(user.db, name, node, data[name])
            user.tables.add(name)
        elif isinstance(node, ir.TransformNode) and node.sql is not None:
            tree = sqlglot.parse_one(node.sql.text, read=dialect)
            for mark in list(tree.find_all(exp.Placeholder)):
                literal = exp.Literal.string(str(values[mark.name]))
                mark.replace(exp.cast(literal, types[mark.name]))
            user.db.execute(f'CREATE TABLE "{name}" AS {tree.sql("duckdb")}')
            user.tables.add(name)
    return user


def run_plan(compiled: plan.Plan, spec: ir.Spec, data: dict[str, list[Any]]) -> _Db:
    """Every step of the plan, in order, on one DuckDB database (transfers are no-ops there,
    except out of Python, where the generated rows stand in for the function's)."""
    ours = _Db()
    values = _defaults(spec)
    for step in compiled.steps:
        params: dict[str, Any] = {}
        if isinstance(step, plan.SqlStep):
            params = {p.name: values[p.name] for p in step.parameters}
        if isinstance(step, plan.CheckStep):
            params = {bound.name: bound.value for bound in step.values}  # what the plan binds
        if step.kind == "load" and step.node in data:
            for statement in step.sql or []:
                ours.execute(statement)
            _insert(ours.db, step.node, data[step.node])
        elif step.kind == "transfer" and step.transfer and step.transfer.from_connection is None:
            if step.node in data:
                _create(ours.db, step.node, spec.node(step.node), data[step.node])
        elif step.kind in ("sql", "check", "export"):
            for statement in step.sql or []:
                ours.execute(statement, params)
        else:
            continue
        ours.tables.update(o.node for o in step.outputs if o.name)
    return ours


def _sorted(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows in a canonical order, floats to 9 significant digits (sums of doubles depend on
    the order the engine adds them in)."""
    rounded = [tuple(float(f"{v:.9g}") if isinstance(v, float) else v for v in r) for r in rows]
    return sorted(rounded, key=repr)


# --- re-parsing Postgres and BigQuery SQL ----------------------------------------------------


@pytest.mark.parametrize("case", [*sorted(EXAMPLES), "generated"])
def test_postgres_and_bigquery_sql_reparse(case: str, generated: Path) -> None:
    path = spec_paths(generated)[case]
    for target in ("postgres", "bigquery"):
        compiled = compile_as(path, target)
        statements = [
            (s.id, sql)
            for s in compiled.steps
            for sql in ([] if isinstance(s, plan.PythonStep) else s.sql or [])
            if _dialect(s, compiled) == target
        ]
        assert statements
        for step_id, sql in statements:
            sqlglot.parse_one(sql, read=target), step_id  # raises on what it cannot read


def compile_as(path: Path, target: str) -> plan.Plan:
    root = config.find_project_root(path)
    _project, [profile], _ = project_file.load_project(root, profile=None, env={})
    made = config.Profile(
        name=target,
        connections={
            name: config.Connection(name=name, type=target, span=point("flow.toml"))  # type: ignore[arg-type]
            for name in profile.connections
        },
    )
    scope = Scope(root=root, connections={target: made.names})
    diagnostics = Diagnostics()
    analysis = analyze(path.read_text(encoding="utf-8"), str(path), scope, diagnostics)
    planned = plan_spec(analysis.spec, analysis.trees, analysis.order, project="p", profile=made)
    assert not planned.problems, planned.problems
    return planned.plan


def _dialect(step: plan.Step, compiled: plan.Plan) -> str:
    return next(c.dialect for c in compiled.connections if c.name == step.connection)


# --- identifier case ----------------------------------------------------------------------


CASE_SPEC = """\
pipeline p {
  dialect = "DIALECT"
}

source trips {
  from = csv("trips.csv")
  columns { VendorID int  Fare double }
}

transform picked {
  sql = "SELECT vendorid, VENDORID + 1 AS Next_Id, fare FROM Trips WHERE VendorID > 0"
}
"""

# Names as declared: a resolved column is written as its definition spells it on engines that
# compare quoted names exactly (Postgres) or name results as the query spells them (BigQuery);
# DuckDB itself names a result column as its definition does. A Postgres-dialect spec's
# unquoted names are lower case, as Postgres reads them, on every engine.
EXPECTED_CASE = {
    ("duckdb", "duckdb"): ['"vendorid"', '"VENDORID" + 1 AS "Next_Id"', 'FROM "Trips"'],
    ("duckdb", "postgres"): [
        '"VendorID",\n',
        '"VendorID" + 1 AS "Next_Id"',
        '"Fare"\n',
        'FROM "trips"\n',
    ],
    ("duckdb", "bigquery"): [
        "`VendorID`,\n",
        "`VendorID` + 1 AS `Next_Id`",
        "FROM `trips` AS `Trips`",
    ],
    ("postgres", "postgres"): ['"vendorid"', '"vendorid" + 1 AS "next_id"', 'FROM "trips"\n'],
    ("postgres", "duckdb"): ['"vendorid"', '"vendorid" + 1 AS "next_id"', 'FROM "trips"\n'],
    ("postgres", "bigquery"): ["`vendorid`", "`vendorid` + 1 AS `next_id`", "FROM `trips`\n"],
}


@pytest.mark.parametrize(("source", "target"), sorted(EXPECTED_CASE))
def test_identifier_case_policy(source: str, target: str, tmp_path: Path) -> None:
    spec = tmp_path / "p.flow"
    spec.write_text(CASE_SPEC.replace("DIALECT", source))
    compiled = compile_as(spec, target)
    load, picked = compiled.step("trips"), compiled.step("picked")
    assert load.outputs[0].columns is not None
    declared = [c.name for c in load.outputs[0].columns]
    assert declared == (["vendorid", "fare"] if source == "postgres" else ["VendorID", "Fare"])
    assert isinstance(picked, plan.SqlStep)
    text = "\n".join(picked.sql)
    for fragment in EXPECTED_CASE[(source, target)]:
        assert fragment in text, text


def test_a_mixed_case_column_works_on_duckdb_for_real(tmp_path: Path) -> None:
    spec = tmp_path / "p.flow"
    spec.write_text(CASE_SPEC.replace("DIALECT", "duckdb"))
    db = duckdb.connect()
    for step in compile_for_duckdb(spec)[3].steps:
        for statement in [] if isinstance(step, plan.PythonStep) else step.sql or []:
            db.execute(statement)
        if step.kind == "load":
            db.execute('INSERT INTO "trips" VALUES (1, 2.5), (0, 1.0)')
    assert db.execute('SELECT * FROM "picked"').fetchall() == [(1, 2, 2.5)]


def test_compile_spec_reports_nothing_for_the_examples() -> None:
    for path in EXAMPLES.values():
        result = compile_spec(path, profile="all", env={})
        assert not result.has_errors, result.diagnostics


@pytest.mark.parametrize(
    ("declared", "bigquery"),
    [
        ("decimal(10, 2)", "NUMERIC(10, 2)"),
        ("decimal(38, 9)", "NUMERIC(38, 9)"),
        ("decimal(38, 12)", "BIGNUMERIC(38, 12)"),
        ("decimal(38, 0)", "BIGNUMERIC(38, 0)"),
    ],
)
def test_a_decimal_too_wide_for_numeric_is_a_bignumeric_on_bigquery(
    declared: str, bigquery: str
) -> None:
    assert Renderer("duckdb", "bigquery", {}).type(declared) == bigquery
