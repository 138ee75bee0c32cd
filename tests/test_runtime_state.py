"""The run-state store against a real SQLite file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from flowc.runtime.errors import StepError
from flowc.runtime.state import STATE_PATH, StateStore
from flowc_cli import flowc, runs_listed
from hypothesis import given, settings
from hypothesis import strategies as st


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


# --- a store that cannot be read (issue 12, item 13) ----------------------------------------


def _history(root: Path, runs: int = 30) -> bytes:
    """A real store with `runs` runs of three steps; its bytes, checkpointed into one file."""
    store = StateStore.open(root)
    for number in range(runs):
        run = store.start_run("p", "p.flow", "dev", {"n": number})
        for step in ("a", "b", "c"):
            store.start_step(run, step, node=step, kind="sql", fingerprint="f" * 64)
            store.finish_step(run, step, "succeeded", rows=number)
        store.finish_run(run, "succeeded")
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return (root / STATE_PATH).read_bytes()


def _damage(root: Path, data: bytes) -> Path:
    path = root / STATE_PATH
    for stale in (path.with_name("state.db-wal"), path.with_name("state.db-shm")):
        stale.unlink(missing_ok=True)
    path.write_bytes(data)
    return path


def _asides(root: Path) -> list[Path]:
    return sorted((root / ".flowc").glob("state.db.unreadable-*[0-9]"))


DAMAGES: dict[str, Callable[[bytes], bytes]] = {
    "garbage": lambda good: bytes(range(256)) * 40,
    "truncated": lambda good: good[: len(good) // 3],
    "header": lambda good: b"\0" * 100 + good[100:],
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_store_says_what_to_do_and_is_moved_aside_not_deleted(
    tmp_path: Path, damage: str
) -> None:
    broken = DAMAGES[damage](_history(tmp_path))
    path = _damage(tmp_path, broken)
    with pytest.raises(StepError) as caught:
        StateStore.open(tmp_path)
    said = caught.value.message
    assert "cannot be read" in said and "The next `flowc run` moves it aside" in said
    assert "`--resume` cannot finish them" in said and ".recover" in said
    assert path.read_bytes() == broken  # reading changed nothing
    store = StateStore.open(tmp_path, recover=True)
    [aside] = _asides(tmp_path)
    assert aside.read_bytes() == broken  # kept, byte for byte
    assert store.recovered is not None and str(aside) in store.recovered
    assert "an empty history started" in store.recovered
    run = store.start_run("p", "p.flow", "dev", {})  # runs go on
    assert [r.id for r in store.list_runs()] == [run]
    store.close()
    again = StateStore.open(tmp_path, recover=True)  # not blocked, nothing moved again
    assert again.recovered is None and len(_asides(tmp_path)) == 1
    again.close()


def test_a_store_of_a_newer_flowc_is_left_alone(tmp_path: Path) -> None:
    _history(tmp_path, runs=1)
    path = tmp_path / STATE_PATH
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    before = path.read_bytes()
    for recover in (False, True):
        with pytest.raises(StepError, match=r"written by a newer flowc .*version is 99.* up to 2"):
            StateStore.open(tmp_path, recover=recover)
    assert path.read_bytes() == before and _asides(tmp_path) == []


def test_tables_that_are_not_flowcs_are_unreadable(tmp_path: Path) -> None:
    (tmp_path / ".flowc").mkdir()
    with sqlite3.connect(tmp_path / STATE_PATH) as db:
        db.execute("CREATE TABLE runs (id INTEGER, what TEXT)")
    with pytest.raises(StepError, match=r"cannot be read .*table `runs` is not flowc's"):
        StateStore.open(tmp_path)


@settings(max_examples=60)
@given(data=st.data())
def test_however_a_store_is_damaged_a_run_can_go_on(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    root = tmp_path_factory.mktemp("store")
    good = _history(root, runs=40)
    cut = data.draw(st.integers(0, len(good)))
    broken = bytearray(good[:cut])
    for at in data.draw(st.lists(st.integers(0, max(cut - 1, 0)), max_size=4)) if cut else []:
        broken[at] ^= data.draw(st.integers(1, 255))
    _damage(root, bytes(broken))
    store = StateStore.open(root, recover=True)
    try:
        run = store.start_run("p", "p.flow", "dev", {})
        store.list_runs()
        assert store.show_run(run) is not None
    except StepError as error:  # damage deep in a store the checks at open passed: said so
        assert "cannot be read" in error.message
        store.close()
        store = StateStore.open(root, recover=True)  # ... and the next run moves it aside
        store.start_run("p", "p.flow", "dev", {})
    finally:
        store.close()
    kept = [p.read_bytes() for p in _asides(root)] + [(root / STATE_PATH).read_bytes()]
    assert bytes(broken) in kept or store.recovered is None  # moved aside whole, or readable


def test_flowc_run_moves_a_damaged_store_aside_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "flow.toml").write_text(
        '[project]\nname = "s"\n[profiles.dev.local]\ntype = "duckdb"\npath = "w.duckdb"\n'
    )
    (tmp_path / "s.flow").write_text(
        "pipeline s { target = local }\n"
        'transform t { sql = "SELECT 1 AS one" materialize = table }\n'
    )
    assert flowc("run", "s.flow", cwd=tmp_path).returncode == 0
    broken = _damage(tmp_path, b"not a database at all " * 200)
    listed = flowc("runs", cwd=tmp_path)
    assert listed.returncode == 1 and "Traceback" not in listed.stderr
    assert "cannot be read (file is not a database)" in listed.stderr
    done = flowc("run", "s.flow", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning: the run history .flowc/state.db could not be read" in done.stderr
    [aside] = _asides(tmp_path)
    assert aside.read_bytes() == b"not a database at all " * 200
    assert f"moved aside to .flowc/{aside.name}" in done.stderr
    assert broken.exists()
    assert len(runs_listed(flowc("runs", cwd=tmp_path).stdout)) == 1  # the new history
    again = flowc("run", "s.flow", cwd=tmp_path)
    assert again.returncode == 0 and "warning" not in again.stderr
