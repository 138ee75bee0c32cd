"""Step retries, end to end: transient failures of Python code are retried with back-off and
every attempt is recorded; other failures, and steps that changed a database, are not."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pytest
from flowc_cli import FLOWC, flowc, runs_listed, steps_shown
from pg_server import PgDatabase, profile_section

FLOW_TOML = '[project]\nname = "r"\n[profiles.dev.local]\ntype = "duckdb"\npath = "w.duckdb"\n'

FLAKY = """
from pathlib import Path

import pandas as pd



def _flaky(name: str) -> None:
    # the first {failures} calls of `{failing}` fail
    counter = Path(__file__).with_name(f"{{name}}.attempts")
    done = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(done + 1))
    if name == "{failing}" and done < {failures}:
        raise {error}("the API hung up")


def load() -> pd.DataFrame:
    _flaky("load")
    return pd.DataFrame({{"x": [1, 2, 3]}})


def double(rows: pd.DataFrame) -> pd.DataFrame:
    _flaky("double")
    return rows.assign(x=rows.x * 2)
"""

SPEC = """
pipeline flaky {{
  target = local
  retries = {retries}
  retry_delay = "10ms"
}}
source raw {{
  python = "blocks/flaky.py:load"
}}
transform doubled {{
  python = "blocks/flaky.py:double"
  inputs = [raw]
  columns {{ x bigint }}
}}
transform result {{
  sql = "SELECT * FROM doubled"
  materialize = table
}}
"""


def project(
    tmp_path: Path,
    *,
    retries: int,
    failures: int,
    error: str = "ConnectionError",
    failing: str = "double",
) -> Path:
    (tmp_path / "blocks").mkdir()
    (tmp_path / "flow.toml").write_text(FLOW_TOML)
    flaky = FLAKY.format(failures=failures, error=error, failing=failing)
    (tmp_path / "blocks" / "flaky.py").write_text(flaky)
    (tmp_path / "flaky.flow").write_text(SPEC.format(retries=retries))
    return tmp_path


def attempts(root: Path, step: str) -> list[str]:
    """The statuses of `step`'s attempts in the last run, from `flowc show`."""
    run_id = runs_listed(flowc("runs", cwd=root).stdout)[0][0]
    shown = steps_shown(flowc("show", run_id, cwd=root).stdout)
    return [row[2] for row in shown if row[0] == step]


def test_a_step_that_fails_twice_then_succeeds_is_retried_and_recorded(tmp_path: Path) -> None:
    root = project(tmp_path, retries=2, failures=2)
    done = flowc("run", "flaky.flow", cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("retrying: doubled.py: attempt") == 2
    assert "attempt 1 of 3 failed; retrying in 0.01s" in done.stderr
    assert "attempt 2 of 3 failed; retrying in 0.02s" in done.stderr  # the delay doubles
    assert attempts(root, "doubled.py") == ["failed", "failed", "succeeded"]
    assert "  6, 2 retried  " in flowc("runs", cwd=root).stdout  # steps, attempts beyond the first
    with duckdb.connect(str(root / "w.duckdb")) as con:
        assert con.execute("SELECT sum(x) FROM flowc_internal.result").fetchone() == (12,)


def test_retries_run_out(tmp_path: Path) -> None:
    root = project(tmp_path, retries=1, failures=2)
    done = flowc("run", "flaky.flow", cwd=root)
    assert done.returncode == 1
    assert "ConnectionError: the API hung up" in done.stderr
    assert attempts(root, "doubled.py") == ["failed", "failed"]
    assert not (root / "w.duckdb").exists() or not _tables(root)


def test_a_python_source_is_retried_too(tmp_path: Path) -> None:
    root = project(tmp_path, retries=1, failures=1, error="TimeoutError", failing="load")
    done = flowc("run", "flaky.flow", cwd=root)
    assert done.returncode == 0, done.stderr
    assert attempts(root, "raw.py") == ["failed", "succeeded"]  # the source failed first


def test_an_error_that_will_not_go_away_is_not_retried(tmp_path: Path) -> None:
    root = project(tmp_path, retries=3, failures=1, error="ValueError")
    done = flowc("run", "flaky.flow", cwd=root)
    assert done.returncode == 1
    assert "retrying" not in done.stderr
    assert attempts(root, "doubled.py") == ["failed"]


def test_a_failed_sql_step_is_not_retried(tmp_path: Path) -> None:
    (tmp_path / "flow.toml").write_text(FLOW_TOML)
    (tmp_path / "bad.flow").write_text(
        'pipeline bad {\n  target = local\n  retries = 2\n  retry_delay = "10ms"\n}\n'
        "transform t {\n  sql = \"SELECT CAST('x' AS INT) AS n\"\n  materialize = table\n}\n"
    )
    done = flowc("run", "bad.flow", cwd=tmp_path)
    assert done.returncode == 1
    assert "retrying" not in done.stderr
    assert attempts(tmp_path, "t") == ["failed"]


def _tables(root: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(root / "w.duckdb")) as con:
        return con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE NOT starts_with(table_schema, '_flowc_')"
        ).fetchall()


SLOW = """
import time

import pandas as pd


def load() -> pd.DataFrame:
    time.sleep(30)
    return pd.DataFrame({"x": [1]})
"""


