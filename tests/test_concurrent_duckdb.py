"""Two runs on one DuckDB warehouse: the second waits for the first (bounded by the
connection's `lock_timeout`), saying which run it waits for, as runs on Postgres wait for the
run lock; one that gives up exits 75 without a `--resume` hint, and `flowc schedule` starts a
collided run again for the same slot. Synchronized on what the processes print, never on
sleeps."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from flowc_cli import FLOWC, flowc, runs_listed

TOML = """[project]
name = "t"
[profiles.dev.warehouse]
type = "duckdb"
path = "w.duckdb"
{extra}
"""

SPEC = """pipeline p {{
  target = warehouse
  {schedule}
}}
transform nums {{
  sql = "SELECT 1 AS n"
  materialize = table
}}
"""

# a run that holds the warehouse until its stdin is closed: its block reads a line
HELD = 'transform held {{\n  python = "blocks/hold.py:hold"\n  inputs = [nums]\n}}\n'
HOLDING_SPEC = SPEC.replace("transform nums {{", HELD + "transform nums {{")
HOLD_BLOCK = """import sys


def hold(nums):
    sys.stdin.readline()
    return nums
"""


def _project(root: Path, *, extra: str = "", spec: str = SPEC, schedule: str = "") -> Path:
    (root / "flow.toml").write_text(TOML.format(extra=extra))
    (root / "p.flow").write_text(spec.format(schedule=schedule))
    (root / "blocks").mkdir(exist_ok=True)
    (root / "blocks" / "hold.py").write_text(HOLD_BLOCK)
    return root


@contextmanager
def _holder(root: Path) -> Iterator[subprocess.Popen[str]]:
    """A plain process holding the warehouse file open until the block ends."""
    code = (
        "import duckdb, sys\ncon = duckdb.connect('w.duckdb')\nprint('held', flush=True)\n"
        "sys.stdin.readline()\ncon.close()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    process.stdout.readline() if process.stdout else None
    try:
        yield process  # type: ignore[misc]
    finally:
        if process.stdin:
            process.stdin.close()
        process.wait(timeout=60)


def _until(stream: IO[str], words: str) -> str:
    """Read `stream` until a line with `words` (the line), failing at its end."""
    for line in stream:
        if words in line:
            return line
    raise AssertionError(f"the output ended without {words!r}")


def _events(root: Path, *arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*FLOWC, "run", "p.flow", "--json", *arguments],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_run_waits_for_the_first_naming_it_then_succeeds(tmp_path: Path) -> None:
    root = _project(tmp_path, spec=HOLDING_SPEC)
    first = _events(root)
    assert first.stdout is not None and first.stdin is not None
    _until(first.stdout, '"held"')  # the first run is inside its block: it holds w.duckdb
    first_id = runs_listed(flowc("runs", cwd=root).stdout)[0][0]
    second = _events(root, "--select", "nums")
    assert second.stdout is not None
    waiting = json.loads(_until(second.stdout, '"waiting"'))
    assert f"waiting for run {first_id} (pid {first.pid}) to finish" in waiting["message"]
    assert "connection `warehouse`" in waiting["message"]
    first.stdin.close()  # the first run ends; the second goes on
    assert first.wait(timeout=60) == 0
    rest = second.communicate(timeout=60)
    assert second.returncode == 0, rest
    history = flowc("runs", cwd=root).stdout
    assert history.count("succeeded") == 2, history


def test_a_run_that_waited_its_lock_timeout_fails_saying_why_exit_75(tmp_path: Path) -> None:
    root = _project(tmp_path, extra='lock_timeout = "1s"')
    with _holder(root) as holder:
        done = flowc("run", "p.flow", cwd=root)
    assert done.returncode == 75, done.stderr
    assert f"is in use by another process (pid {holder.pid})" in done.stderr
    assert "raise `lock_timeout` of the connection in flow.toml" in done.stderr
    assert "--resume" not in done.stderr and "Traceback" not in done.stderr
    assert "failed" in flowc("runs", cwd=root).stdout
    assert flowc("run", "p.flow", cwd=root).returncode == 0  # once it is free


def test_a_lock_timeout_that_is_no_duration_is_f0606(tmp_path: Path) -> None:
    root = _project(tmp_path, extra='lock_timeout = "soon"')
    done = flowc("check", "p.flow", cwd=root)
    assert done.returncode == 1
    assert "F0606" in done.stdout and "`lock_timeout`" in done.stdout


def test_the_scheduler_starts_a_collided_run_again_for_its_slot(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from flowc.runtime.state import StateStore

    now = datetime.now(UTC)
    minute = (now.minute + 30) % 60
    root = _project(
        tmp_path,
        extra='lock_timeout = "0s"',
        schedule=f'schedule = "{minute} * * * *"\n  catchup = "latest"',
    )
    store = StateStore.open(root)  # a slot is due
    store.set_last_slot("p", "dev", now - timedelta(hours=2))
    store.close()
    with _holder(root):
        scheduler = subprocess.Popen(
            [*FLOWC, "schedule", "--once", "p.flow"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert scheduler.stdout is not None
        _until(scheduler.stdout, "found the warehouse held by another run; trying again")
    rest = scheduler.communicate(timeout=120)[0]
    assert scheduler.returncode == 0, rest
    history = flowc("runs", cwd=root).stdout
    assert history.count("succeeded") == 1, history
