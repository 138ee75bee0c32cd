"""Python blocks in a worker process (`isolate = true`), and what a hard crash gives without.

In flowc's own process, a crash of the interpreter (a segfault in a C extension, SIGKILL)
ends flowc: the exit status says so (never 0), faulthandler prints the user's frame, and the
run shows as interrupted. With `isolate = true` each of those is a failed step of a run that
reports as every failed run does; a timeout kills the worker at once, as does Ctrl-C.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from flowc.runtime.errors import StepError
from flowc.runtime.usercode import isolated
from flowc.runtime.usercode.pyblocks import run_transform
from flowc_cli import FLOWC, flowc, runs_listed

FLOW_TOML = '[project]\nname = "i"\n[profiles.dev.local]\ntype = "duckdb"\npath = "w.duckdb"\n'

BLOCK = """
import ctypes
import os
import signal
import sys
import time
from pathlib import Path

import pyarrow as pa


def load(day="none"):
    return pa.table({"x": pa.array([1, 2], pa.int64()), "day": [str(day), str(day)]})


def same(raw):
    return raw


def segfault(raw):
    ctypes.string_at(0)


def c_exit(raw):
    ctypes.CDLL(None)._exit(4)


def os_exit(raw):
    os._exit(0)


def sys_exit(raw):
    sys.exit(0)


def killed(raw):
    os.kill(os.getpid(), signal.SIGKILL)


def raises(raw):
    raise ValueError("bad rows")


def sleeps(raw):
    time.sleep(60)
    Path(__file__).with_name("woke").write_text("the worker lived on")
    return raw
