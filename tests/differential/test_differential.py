"""The differential harness: every `queries/*.sql` file runs on DuckDB, Postgres and BigQuery
through `flowc run`, and its rows on each engine must be DuckDB's.

A query file is DuckDB SQL over the data set of `sources.flow` (tables `people`, `orders`,
`numbers`, from `data/*.csv`). The harness makes a project per engine whose spec holds the
sources, one transform per file (`sql = file("queries/<file>.sql")`) and a Parquet sink per
transform, runs it once per engine (`flowc run --profile duckdb|postgres|bigquery`, against
the embedded Postgres and the BigQuery emulator), and compares each file's output with
DuckDB's:

- the column names exactly, in order;
- the rows in order when the query ends with an ORDER BY (make it total: ties may come out
  in any order), otherwise as a multiset;
- numbers of any type by value (an INTEGER 3 is a NUMERIC 3.0), floats to a relative 1e-9;
  timestamps with a time zone in UTC.

A file's leading `--` comments may say that an engine cannot run it:

    -- refuses: bigquery F0308            `flowc check --profile all` reports exactly these
    -- refuses: postgres F0308 3:12       ... at line 3, column 12 of the .sql file

Such a file is left out of that engine's run, and the harness checks that a spec holding it
alone reports exactly the declared diagnostics (code, profile and, when given, position),
and nothing else. So a dialect bug a user reports becomes one file here: the query, and
either the rows every engine must agree on or the refusal.

When an engine's run fails, each file runs alone on it (`--select +out_<file>`), so the
failure is reported against the files that cause it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlglot
from bq_emulator import Emulator
from flowc.compiler.driver.check import check_paths
from pg_server import PgServer

HERE = Path(__file__).resolve().parent
QUERIES = HERE / "queries"
ENGINES = ("duckdb", "postgres", "bigquery")
OTHERS = ENGINES[1:]
FLOWC = [sys.executable, "-m", "flowc"]
RUN_TIMEOUT_S = 900
REL_TOL = 1e-9
_REFUSES = re.compile(r"--\s*refuses:\s*(\w+)\s+(F\d{4})(?:\s+(\d+):(\d+))?\s*$")
_PROFILE = re.compile(r"\(profile `(\w+)`\)")

FLOW_TOML = """\
[project]
name = "differential"
default_profile = "duckdb"

[profiles.duckdb.warehouse]
type = "duckdb"
path = ".flowc/warehouse.duckdb"

[profiles.postgres.warehouse]
type     = "postgres"
host     = "${POSTGRES_HOST:-localhost}"
port     = "${POSTGRES_PORT:-5432}"
dbname   = "${POSTGRES_DBNAME:-differential}"
user     = "${POSTGRES_USER:-postgres}"
password = "${POSTGRES_PASSWORD:-}"

[profiles.bigquery.warehouse]
type         = "bigquery"
project      = "${GCP_PROJECT:-local}"
dataset      = "differential"
api_endpoint = "${BQ_API_ENDPOINT:-http://127.0.0.1:9050}"
"""


@dataclass(frozen=True)
class Refusal:
    engine: str
    code: str
    position: tuple[int, int] | None = None  # line, column in the .sql file


@dataclass(frozen=True)
class Query:
    path: Path
    refusals: tuple[Refusal, ...]

    @property
    def slug(self) -> str:
        return re.sub(r"\W", "_", self.path.stem)

    @property
    def ordered(self) -> bool:
        """Whether the query's own ORDER BY decides the order of its rows."""
        tree = sqlglot.parse_one(self.path.read_text(encoding="utf-8"), read="duckdb")
        return isinstance(tree, sqlglot.exp.Query) and tree.args.get("order") is not None

    def runs_on(self, engine: str) -> bool:
        return all(r.engine != engine for r in self.refusals)


def queries() -> list[Query]:
    found = []
    for path in sorted(QUERIES.glob("*.sql")):
        refusals = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("--"):
                break
            match = _REFUSES.match(line)
            if match:
                engine, code, row, col = match.groups()
                where = (int(row), int(col)) if row else None
                refusals.append(Refusal(engine, code, where))
        found.append(Query(path, tuple(refusals)))
    return found


QUERY_FILES = queries()


# --- projects -------------------------------------------------------------------------------


