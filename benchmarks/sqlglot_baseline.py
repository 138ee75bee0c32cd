"""The naive one-process sqlglot baseline for the `flowc check` benchmark.

For each transform of a generated project, in order: `sqlglot.parse_one(sql, read="duckdb")`,
`qualify(...)` against a MappingSchema holding the sources' declared columns and the output
columns of the transforms already processed (`validate_qualify_columns=True`), a check that
every table it reads is a known node, the output column names from the qualified SELECT, then
`expr.sql("postgres")` and `expr.sql("bigquery")`.

The SQL and the source schemas come from the project's `.bench_manifest.json` (written by
`generate.py`). Any error is fatal (exit 1): a clean run is the proof that the generator writes
correct SQL. Run: `python benchmarks/sqlglot_baseline.py PROJECT_DIR`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

MANIFEST_NAME = ".bench_manifest.json"
READ_DIALECT = "duckdb"
WRITE_DIALECTS = ("postgres", "bigquery")
HOT_MODULES = (
    "sqlglot.tokenizer_core",
    "sqlglot.parser",
    "sqlglot.generator",
    "sqlglot.expressions.core",
    "sqlglot.optimizer.qualify",
    "sqlglot.optimizer.qualify_columns",
    "sqlglot.optimizer.scope",
    "sqlglot.schema",
)


class BaselineError(Exception):
    """A transform failed to parse, qualify or transpile."""


@dataclass
class Timings:
    parse: float = 0.0
    qualify: float = 0.0
    transpile: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)


def compiled_modules() -> dict[str, bool]:
    """Whether each hot sqlglot module is loaded from a compiled extension (.so)."""
    result: dict[str, bool] = {}
    for name in HOT_MODULES:
        path = getattr(importlib.import_module(name), "__file__", "") or ""
        result[name] = path.endswith((".so", ".pyd"))
    return result


def compiled_report() -> str:
    mods = compiled_modules()
    compiled = [m.removeprefix("sqlglot.") for m, ok in mods.items() if ok]
    pure = [m.removeprefix("sqlglot.") for m, ok in mods.items() if not ok]
    return (
        f"sqlglot {metadata.version('sqlglot')}: compiled {len(compiled)}/{len(mods)} hot modules"
        + (f" (pure Python: {', '.join(pure)})" if pure else "")
    )


def load_manifest(project: Path) -> dict[str, Any]:
    path = project / MANIFEST_NAME
    if not path.is_file():
        raise SystemExit(f"{path} not found: generate the project with benchmarks/generate.py")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def initial_schema(manifest: dict[str, Any]) -> MappingSchema:
    mapping: dict[str, object] = {src["name"]: dict(src["columns"]) for src in manifest["sources"]}
    return MappingSchema(mapping, dialect=READ_DIALECT)


def check_tables(expr: exp.Expr, known: set[str], name: str) -> list[str]:
    """Names of the nodes a query reads; unknown ones are an error (qualify accepts them)."""
    ctes = {cte.alias_or_name for cte in expr.find_all(exp.CTE)}
    inputs = sorted({t.name for t in expr.find_all(exp.Table)} - ctes)
    unknown = [t for t in inputs if t not in known]
    if unknown:
        raise BaselineError(f"{name}: unknown table(s) {', '.join(unknown)}")
    return inputs


def output_columns(expr: exp.Expr, name: str) -> list[str]:
    if not isinstance(expr, exp.Query):
        raise BaselineError(f"{name}: not a query")
    cols = expr.named_selects
    if len(cols) != len(set(cols)) or "*" in cols or "" in cols:
        raise BaselineError(f"{name}: output columns not unique and named: {cols}")
    return cols


def process(
    name: str, sql: str, schema: MappingSchema, known: set[str], timings: Timings
) -> list[str]:
    t0 = time.perf_counter()
    expr = sqlglot.parse_one(sql, read=READ_DIALECT)
    t1 = time.perf_counter()
    check_tables(expr, known, name)
    expr = qualify(expr, schema=schema, dialect=READ_DIALECT, validate_qualify_columns=True)
    cols = output_columns(expr, name)
    t2 = time.perf_counter()
    for dialect in WRITE_DIALECTS:
        expr.sql(dialect, unsupported_level=sqlglot.ErrorLevel.RAISE)
    t3 = time.perf_counter()
    timings.parse += t1 - t0
    timings.qualify += t2 - t1
    timings.transpile += t3 - t2
    return cols


def run(project: Path, verify_columns: bool = True) -> tuple[int, Timings]:
    manifest = load_manifest(project)
    schema = initial_schema(manifest)
    known = {src["name"] for src in manifest["sources"]}
    timings = Timings()
    for t in manifest["transforms"]:
        try:
            cols = process(t["name"], t["sql"], schema, known, timings)
        except SqlglotError as e:
            raise BaselineError(f"{t['name']}: {type(e).__name__}: {e}") from e
        if verify_columns and cols != t["columns"]:
            raise BaselineError(f"{t['name']}: columns {cols} != generator's {t['columns']}")
        schema.add_table(t["name"], dict.fromkeys(cols, "UNKNOWN"), dialect=READ_DIALECT)
        known.add(t["name"])
    return len(manifest["transforms"]), timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="naive sqlglot pass over a generated project")
    parser.add_argument("project", type=Path)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        count, tm = run(args.project)
    except BaselineError as e:
        print(f"baseline: FAILED: {e}", file=sys.stderr)
        return 1
    total = time.perf_counter() - start
    print(compiled_report())
    print(
        f"baseline: {count} transforms OK in {total:.3f} s "
        f"(parse {tm.parse:.3f} s, qualify {tm.qualify:.3f} s, "
        f"transpile x{len(WRITE_DIALECTS)} {tm.transpile:.3f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
