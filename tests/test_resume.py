"""`flowc run --resume`, `--skip-unchanged` and `--jobs` (issue 7), driven as a user does.

Resume: the green-taxi example (300 generated rows) is killed by the fault-injection hook
(`FLOWC_FAILPOINT=kill-before:STEP`, `kill-after:STEP`, `kill-before:publish`: the flowc
process SIGKILLs itself) before each of its steps in turn, before publishing, and after a few
steps. A killed run leaves every real table and output file as it was (nothing on a first
run; a previous run's data, made with other params, untouched), and `flowc run --resume` then
ends with exactly the tables and files of an uninterrupted run, the steps that had finished
`reused`. Every point on DuckDB; a representative subset on Postgres (each test on a copy of
a database made once, `CREATE DATABASE ... TEMPLATE`, so that the previous run is not redone).

`--skip-unchanged`: nothing changed skips every step; a changed SQL file reruns its transform
and what is downstream; a rewritten or touched CSV reruns its load and what is downstream
(on a spec of independent branches, so that "the rest" is something); `flowc explain
--skip-unchanged` says which steps will be skipped.

`--jobs 4` on that spec (one branch a slow Python block, so that steps end out of plan order)
gives the tables, files and `--json` events (times aside) of `--jobs 1`, on DuckDB and Postgres.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import examples
import pyarrow.parquet as pq
import pytest
from flowc_cli import flowc, runs_listed, steps_shown
from pg_server import PgDatabase, PgServer, profile_section
from test_pg_run import normalized

SPEC = "specs/green_taxi.flow"
WAREHOUSE = Path(".flowc") / "warehouse.duckdb"
ROWS = 300
FAILPOINT = "FLOWC_FAILPOINT"
OLD = ("--param", "run_date=2020-10-01")  # the previous successful run (the default value)
NEW = ("--param", "run_date=2020-11-01")  # the killed run, and the uninterrupted one

# the plan of specs/green_taxi (test_the_kill_points_are_the_plan_steps keeps this honest)
STEPS = [
    "trips",
    "clean_trips",
    "clean_trips.not_null(VendorID, lpep_pickup_date)",
    "clean_trips.accepted_values(VendorID, [1, 2])",
    "clean_trips.row_count(min = 1)",
    'clean_trips.check("passenger_count > 0")',
    "clean_trips.into.snake_trips",
    "snake_trips.py",
    "snake_trips.to.warehouse",
    "snake_trips.not_null(vendor_id)",
    "daily_stats",
    "green_taxi",
    "green_files",
    "daily_csv",
]
PUBLISH = "publish"
# these two hand their data on in memory (warehouse -> Python -> warehouse): when the process
# died before that data was back in the warehouse, a resume has to run them again
IN_MEMORY = {"clean_trips.into.snake_trips", "snake_trips.py"}
BACK_IN_WAREHOUSE = "snake_trips.to.warehouse"
# the sinks run in the run's last transaction, with the publishing: never done before it
DEFERRED = {"green_taxi", "green_files", "daily_csv"}

Rows = list[tuple[object, ...]]


@dataclass(frozen=True)
class Snapshot:
    """What a user sees of a project: its real tables (stage schemas aside) and out/ files."""

    tables: dict[str, Rows]
    files: dict[str, Rows]


# --- reading a project's state --------------------------------------------------------------


def _stage(schema: str) -> bool:
    """A run's stage schema (`_flowc_...`), not a name the user gave."""
    return schema.startswith("_") and schema.lstrip("_").startswith("flowc")


def duckdb_tables(root: Path) -> dict[str, Rows]:
    path = root / WAREHOUSE
    if not path.exists():
        return {}
    with duckdb.connect(str(path), read_only=True) as con:
        names = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL"
        ).fetchall()
        return {
            f"{schema}.{name}": normalized(con.execute(f'FROM "{schema}"."{name}"').fetchall())
            for schema, name in names
            if not _stage(schema)
        }