def write_project(root: Path, chosen: Sequence[Query]) -> Path:
    """A project under `root` whose spec runs `chosen`; returns the spec's path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "flow.toml").write_text(FLOW_TOML, encoding="utf-8")
    shutil.copytree(HERE / "data", root / "data", dirs_exist_ok=True)
    shutil.copytree(QUERIES, root / "queries", dirs_exist_ok=True)
    parts = [
        'pipeline differential {\n  target  = warehouse\n  dialect = "duckdb"\n}\n',
        (HERE / "sources.flow").read_text(encoding="utf-8"),
    ]
    for query in chosen:
        parts.append(
            f'transform q_{query.slug} {{\n  sql = file("queries/{query.path.name}")\n}}\n\n'
            f"sink out_{query.slug} {{\n  input = q_{query.slug}\n"
            f'  to    = parquet("out/{query.slug}")\n}}\n'
        )
    (root / "specs").mkdir(exist_ok=True)
    spec = root / "specs" / "differential.flow"
    spec.write_text("\n".join(parts), encoding="utf-8")
    return spec


@dataclass
class Outcome:
    """What one engine made of each file: its table, or why there is none."""

    tables: dict[str, Table] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def run(spec: Path, engine: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLOWC, "run", str(spec), "--profile", engine],
        cwd=spec.parent.parent,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def run_engine(root: Path, engine: str, env: Mapping[str, str]) -> Outcome:
    """Every file the engine runs, in one pipeline; each in a project of its own when that
    fails, to tell which files fail."""
    chosen = [q for q in QUERY_FILES if q.runs_on(engine)]
    outcome = Outcome()
    done = run(write_project(root / "all", chosen), engine, env)
    if done.returncode == 0:
        for query in chosen:
            outcome.tables[query.slug] = read_table(root / "all" / "out" / query.slug)
        return outcome
    for query in chosen:
        alone = run(write_project(root / query.slug, [query]), engine, env)
        if alone.returncode == 0:
            outcome.tables[query.slug] = read_table(root / query.slug / "out" / query.slug)
        else:
            outcome.errors[query.slug] = (alone.stdout + alone.stderr)[-3000:]
    return outcome


def read_table(folder: Path) -> Table:
    table = pq.read_table(folder)
    rows = [tuple(row.values()) for row in table.to_pylist()]
    return Table(list(table.column_names), rows)


# --- comparing ----------------------------------------------------------------------------


def normalized(value: Any) -> Any:
    """One spelling per value across engines: numbers as int or float, aware times in UTC."""
    if isinstance(value, bool) or value is None or isinstance(value, str | bytes):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, list | tuple):
        return [normalized(v) for v in value]
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    return value


def same(left: Any, right: Any) -> bool:
    if isinstance(left, float) or isinstance(right, float):
        if not isinstance(left, int | float) or not isinstance(right, int | float):
            return False
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        return math.isclose(left, right, rel_tol=REL_TOL, abs_tol=1e-300)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


def sort_key(row: Sequence[Any]) -> str:
    def key(value: Any) -> str:
        if isinstance(value, float) and math.isfinite(value):
            return f"n{value:.6e}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"n{float(value):.6e}"
        return repr(value)

    return "|".join(key(v) for v in row)


def differences(expected: Table, found: Table, ordered: bool) -> list[str]:
    if expected.columns != found.columns:
        return [f"columns {found.columns}, DuckDB's are {expected.columns}"]
    want = [tuple(normalized(v) for v in row) for row in expected.rows]
    got = [tuple(normalized(v) for v in row) for row in found.rows]
    if len(want) != len(got):
        return [f"{len(got)} rows, DuckDB has {len(want)}:\n  {got}\n  DuckDB: {want}"]
    if not ordered:
        want, got = sorted(want, key=sort_key), sorted(got, key=sort_key)
    return [
        f"row {i}: {g}, DuckDB's: {w}"
        for i, (w, g) in enumerate(zip(want, got, strict=True))
        if not (len(w) == len(g) and all(same(a, b) for a, b in zip(w, g, strict=True)))
    ]


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def outcomes(
    tmp_path_factory: pytest.TempPathFactory,
    pg_server: PgServer,
    bigquery_emulator: Emulator,
) -> Iterator[dict[str, Outcome]]:
    database = pg_server.create_database()
    envs = {
        "duckdb": {},
        "postgres": database.env(),
        "bigquery": {
            "BQ_API_ENDPOINT": bigquery_emulator.endpoint,
            "GCP_PROJECT": f"differential-{uuid.uuid4().hex[:8]}",
        },
    }
    try:
        yield {
            engine: run_engine(tmp_path_factory.mktemp(engine), engine, envs[engine])
            for engine in ENGINES
        }
    finally:
        pg_server.drop_database(database.dbname)


# --- the tests ------------------------------------------------------------------------------


def _cases(kind: str) -> list[Any]:
    if kind == "runs":
        return [
            pytest.param(q, e, id=f"{e}-{q.path.name}")
            for q in QUERY_FILES
            for e in OTHERS
            if q.runs_on(e)
        ]
    return [pytest.param(q, id=q.path.name) for q in QUERY_FILES if q.refusals]


@pytest.mark.parametrize(("query", "engine"), _cases("runs"))
def test_rows_are_duckdbs(query: Query, engine: str, outcomes: dict[str, Outcome]) -> None:
    reference = outcomes["duckdb"]
    assert query.slug not in reference.errors, f"DuckDB: {reference.errors[query.slug]}"
    found = outcomes[engine]
    assert query.slug not in found.errors, f"{engine}: {found.errors[query.slug]}"
    problems = differences(reference.tables[query.slug], found.tables[query.slug], query.ordered)
    assert not problems, f"{engine} differs from DuckDB:\n" + "\n".join(problems[:10])


@pytest.mark.parametrize("query", _cases("refusals"))
def test_check_reports_the_refusals(query: Query, tmp_path: Path) -> None:
    spec = write_project(tmp_path / "project", [query])
    result = check_paths([spec], profile="all", env={}, use_cache=False)
    errors = [d for d in result.diagnostics if d.severity == "error"]
    unmatched = list(query.refusals)
    for diagnostic in errors:
        profile = _PROFILE.search(diagnostic.message)
        engine = profile.group(1) if profile else ""
        where = (diagnostic.span.line, diagnostic.span.col)
        match = next(
            (
                r
                for r in unmatched
                if (r.engine, r.code) == (engine, diagnostic.code)
                and r.position in (None, where)
                and (r.position is None or diagnostic.span.file.endswith(query.path.name))
            ),
            None,
        )
        assert match is not None, f"not declared in {query.path.name}: {diagnostic}"
        unmatched.remove(match)
    assert not unmatched, f"declared but not reported: {unmatched}; reported: {errors}"
