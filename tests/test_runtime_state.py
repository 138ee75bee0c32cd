"""The run-state store against a real SQLite file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from flowc.runtime.state import STATE_PATH, StateStore


def test_runs_and_steps_are_recorded_as_they_start_and_end(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path)
    run = store.start_run("green_taxi", "specs/green_taxi.flow", "dev", {"run_date": "2020-10-01"})
    store.start_step(run, "load_trips", node="trips", kind="load", fingerprint="abc")
    # a reader sees the running step before it ends (WAL: readers do not wait for writers)
    other = sqlite3.connect(tmp_path / STATE_PATH)
    assert other.execute("SELECT status FROM steps").fetchall() == [("running",)]
    store.finish_step(run, "load_trips", "succeeded", rows=2000)
    store.start_step(run, "sql_clean", node="clean_trips", kind="sql", fingerprint="def")
    store.finish_step(run, "sql_clean", "failed", error="DuckDB: boom")
    store.start_step(run, "sql_clean", node="clean_trips", kind="sql", attempt=2)
    store.finish_step(run, "sql_clean", "succeeded", attempt=2, rows=1900)
    store.finish_run(run, "succeeded")

    detail = store.show_run(run[:15])  # a unique prefix will do
    assert detail is not None
    assert detail.run.status == "succeeded" and detail.run.params == {"run_date": "2020-10-01"}
    assert detail.run.ended is not None and detail.run.ended >= detail.run.started
    steps = [(s.step_id, s.attempt, s.status, s.rows, s.error) for s in detail.steps]
    assert steps == [
        ("load_trips", 1, "succeeded", 2000, None),
        ("sql_clean", 1, "failed", None, "DuckDB: boom"),
        ("sql_clean", 2, "succeeded", 1900, None),
    ]
    assert all(s.seconds is not None and s.seconds >= 0 for s in detail.steps)
    assert store.latest_run("green_taxi", "dev") == detail.run
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    store.close()


def test_list_runs_newest_first_filtered_by_spec(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path)
    first = store.start_run("a", "specs/a.flow", "dev", {})
    second = store.start_run("b", "specs/b.flow", "dev", {})
    third = store.start_run("a", "specs/a.flow", "prod", {})
    assert [r.id for r in store.list_runs()] == [third, second, first]
    assert [r.id for r in store.list_runs(spec="specs/a.flow", limit=1)] == [third]
    assert store.show_run("no-such-run") is None
    # a crashed run stays `running`, with no end time, for `flowc runs` to show
    assert store.list_runs()[0].status == "running" and store.list_runs()[0].ended is None


def test_history_survives_reopening(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path)
    run = store.start_run("a", "specs/a.flow", "dev", {})
    store.close()
    assert [r.id for r in StateStore.open(tmp_path).list_runs()] == [run]


def test_secrets_are_never_stored(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path, secret_values={"hunter2", ""})
    run = store.start_run("a", "specs/a.flow", "dev", {"token": "hunter2"})
    store.start_step(run, "s", node="n", kind="sql")
    store.finish_step(run, "s", "failed", error="could not connect to postgres://u:hunter2@h/db")
    store.close()
    raw = (tmp_path / STATE_PATH).read_bytes()
    wal = tmp_path / ".flowc" / "state.db-wal"
    assert b"hunter2" not in raw + (wal.read_bytes() if wal.exists() else b"")
    detail = StateStore.open(tmp_path).show_run(run)
    assert (
        detail is not None and detail.steps[0].error == "could not connect to postgres://u:***@h/db"
    )


def test_a_run_whose_process_died_is_marked_interrupted(tmp_path: Path) -> None:
    store = StateStore.open_path(tmp_path / "state.db")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = store.start_run("p", "specs/p.flow", "dev", {})
    store._db.execute("UPDATE runs SET pid = ? WHERE id = ?", (dead.pid, killed))
    going = store.start_run("p", "specs/p.flow", "dev", {})  # this process: alive
    statuses = {run.id: run.status for run in store.list_runs()}
    assert statuses == {killed: "interrupted", going: "running"}
    store.close()