def duckdb_stages(root: Path) -> int:
    path = root / WAREHOUSE
    if not path.exists():
        return 0
    with duckdb.connect(str(path), read_only=True) as con:
        schemas = con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()
    return sum(1 for (schema,) in schemas if _stage(schema))


def pg_tables(pg: PgDatabase) -> dict[str, Rows]:
    names = pg.query(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
    )
    return {
        f"{schema}.{name}": normalized(pg.query(f'SELECT * FROM "{schema}"."{name}"'))
        for schema, name in names
        if not _stage(str(schema))
    }


def pg_stages(pg: PgDatabase) -> int:
    schemas = pg.query("SELECT nspname FROM pg_namespace")
    return sum(1 for (schema,) in schemas if _stage(str(schema)))


def output_files(root: Path, *, hidden: bool) -> dict[str, Rows]:
    """The files under out/ with their content: Parquet and CSV as sorted rows, so that the
    order rows happen to be written in does not count; hidden ones (a sink's staging) only
    when `hidden`."""
    out = root / "out"
    found: dict[str, Rows] = {}
    for path in sorted(out.rglob("*")) if out.exists() else []:
        relative = path.relative_to(out)
        if not path.is_file() or (not hidden and any(p.startswith(".") for p in relative.parts)):
            continue
        if path.suffix == ".parquet" and not path.name.startswith("."):
            rows = pq.ParquetFile(path).read().to_pylist()
            found[str(relative)] = normalized([tuple(row.values()) for row in rows])
        else:
            found[str(relative)] = sorted((line,) for line in path.read_bytes().splitlines())
    return found


def duckdb_snapshot(root: Path, *, hidden: bool = True) -> Snapshot:
    return Snapshot(duckdb_tables(root), output_files(root, hidden=hidden))


def pg_snapshot(root: Path, pg: PgDatabase, *, hidden: bool = True) -> Snapshot:
    return Snapshot(pg_tables(pg), output_files(root, hidden=hidden))


# --- driving flowc --------------------------------------------------------------------------


def copy(project: Path, folder: Path) -> Path:
    target = folder / project.name
    shutil.copytree(project, target)
    return target


