"""A secret (a connection password) never appears anywhere flowc writes: the output of every
command, plans and SQL files, the run history, crash reports, and the messages of runs that
fail, including a failed connection. Driven as a user does, on a real Postgres."""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

import examples
import pytest
from flowc_cli import flowc, runs_listed
from pg_server import PgDatabase

SPEC = "specs/green_taxi.flow"
SECRET = f"Sx-{uuid.uuid4().hex}"


@pytest.fixture
def project(tmp_path: Path, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = examples.green_taxi(tmp_path, 300)
    pg.execute(f"CREATE ROLE keeper LOGIN SUPERUSER PASSWORD '{SECRET}'")
    for name, value in {**pg.env(), "POSTGRES_USER": "keeper"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POSTGRES_PASSWORD", SECRET)
    return root


def test_a_password_appears_in_no_output_file_or_history(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.time()
    outputs: list[str] = []

    def run(*arguments: str) -> int:
        done = flowc(*arguments, cwd=project)
        outputs.extend([done.stdout, done.stderr])
        return done.returncode

    assert run("check", ".", "--profile", "all", "--format", "json") == 0
    assert run("compile", SPEC, "--profile", "all", "-o", "build") == 0
    assert run("explain", SPEC, "--profile", "pg") == 0
    assert run("run", SPEC, "--profile", "pg", "--json") == 0
    sql = project / "sql" / "daily_stats.sql"
    sql.write_text(sql.read_text().replace("COUNT(*)", "COUNT(*) / 0"))
    assert run("run", SPEC, "--profile", "pg") == 1  # fails in Postgres, with its message
    monkeypatch.setenv("POSTGRES_PORT", "1")  # and a connection that fails
    monkeypatch.setenv("POSTGRES_HOST", "127.0.0.1")
    assert run("run", SPEC, "--profile", "pg") == 1
    assert run("runs") == 0
    for run_id in [row[0] for row in runs_listed(outputs[-2])]:
        assert run("show", run_id) == 0
    assert "division by zero" in "".join(outputs)  # the failures were reported...
    assert "cannot connect to `warehouse` of profile `pg`" in "".join(outputs)
    for text in outputs:  # ...without the secret
        assert SECRET not in text
    written = [p for p in project.rglob("*") if p.is_file()]
    written += [
        p for p in Path(tempfile.gettempdir()).glob("flowc-crash-*") if p.stat().st_mtime >= started
    ]
    assert any(p.name == "state.db" for p in written)
    assert any(p.name == "plan.json" for p in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