"""

SPEC = """
pipeline p {{ target = local {pipeline} }}
source raw {{ python = "blocks/b.py:load" }}
transform t {{
  python = "blocks/b.py:{function}"
  inputs = [raw]
  {node}
}}
transform r {{ sql = "SELECT * FROM t" materialize = table }}
"""


def project(root: Path, function: str, *, pipeline: str = "isolate = true", node: str = "") -> Path:
    (root / "blocks").mkdir(parents=True, exist_ok=True)
    (root / "flow.toml").write_text(FLOW_TOML)
    (root / "blocks" / "b.py").write_text(BLOCK)
    (root / "p.flow").write_text(SPEC.format(pipeline=pipeline, function=function, node=node))
    return root


def last_event(stdout: str) -> dict[str, object]:
    event: dict[str, object] = json.loads(stdout.strip().splitlines()[-1])
    return event


ENDINGS = {
    "segfault": "crashed its worker process (SIGSEGV): a fault in a C extension",
    "c_exit": "ended its worker process with exit status 4 before returning",
    "os_exit": "called os._exit(0)",
    "sys_exit": "called sys.exit(0) (SystemExit)",
    "killed": "was killed (SIGKILL): out of memory, or killed from outside",
    "raises": "raised ValueError: bad rows",
}


@pytest.mark.parametrize("function", list(ENDINGS))
def test_an_isolated_block_that_crashes_is_a_failed_step(tmp_path: Path, function: str) -> None:
    root = project(tmp_path, function)
    done = flowc("run", "p.flow", "--json", cwd=root)
    assert done.returncode == 1, done.stdout + done.stderr
    event = last_event(done.stdout)
    assert event["status"] == "failed" and event["failed_step"] == "t.py"
    error = str(event["error"])
    assert error.startswith(f"t: `blocks/b.py:{function}` {ENDINGS[function]}"), error
    assert "nothing was changed" in done.stderr and "--resume" in done.stderr
    assert runs_listed(flowc("runs", cwd=root).stdout)[0][1] == "failed"


def test_an_isolated_blocks_own_error_shows_the_users_frames(tmp_path: Path) -> None:
    root = project(tmp_path, "raises")
    done = flowc("run", "p.flow", cwd=root)
    assert 'blocks/b.py", line' in done.stderr and "in raises" in done.stderr
    assert "flowc/runtime" not in done.stderr


def test_a_crash_in_flowcs_own_process_is_never_a_success(tmp_path: Path) -> None:
    """Without `isolate`, a segfault ends flowc: a signal status, the user's frame printed by
    faulthandler, the run recorded as interrupted (its process is gone), resumable."""
    root = project(tmp_path, "segfault", pipeline="")
    done = flowc("run", "p.flow", cwd=root)
    assert done.returncode == -signal.SIGSEGV
    assert "Segmentation fault" in done.stderr
    assert 'blocks/b.py", line' in done.stderr  # where it happened
    assert runs_listed(flowc("runs", cwd=root).stdout)[0][1] == "interrupted"
    (root / "blocks" / "b.py").write_text(BLOCK.replace("ctypes.string_at(0)", "return raw"))
    assert flowc("run", "p.flow", "--resume", cwd=root).returncode == 0


@pytest.mark.parametrize("jobs", ["1", "4"])
def test_an_isolated_block_past_its_timeout_is_killed_at_once(tmp_path: Path, jobs: str) -> None:
    root = project(tmp_path, "sleeps", node='timeout = "1s"')
    started = time.monotonic()
    done = flowc("run", "p.flow", "--json", "--jobs", jobs, cwd=root)
    took = time.monotonic() - started
    assert done.returncode == 1
    assert last_event(done.stdout)["error"] == "t: timed out after 1s (its `timeout`)"
    assert took < 30  # not the block's 60 s, on worker threads too (a C call in-process)
    time.sleep(1)
    assert not (root / "blocks" / "woke").exists()  # the worker is gone, not left running


def test_ctrl_c_kills_an_isolated_block(tmp_path: Path) -> None:
    root = project(tmp_path, "sleeps")
    process = subprocess.Popen(
        [*FLOWC, "run", "p.flow", "--json", "--jobs", "4"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if '"step": "t.py"' in line and '"running"' in line:
            break
    time.sleep(0.5)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert time.monotonic() - started < 5  # no grace needed: the worker is killed
    assert last_event(out)["status"] == "interrupted"


def test_isolated_results_are_the_in_process_ones(tmp_path: Path) -> None:
    project(tmp_path, "same")
    rows = pa.table(
        {
            "i": pa.array([1, None, 3], pa.int64()),
            "d": pa.array([decimal.Decimal("1.10"), None, decimal.Decimal("-2.05")]),
            "t": pa.array([dt.datetime(2020, 1, 1, 6), None, dt.datetime(1999, 12, 31)]),
            "s": pa.array(["a", "ü", None]),
        }
    )

    def given() -> dict[str, pa.RecordBatchReader]:
        return {"raw": pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches())}

    there = isolated.run_block(tmp_path, "blocks/b.py:same", kind="transform", inputs=given())
    here = run_transform(tmp_path, "blocks/b.py:same", given())
    assert there.read_all().equals(here.read_all())


def test_an_isolated_source_gets_its_parameters(tmp_path: Path) -> None:
    project(tmp_path, "same")
    got = isolated.run_block(
        tmp_path, "blocks/b.py:load", kind="source", params={"day": dt.date(2020, 10, 1)}
    ).read_all()
    assert got.column("day").to_pylist() == ["2020-10-01", "2020-10-01"]
    with pytest.raises(StepError, match="no Python file"):
        isolated.run_block(tmp_path, "blocks/none.py:f", kind="source")


def test_isolate_on_a_node_wins_over_the_pipeline(tmp_path: Path) -> None:
    root = project(tmp_path, "segfault", pipeline="", node="isolate = true")
    explained = flowc("explain", "p.flow", cwd=root).stdout
    assert "calls blocks/b.py:segfault in a worker process (isolate)" in explained
    assert "calls blocks/b.py:load in a worker" not in explained  # the source runs here
    assert flowc("run", "p.flow", cwd=root).returncode == 1  # a failed step, not a crash
    off = project(tmp_path, "same", pipeline="isolate = true", node="isolate = false")
    assert flowc("run", "p.flow", cwd=off).returncode == 0
    with duckdb.connect(str(off / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT sum(x) FROM flowc_internal.r").fetchall() == [(3,)]