def run(
    root: Path, *arguments: str, env: Mapping[str, str] | None = None, spec: str = SPEC
) -> list[dict[str, Any]]:
    """`flowc run SPEC ARGUMENTS --json`, which must succeed: its events."""
    result = flowc("run", spec, *arguments, "--json", cwd=root, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def killed(
    root: Path, point: str, *arguments: str, env: Mapping[str, str] | None = None, spec: str = SPEC
) -> None:
    """`flowc run` with the failpoint `point`: the process must die of SIGKILL."""
    result = flowc("run", spec, *arguments, cwd=root, env={**(env or {}), FAILPOINT: point})
    assert result.returncode == -signal.SIGKILL, (result.returncode, result.stdout, result.stderr)


def resume(
    root: Path,
    *arguments: str,
    run_id: str = "",
    env: Mapping[str, str] | None = None,
    spec: str = SPEC,
) -> list[dict[str, Any]]:
    """`flowc run SPEC ARGUMENTS --resume [RUN_ID]`, which must succeed: its events. A bare
    `--resume` goes last, where no value can follow it."""
    resuming = ("--resume", run_id) if run_id else ("--resume",)
    events = run(root, *arguments, *resuming, env=env, spec=spec)
    assert events[-1]["event"] == "run" and events[-1]["status"] == "succeeded", events[-1]
    return events


def run_id(events: list[dict[str, Any]]) -> str:
    return str(events[-1]["run_id"])


def statuses(events: list[dict[str, Any]]) -> dict[str, str]:
    """Each step's last status in a run's `--json` events."""
    return {e["step"]: e["status"] for e in events if e["event"] == "step"}


def shown(root: Path, run_id: str) -> dict[str, str]:
    """Each step's last status as `flowc show RUN_ID` lists it (`  STEP  KIND  STATUS ...`)."""
    result = flowc("show", run_id, cwd=root)
    assert result.returncode == 0, result.stderr
    return {step: status for step, _kind, status, *_ in steps_shown(result.stdout)}


def latest_run(root: Path) -> tuple[str, str]:
    """The id and status of the newest run, as `flowc runs` lists it."""
    result = flowc("runs", SPEC, cwd=root)
    assert result.returncode == 0, result.stderr
    run_id, status, *_ = runs_listed(result.stdout)[0]
    return run_id, status


_STEP_LINE = re.compile(r"^\s+\d+\. (.+?): ")  # a check's name holds spaces
_SKIP_LINE = re.compile(r"^  (.+?): (?:unchanged since run (\S+): skipped|runs)$")


def explained(
    root: Path, spec: str, *options: str, env: Mapping[str, str] | None = None
) -> list[str]:
    """The steps of `flowc explain SPEC OPTIONS`, in plan order."""
    result = flowc("explain", spec, *options, cwd=root, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return [m.group(1) for m in map(_STEP_LINE.match, result.stdout.splitlines()) if m]


def explained_skips(root: Path, spec: str) -> dict[str, str | None]:
    """What `flowc explain SPEC --skip-unchanged` says of each step: the run it is unchanged
    since (`STEP: unchanged since run ID: skipped`), or None (`STEP: runs`)."""
    result = flowc("explain", spec, "--skip-unchanged", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    said = {m.group(1): m.group(2) for m in map(_SKIP_LINE.match, lines) if m}
    assert list(said) == [m.group(1) for m in map(_STEP_LINE.match, lines) if m], lines
    return said


def finished(kind: str, point: str) -> list[str]:
    """The steps that had committed when the failpoint `kind:point` killed the run."""
    if point == PUBLISH:
        return list(STEPS)
    at = STEPS.index(point)
    return STEPS[: at + 1] if kind == "kill-after" else STEPS[:at]


def expected_statuses(done: list[str]) -> dict[str, str]:
    """What a resume does with each step, given the ones that had finished."""
    lost = BACK_IN_WAREHOUSE not in done  # the Python block's output died with the process
    again = {s for s in STEPS if s not in done or s in DEFERRED or (s in IN_MEMORY and lost)}
    return {step: "succeeded" if step in again else "reused" for step in STEPS}


# --- the example on DuckDB ------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project with generated data, never run."""
    return examples.green_taxi(tmp_path_factory.mktemp("resume_fresh"), ROWS)


@pytest.fixture(scope="module")
def old(fresh: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project after one successful run with the OLD params."""
    root = copy(fresh, tmp_path_factory.mktemp("resume_old"))
    run(root, *OLD)
    return root


@dataclass(frozen=True)
class Reference:
    """An uninterrupted run with the NEW params: what every resumed run must end with."""

    snapshot: Snapshot
    stages: int


@pytest.fixture(scope="module")
def reference(old: Path, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """`old` after an uninterrupted run with the NEW params (every output is replaced: a
    first run with them ends the same)."""
    root = copy(old, tmp_path_factory.mktemp("resume_reference"))
    run(root, *NEW)
    found = Reference(duckdb_snapshot(root), duckdb_stages(root))
    assert found.snapshot.tables["flowc_internal.daily_stats"]
    return found


def test_the_kill_points_are_the_plan_steps(fresh: Path) -> None:
    assert explained(fresh, SPEC) == STEPS


def _kill_and_resume(root: Path, kind: str, point: str, reference: Reference) -> None:
    """Kill a run of `root` at `kind:point`: nothing changes; resume it (`last`; after
    `kill-after`, by its id, with `flowc show` read too): the reference."""
    before = duckdb_snapshot(root, hidden=False)
    killed(root, f"{kind}:{point}", *NEW)
    assert duckdb_snapshot(root, hidden=False) == before
    by_id = ""
    if kind == "kill-after":
        by_id, status = latest_run(root)
        assert status != "succeeded"
    events = resume(root, run_id=by_id)
    assert duckdb_snapshot(root) == reference.snapshot
    assert duckdb_stages(root) == reference.stages  # the killed run's stage is not left over
    expected = expected_statuses(finished(kind, point))
    assert statuses(events) == expected
    if by_id:
        assert shown(root, run_id(events)) == expected


@pytest.mark.parametrize("point", [*STEPS, PUBLISH])
def test_killed_before_each_step_old_data_untouched_then_resumed(
    old: Path, reference: Reference, tmp_path: Path, point: str
) -> None:
    _kill_and_resume(copy(old, tmp_path), "kill-before", point, reference)


@pytest.mark.parametrize("point", ["snake_trips.py", PUBLISH])
def test_killed_first_run_leaves_nothing_then_resumed(
    fresh: Path, reference: Reference, tmp_path: Path, point: str
) -> None:
    root = copy(fresh, tmp_path)
    killed(root, f"kill-before:{point}", *NEW)
    assert duckdb_snapshot(root, hidden=False) == Snapshot({}, {})
    resumed = run_id(resume(root))
    assert duckdb_snapshot(root) == reference.snapshot
    assert shown(root, resumed) == expected_statuses(finished("kill-before", point))


@pytest.mark.parametrize("point", ["snake_trips.py", "green_taxi", "daily_csv"])
def test_killed_after_a_step_committed_then_resumed(
    old: Path, reference: Reference, tmp_path: Path, point: str
) -> None:
    _kill_and_resume(copy(old, tmp_path), "kill-after", point, reference)


def test_resume_wants_an_unfinished_run_with_its_own_params(old: Path, tmp_path: Path) -> None:
    root = copy(old, tmp_path)
    succeeded, _ = latest_run(root)
    for arguments in (("--resume",), ("--resume", succeeded), ("--resume", "nosuchrun")):
        refused = flowc("run", SPEC, *arguments, cwd=root)
        assert refused.returncode == 2, (arguments, refused.stdout, refused.stderr)
        assert "Traceback" not in refused.stderr
        assert ("nosuchrun" if "nosuchrun" in arguments else "succeeded") in refused.stderr
    killed(root, "kill-before:daily_stats", *NEW)
    before = duckdb_snapshot(root, hidden=False)
    other = flowc("run", SPEC, "--param", "run_date=2020-10-15", "--resume", cwd=root)
    assert other.returncode == 2, other.stdout + other.stderr
    assert "run_date" in other.stderr and "Traceback" not in other.stderr
    assert duckdb_snapshot(root, hidden=False) == before
    resumed = resume(root, *NEW)  # the run's own value is no difference
    assert statuses(resumed) == expected_statuses(finished("kill-before", "daily_stats"))


# --- --skip-unchanged -----------------------------------------------------------------------


def test_skip_unchanged_with_nothing_changed_runs_nothing(old: Path, tmp_path: Path) -> None:
    root = copy(old, tmp_path)
    before = duckdb_snapshot(root)
    assert None not in explained_skips(root, SPEC).values()
    events = run(root, *OLD, "--skip-unchanged")
    assert statuses(events) == dict.fromkeys(STEPS, "unchanged")
    assert duckdb_snapshot(root) == before
    assert set(shown(root, str(events[-1]["run_id"])).values()) == {"unchanged"}


def test_skip_unchanged_reruns_a_changed_transform_and_downstream(
    old: Path, tmp_path: Path
) -> None:
    root = copy(old, tmp_path)
    before = duckdb_snapshot(root)
    sql = root / "sql" / "daily_stats.sql"
    sql.write_text(sql.read_text().replace("AVG(trip_distance)", "MAX(trip_distance)"))
    rerun = {"daily_stats", "daily_csv"}
    said = explained_skips(root, SPEC)
    assert {step for step, since in said.items() if since is None} == rerun
    assert {since for since in said.values() if since} == {latest_run(root)[0]}
    events = run(root, *OLD, "--skip-unchanged")
    assert statuses(events) == {s: "succeeded" if s in rerun else "unchanged" for s in STEPS}
    after = duckdb_snapshot(root)
    assert {t: r for t, r in after.tables.items() if t != "flowc_internal.daily_stats"} == {
        t: r for t, r in before.tables.items() if t != "flowc_internal.daily_stats"
    }
    with duckdb.connect(str(root / WAREHOUSE), read_only=True) as con:
        expected = con.execute(
            "SELECT lpep_pickup_date, count(*), sum(fare_amount), max(trip_distance) "
            "FROM flowc_internal.snake_trips GROUP BY ALL"
        ).fetchall()
    assert after.tables["flowc_internal.daily_stats"] == normalized(expected)
    assert after.files["daily_stats.csv"] != before.files["daily_stats.csv"]
    assert {f: r for f, r in after.files.items() if f != "daily_stats.csv"} == {
        f: r for f, r in before.files.items() if f != "daily_stats.csv"
    }


# --- a spec of independent branches ---------------------------------------------------------

BRANCHES_SPEC = "specs/branches.flow"
BRANCHES_TOML = """\
[project]
name = "branches"
default_profile = "dev"

[profiles.dev.warehouse]
type = "duckdb"
path = ".flowc/warehouse.duckdb"
"""

BRANCHES_FLOW = """\
pipeline branches {
  target = warehouse
  params {
    factor int = 2
  }
}

source a {
  from = csv("data/a.csv", header = true)
  columns { k int  v int }
}

source b {
  from = csv("data/b.csv", header = true)
  columns { k int  v int }
}

source c {
  from = csv("data/c.csv", header = true)
  columns { k int  v int }
}

transform slow_a {
  python = "blocks/slow.py:slow"
  inputs = [a]
  columns { k int  v int }
}

transform sum_a {
  sql = "SELECT k, sum(v) * :factor AS total FROM slow_a GROUP BY k"
  materialize = table
}

transform sum_b {
  sql = "SELECT k, sum(v) AS total FROM b GROUP BY k"
  materialize = table
  expect {
    row_count(min = 1)
  }
}

transform count_c {
  sql = "SELECT k, count(*) AS n FROM c GROUP BY k"
  materialize = table
}

transform joined {
  sql = \"\"\"
    SELECT sum_a.k, sum_a.total AS a_total, sum_b.total AS b_total, count_c.n
    FROM sum_a JOIN sum_b ON sum_b.k = sum_a.k JOIN count_c ON count_c.k = sum_a.k
    ORDER BY sum_a.k
  \"\"\"
  materialize = table
}

sink joined_csv {
  input = joined
  to = csv("out/joined.csv")
}
"""

# the first branch in plan order ends last: with --jobs the other branches overtake it
SLOW_PY = """\
import time

import pandas as pd


def slow(a: pd.DataFrame) -> pd.DataFrame:
    time.sleep(0.5)
    return a
"""

BRANCH_STEPS = {
    "a": ["a", "a.into.slow_a", "slow_a.py", "slow_a.to.warehouse", "sum_a"],
    "b": ["b", "sum_b", "sum_b.row_count(min = 1)"],
    "c": ["c", "count_c"],
}
DOWNSTREAM = ["joined", "joined_csv"]


def _write_csv(path: Path, multiplier: int) -> None:
    lines = [f"{i % 6},{i * multiplier}" for i in range(60)]
    path.write_text("k,v\n" + "\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def branches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with three independent branches joined at the end, never run."""
    root = tmp_path_factory.mktemp("resume_branches") / "branches"
    for folder in ("specs", "blocks", "data"):
        (root / folder).mkdir(parents=True)
    (root / "flow.toml").write_text(BRANCHES_TOML + profile_section("pg", "warehouse"))
    (root / BRANCHES_SPEC).write_text(BRANCHES_FLOW)
    (root / "blocks" / "slow.py").write_text(SLOW_PY)
    for name, multiplier in (("a", 1), ("b", 3), ("c", 5)):
        _write_csv(root / "data" / f"{name}.csv", multiplier)
    return root


def run_branches(
    root: Path, *arguments: str, env: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    return run(root, *arguments, env=env, spec=BRANCHES_SPEC)


def test_skip_unchanged_reruns_a_changed_source_and_downstream(
    branches: Path, tmp_path: Path
) -> None:
    root = copy(branches, tmp_path)
    run_branches(root)
    _write_csv(root / "data" / "b.csv", 4)  # new values
    rerun = {*BRANCH_STEPS["b"], *DOWNSTREAM}
    everything = [step for steps in BRANCH_STEPS.values() for step in steps] + DOWNSTREAM
    events = run_branches(root, "--skip-unchanged")
    assert statuses(events) == {s: "succeeded" if s in rerun else "unchanged" for s in everything}
    joined = duckdb_tables(root)["flowc_internal.joined"]
    sums = {k: 270 + 10 * k for k in range(6)}  # of 0..59 with i % 6 == k, times 1 and 4
    assert joined == normalized([(k, 2 * sums[k], 4 * sums[k], 10) for k in range(6)])

    c = root / "data" / "c.csv"
    os.utime(c, ns=(c.stat().st_atime_ns, c.stat().st_mtime_ns + 10**9))  # same bytes, touched
    rerun = {*BRANCH_STEPS["c"], *DOWNSTREAM}
    said = explained_skips(root, BRANCHES_SPEC)
    assert {step for step, since in said.items() if since is None} == rerun
    events = run_branches(root, "--skip-unchanged")
    assert statuses(events) == {s: "succeeded" if s in rerun else "unchanged" for s in everything}
    assert duckdb_tables(root)["flowc_internal.joined"] == joined


def _without_times(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in e.items() if k not in ("seconds", "run_id")}
        for e in events
        if e["event"] == "step"
    ]


def _in_order(events: list[dict[str, Any]]) -> list[str]:
    """The steps in the order their events come, each once."""
    return list(dict.fromkeys(e["step"] for e in events if e["event"] == "step"))


def _same_with_jobs(one: list[dict[str, Any]], four: list[dict[str, Any]], plan: list[str]) -> None:
    assert _in_order(four) == plan
    assert _without_times(four) == _without_times(one)
    assert set(statuses(four).values()) == {"succeeded"}


def test_jobs_4_gives_what_jobs_1_gives_on_duckdb(branches: Path, tmp_path: Path) -> None:
    plan = explained(branches, BRANCHES_SPEC)
    one = copy(branches, tmp_path / "one")
    four = copy(branches, tmp_path / "four")
    _same_with_jobs(run_branches(one, "--jobs", "1"), run_branches(four, "--jobs", "4"), plan)
    assert duckdb_snapshot(four) == duckdb_snapshot(one)
    assert duckdb_snapshot(four).tables["flowc_internal.joined"]
    # killed when every step is done, in whatever order: all of them are reused
    again = copy(branches, tmp_path / "again")
    killed(again, f"kill-before:{PUBLISH}", "--jobs", "4", spec=BRANCHES_SPEC)
    resumed = run_id(resume(again, "--jobs", "4", spec=BRANCHES_SPEC))
    reused = {step: "reused" for step in plan if step != "joined_csv"}  # a sink: run at publish
    assert shown(again, resumed) == {**reused, "joined_csv": "succeeded"}
    assert duckdb_snapshot(again) == duckdb_snapshot(one)


def test_jobs_4_gives_what_jobs_1_gives_on_postgres(
    branches: Path, pg: PgDatabase, pg_server: PgServer, tmp_path: Path
) -> None:
    plan = explained(branches, BRANCHES_SPEC, "--profile", "pg", env=pg.env())
    other = pg_server.create_database()
    try:
        one = copy(branches, tmp_path / "one")
        four = copy(branches, tmp_path / "four")
        by_one = run_branches(one, "--profile", "pg", "--jobs", "1", env=other.env())
        by_four = run_branches(four, "--profile", "pg", "--jobs", "4", env=pg.env())
        _same_with_jobs(by_one, by_four, plan)
        assert pg_snapshot(four, pg) == pg_snapshot(one, other)
        assert pg_snapshot(four, pg).tables["flowc_internal.joined"]
    finally:
        pg_server.drop_database(other.dbname)


# --- the example on Postgres ----------------------------------------------------------------


@dataclass(frozen=True)
class PgExample:
    """The example after a run with the OLD params into the database `template`, and what
    an uninterrupted run with the NEW params makes of it."""

    root: Path
    template: PgDatabase
    reference: Reference


def clone(template: PgDatabase) -> PgDatabase:
    """A new database with `template`'s tables (much faster than running flowc again)."""
    name = f"flowc_test_{uuid.uuid4().hex[:12]}"
    admin = template.server.connect()
    admin.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.dbname}"')
    finally:
        admin.close()
    return PgDatabase(template.server, name)


@pytest.fixture(scope="module")
def pg_example(
    fresh: Path, pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PgExample]:
    template = pg_server.create_database()
    try:
        root = copy(fresh, tmp_path_factory.mktemp("resume_pg_old"))
        run(root, "--profile", "pg", *OLD, env=template.env())
        database = clone(template)
        try:
            done = copy(root, tmp_path_factory.mktemp("resume_pg_reference"))
            run(done, "--profile", "pg", *NEW, env=database.env())
            reference = Reference(pg_snapshot(done, database), pg_stages(database))
        finally:
            pg_server.drop_database(database.dbname)
        assert reference.snapshot.tables["flowc_internal.daily_stats"]
        yield PgExample(root, template, reference)
    finally:
        pg_server.drop_database(template.dbname)


@pytest.mark.parametrize(
    ("kind", "point"),
    [("kill-before", step) for step in [*STEPS, PUBLISH]]
    + [("kill-after", 'clean_trips.check("passenger_count > 0")')],
)
def test_on_postgres_killed_then_resumed(
    pg_example: PgExample, pg_server: PgServer, tmp_path: Path, kind: str, point: str
) -> None:
    database = clone(pg_example.template)
    try:
        root, env = copy(pg_example.root, tmp_path), database.env()
        before = pg_snapshot(root, database, hidden=False)
        killed(root, f"{kind}:{point}", "--profile", "pg", *NEW, env=env)
        assert pg_snapshot(root, database, hidden=False) == before
        resumed = run_id(resume(root, "--profile", "pg", env=env))
        assert pg_snapshot(root, database) == pg_example.reference.snapshot
        assert pg_stages(database) == pg_example.reference.stages
        assert shown(root, resumed) == expected_statuses(finished(kind, point))
    finally:
        pg_server.drop_database(database.dbname)


def test_on_postgres_skip_unchanged_reads_the_published_tables(
    pg_example: PgExample, pg_server: PgServer, tmp_path: Path
) -> None:
    database = clone(pg_example.template)
    try:
        root, env = copy(pg_example.root, tmp_path), database.env()
        before = pg_snapshot(root, database)
        events = run(root, "--profile", "pg", *OLD, "--skip-unchanged", env=env)
        assert statuses(events) == dict.fromkeys(STEPS, "unchanged")
        assert pg_snapshot(root, database) == before
        sql = root / "sql" / "daily_stats.sql"
        sql.write_text(sql.read_text().replace("AVG(trip_distance)", "MAX(trip_distance)"))
        events = run(root, "--profile", "pg", *OLD, "--skip-unchanged", env=env)
        rerun = {"daily_stats", "daily_csv"}
        assert statuses(events) == {s: "succeeded" if s in rerun else "unchanged" for s in STEPS}
        after = pg_snapshot(root, database)
        assert (
            after.tables["flowc_internal.snake_trips"]
            == before.tables["flowc_internal.snake_trips"]
        )
        expected = database.query(
            "SELECT lpep_pickup_date, count(*), sum(fare_amount), max(trip_distance) "
            "FROM flowc_internal.snake_trips GROUP BY 1"
        )
        assert after.tables["flowc_internal.daily_stats"] == normalized(expected)
    finally:
        pg_server.drop_database(database.dbname)