def test_a_python_step_past_its_timeout_is_stopped(tmp_path: Path) -> None:
    (tmp_path / "blocks").mkdir()
    (tmp_path / "flow.toml").write_text(FLOW_TOML)
    (tmp_path / "blocks" / "slow.py").write_text(SLOW)
    (tmp_path / "slow.flow").write_text(
        "pipeline slow {\n  target = local\n}\n"
        'source raw {\n  python = "blocks/slow.py:load"\n  timeout = "300ms"\n}\n'
        'transform t {\n  sql = "SELECT * FROM raw"\n  materialize = table\n}\n'
    )
    done = flowc("run", "slow.flow", cwd=tmp_path)
    assert done.returncode == 1
    assert "raw: timed out after 0.3s (its `timeout`)" in done.stderr
    assert attempts(tmp_path, "raw.py") == ["failed"]


def test_a_sql_step_past_its_timeout_is_cancelled_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "flow.toml").write_text(FLOW_TOML)
    spec = (
        "pipeline slow {{\n  target = local\n}}\n"
        'transform t {{\n  sql = "{sql}"\n  materialize = table\n  timeout = "500ms"\n}}\n'
    )
    (tmp_path / "slow.flow").write_text(spec.format(sql="SELECT 1 AS n"))
    assert flowc("run", "slow.flow", cwd=tmp_path).returncode == 0
    endless = "SELECT count(*) AS n FROM range(100000000000)"
    (tmp_path / "slow.flow").write_text(spec.format(sql=endless))
    done = flowc("run", "slow.flow", cwd=tmp_path)
    assert done.returncode == 1
    assert "t: timed out after 0.5s" in done.stderr
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        assert con.execute("SELECT n FROM flowc_internal.t").fetchall() == [(1,)]


# --- a SQL step on Postgres: retried after a rollback to its savepoint -----------------------

LOCKED = """
pipeline locked {
  target = warehouse
  retries = 8
  retry_delay = "200ms"
}
source held {
  from = table(warehouse, "public.held")
}
transform copied {
  sql = "SELECT n * 2 AS n FROM held"
  materialize = table
}
"""


def pg_project(
    root: Path, spec: str, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """`root/NAME.flow` holds `spec`; its `warehouse` is the test's Postgres database."""
    (root / "flow.toml").write_text('[project]\nname = "r"\ndefault_profile = "pg"\n')
    with (root / "flow.toml").open("a") as toml:
        toml.write(profile_section("pg", "warehouse"))
    (root / f"{name}.flow").write_text(spec)
    for variable, value in pg.env().items():
        monkeypatch.setenv(variable, value)


def test_a_postgres_step_that_meets_a_lock_timeout_is_retried(
    tmp_path: Path, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_project(tmp_path, LOCKED, pg, monkeypatch, "locked")
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=150")  # libpq passes it to the server
    pg.execute("CREATE TABLE held AS SELECT 21 AS n")
    holder = pg.connect()  # another session holds the table for a while
    holder.cursor().execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
    running = subprocess.Popen(
        [*FLOWC, "run", "locked.flow"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,  # the report is on stderr: read below
        stderr=subprocess.PIPE,
        text=True,
    )
    # the lock is held until the run has met it and says it retries: no sleep racing the run
    # (read on a thread, so that a run that never says it fails the test instead of hanging it)
    assert running.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_lines_into, args=(running.stderr, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        while not seen or "retrying: copied:" not in seen[-1]:
            line = lines.get(timeout=120)
            assert line is not None, "the run ended without retrying:\n" + "".join(seen)
            seen.append(line)
    except queue.Empty:
        running.kill()
        raise AssertionError("no retry within 120 s:\n" + "".join(seen)) from None
    holder.rollback()
    holder.close()
    running.wait(timeout=120)
    reader.join(timeout=10)
    while (line := lines.get_nowait() if not lines.empty() else None) is not None:
        seen.append(line)
    stderr = "".join(seen)
    assert running.returncode == 0, stderr
    assert "lock timeout" in stderr and "retrying: copied:" in stderr
    statuses = attempts(tmp_path, "copied")
    assert statuses[-1] == "succeeded" and set(statuses[:-1]) == {"failed"}
    assert len(statuses) >= 2
    assert pg.query("SELECT n FROM flowc_internal.copied") == [(42,)]


def test_a_postgres_statement_past_its_timeout_is_cancelled(
    tmp_path: Path, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = (
        "pipeline slow {\n  target = warehouse\n}\n"
        'transform t {\n  sql = "SELECT pg_sleep(60) IS NULL AS slept"\n'
        '  materialize = table\n  timeout = "500ms"\n}\n'
    )
    pg_project(tmp_path, slow, pg, monkeypatch, "slow")
    started = time.monotonic()
    done = flowc("run", "slow.flow", cwd=tmp_path)
    assert done.returncode == 1
    assert "t: timed out after 0.5s" in done.stderr
    assert time.monotonic() - started < 30  # cancelled, not waited out
    assert pg.query("SELECT count(*) FROM pg_tables WHERE tablename = 't'") == [(0,)]


def _lines_into(stream: Iterable[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)  # the stream ended
