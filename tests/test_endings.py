"""Every ending of user code is a step outcome (issue 12, item 2).

A Python block ends its step by returning or by raising. Every other way out of it —
`sys.exit` (any code), a `KeyboardInterrupt` of its own, `GeneratorExit`, any `BaseException`,
`os._exit`, a generator that raises midway, a swallowed timeout — must be a failed step whose
message names the node and the user's frame; the run is recorded as failed, the CLI prints the
summary (and with `--json` the last `run` event) and never exits 0. A real Ctrl-C or SIGTERM
is different: the run stops, is recorded as interrupted, says how to resume, and exits 130 or
143.

The property part runs in-process (`run_plan`, as the CLI calls it) over every `BaseException`
subclass of the builtins, raised in a source and in a transform, by the function and midway
through a generator it returns, with one and with four jobs. `os._exit` and signals are tried
on the real command line only (a broken guard must not end pytest).
"""

from __future__ import annotations

import builtins
import json
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest
from flowc.compiler.analysis import project_file
from flowc.compiler.driver.compile import compile_spec
from flowc.compiler.plan import Plan
from flowc.runtime.run.executor import RunResult, StepEvent, run_plan
from flowc.runtime.state import StateStore
from flowc_cli import FLOWC, flowc, runs_listed
from pg_server import PgDatabase, profile_section

FLOW_TOML = '[project]\nname = "e"\n[profiles.dev.local]\ntype = "duckdb"\npath = "w.duckdb"\n'

SPEC = """
pipeline ends { target = local }
source raw { python = "blocks/end.py:load" }
transform t {
  python = "blocks/end.py:change"
  inputs = [raw]
  columns { x bigint }
}
transform side { sql = "SELECT 1 AS one" materialize = table }
transform r { sql = "SELECT x FROM t" materialize = table }
"""

# The block reads what to do from ending.json at each call, so that one compiled plan serves
# every case: {"where": "source"|"transform", "how": "call"|"generator", "exception": NAME}.
BLOCK = '''
import builtins
import io
import json
import os
import sys
import time
from pathlib import Path

import pyarrow as pa

HERE = Path(__file__).resolve().parent.parent


class Custom(BaseException):
    """A user's own BaseException subclass."""


def _ending():
    path = HERE / "ending.json"
    return json.loads(path.read_text()) if path.exists() else {"where": "nowhere"}


def _make(name):
    if name == "Custom":
        return Custom("boom")
    kind = getattr(builtins, name)
    if issubclass(kind, UnicodeDecodeError):
        return kind("utf-8", b"\\xff", 0, 1, "boom")
    if issubclass(kind, UnicodeEncodeError):
        return kind("ascii", "\\xff", 0, 1, "boom")
    if issubclass(kind, UnicodeTranslateError):
        return kind("\\xff", 0, 1, "boom")
    if issubclass(kind, BaseExceptionGroup):
        inner = ValueError("inner") if issubclass(kind, Exception) else KeyboardInterrupt()
        return kind("boom", [inner])
    return kind("boom")


def _end(where):
    ending = _ending()
    if ending["where"] != where:
        return
    if ending["exception"] == "os._exit":
        os._exit(ending.get("code", 0))
    if ending["exception"] == "sleep":
        time.sleep(60)
        return
    if ending["exception"] == "swallow":
        try:
            time.sleep(60)
        except BaseException:
            pass
        return
    if ending["exception"] == "close_streams":
        sys.stdout.close()
        sys.stderr.close()
        return
    if ending["exception"] == "replace_streams":
        sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
        return
    if "code" in ending:
        raise SystemExit(ending["code"])
    raise _make(ending["exception"])


def _batch(values):
    return pa.record_batch({"x": pa.array(values, pa.int64())})


def _rows(where):
    yield _batch([1])
    _end(where)
    yield _batch([2])


def load():
    ending = _ending()
    if ending.get("how") == "generator" and ending["where"] == "source":
        return _rows("source")
    _end("source")
    return pa.table({"x": pa.array([1, 2], pa.int64())})


def change(raw):
    ending = _ending()
    if ending.get("how") == "generator" and ending["where"] == "transform":
        return _rows("transform")
    _end("transform")
    return raw
'''

BUILTIN_ENDINGS = sorted(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
)
# what is not an `Exception`: the endings that escaped before (issue 12, item 2)
BASE_ONLY = sorted(
    [n for n in BUILTIN_ENDINGS if not issubclass(getattr(builtins, n), Exception)] + ["Custom"]
)


def project(root: Path) -> Path:
    (root / "blocks").mkdir(parents=True)
    (root / "flow.toml").write_text(FLOW_TOML)
    (root / "blocks" / "end.py").write_text(BLOCK)
    (root / "ends.flow").write_text(SPEC)
    return root


def ending(root: Path, **what: object) -> None:
    (root / "ending.json").write_text(json.dumps(what))


class _InProcess:
    """One compiled plan, run again and again in this process as `flowc run` runs it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.plan: Plan = compile_spec(root / "ends.flow", env={}).compiled[0].plan
        _project, [self.profile], _ = project_file.load_project(root, profile=None, env={})

    def run(self, jobs: int) -> tuple[RunResult, list[StepEvent]]:
        events: list[StepEvent] = []
        result = run_plan(
            self.plan, self.profile, self.root, params={}, listener=events.append, jobs=jobs
        )
        return result, events


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> _InProcess:
    return _InProcess(project(tmp_path_factory.mktemp("ends")))


def recorded_status(root: Path, run_id: str) -> str:
    store = StateStore.open(root)
    try:
        detail = store.show_run(run_id)
    finally:
        store.close()
    assert detail is not None
    return detail.run.status


def assert_every_started_step_ended(events: list[StepEvent]) -> None:
    running = {e.step for e in events if e.status == "running"}
    ended = {e.step for e in events if e.status not in ("running", "waiting", "retrying")}
    assert running <= ended, f"steps that never ended: {running - ended}"


def _class_name(name: str) -> str:
    """The name the exception calls itself (`IOError` is `OSError`)."""
    return name if name == "Custom" else getattr(builtins, name).__name__


def assert_failed_in_node(result: RunResult, node: str, function: str, needle: str) -> None:
    assert result.status == "failed", result
    assert result.crash is None, result.crash
    assert result.failed_step is not None and result.failed_step.startswith(f"{node}.")
    error = result.error or ""
    assert error.startswith(f"{node}: `blocks/end.py:{function}` "), error
    assert needle in error, error
    assert 'blocks/end.py", line' in error, error  # the user's frame
    assert "flowc/runtime" not in error


# --- the class: every BaseException of the builtins, in-process -------------------------------


@pytest.mark.parametrize("jobs", [1, 4])
@pytest.mark.parametrize("where", ["source", "transform"])
@pytest.mark.parametrize("name", [*BUILTIN_ENDINGS, "Custom"])
def test_every_builtin_exception_raised_by_a_block_fails_its_step(
    in_process: _InProcess, name: str, where: str, jobs: int
) -> None:
    ending(in_process.root, where=where, how="call", exception=name)
    result, events = in_process.run(jobs)
    node, function = ("raw", "load") if where == "source" else ("t", "change")
    assert_failed_in_node(result, node, function, _class_name(name))
    assert result.failed_step == f"{node}.py"
    assert recorded_status(in_process.root, result.run_id) == "failed"
    assert_every_started_step_ended(events)


@pytest.mark.parametrize("jobs", [1, 4])
@pytest.mark.parametrize("where", ["source", "transform"])
@pytest.mark.parametrize("name", [*BASE_ONLY, "ValueError", "StopIteration"])
def test_a_generator_ending_midway_fails_the_step_that_reads_it(
    in_process: _InProcess, name: str, where: str, jobs: int
) -> None:
    ending(in_process.root, where=where, how="generator", exception=name)
    result, events = in_process.run(jobs)
    node, function = ("raw", "load") if where == "source" else ("t", "change")
    # a generator runs when it is read: by the step after the block's own
    assert_failed_in_node(result, node, function, _class_name(name))
    assert recorded_status(in_process.root, result.run_id) == "failed"
    assert_every_started_step_ended(events)
    with duckdb.connect(str(in_process.root / "w.duckdb"), read_only=True) as con:
        published = con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE NOT starts_with(table_schema, '_flowc_') AND table_name = 'r'"
        ).fetchall()
    assert published == []  # never loaded partially


@pytest.mark.parametrize("code", [0, None, 3, "bye"])
def test_sys_exit_with_any_code_says_what_it_was(in_process: _InProcess, code: object) -> None:
    ending(in_process.root, where="transform", how="call", exception="SystemExit", code=code)
    result, _ = in_process.run(1)
    assert_failed_in_node(result, "t", "change", f"called sys.exit({code!r}) (SystemExit)")


def test_a_blocks_own_keyboard_interrupt_is_not_a_ctrl_c(in_process: _InProcess) -> None:
    ending(in_process.root, where="transform", how="call", exception="KeyboardInterrupt")
    result, _ = in_process.run(1)
    assert_failed_in_node(result, "t", "change", "raised KeyboardInterrupt itself")
    assert result.signal is None


# --- the command line: summary, last event, exit status -----------------------------------------


@pytest.fixture
def cli_project(tmp_path: Path) -> Path:
    return project(tmp_path / "p")


def last_event(stdout: str) -> dict[str, object]:
    event: dict[str, object] = json.loads(stdout.strip().splitlines()[-1])
    return event


CLI_ENDINGS: list[dict[str, object]] = [
    {"exception": "SystemExit", "code": 0},
    {"exception": "SystemExit", "code": None},
    {"exception": "KeyboardInterrupt"},
    {"exception": "GeneratorExit"},
    {"exception": "Custom"},
    {"exception": "os._exit", "code": 0},
    {"exception": "os._exit", "code": 7},
]


# every ending by the function with one job; the two that ended flowc before, midway
# through a generator and on worker threads too (the in-process tests cover the matrix)
CLI_CASES: list[tuple[dict[str, object], str, str]] = [
    (what, "call", "1") for what in CLI_ENDINGS
] + [
    (CLI_ENDINGS[0], "generator", "4"),
    (CLI_ENDINGS[5], "generator", "4"),
]


@pytest.mark.parametrize(
    ("what", "how", "jobs"),
    CLI_CASES,
    ids=[f"{w['exception']}-{w.get('code')}-{h}-{j}" for w, h, j in CLI_CASES],
)
def test_flowc_run_reports_every_ending_and_never_exits_0(
    cli_project: Path, what: dict[str, object], how: str, jobs: str
) -> None:
    ending(cli_project, where="transform", how=how, **what)
    done = flowc("run", "ends.flow", "--json", "--jobs", jobs, cwd=cli_project)
    assert done.returncode == 1, done.stdout + done.stderr
    event = last_event(done.stdout)
    assert event["event"] == "run" and event["status"] == "failed"
    assert str(event["failed_step"]).startswith("t.")
    assert str(event["error"]).startswith("t: `blocks/end.py:change` ")
    assert "failed at step `t." in done.stderr and "--resume" in done.stderr
    assert "Traceback" not in done.stderr.split("Traceback", 1)[0]  # no flowc traceback first
    assert "flowc/runtime" not in done.stderr
    listed = runs_listed(flowc("runs", cwd=cli_project).stdout)[0]
    assert listed[1] == "failed"


@pytest.mark.parametrize("streams", ["close_streams", "replace_streams"])
def test_a_block_cannot_silence_flowcs_report(cli_project: Path, streams: str) -> None:
    """A block that closes or replaces sys.stdout and sys.stderr: flowc still reports."""
    ending(cli_project, where="transform", how="call", exception=streams)
    done = flowc("run", "ends.flow", "--json", cwd=cli_project)
    assert done.returncode == 0, done.stderr
    assert last_event(done.stdout)["status"] == "succeeded"
    assert "Traceback" not in done.stderr


def test_os_exit_is_named_in_the_message(cli_project: Path) -> None:
    ending(cli_project, where="source", how="call", exception="os._exit", code=0)
    done = flowc("run", "ends.flow", cwd=cli_project)
    assert done.returncode == 1
    assert "raw: `blocks/end.py:load` called os._exit(0)" in done.stderr
    assert 'blocks/end.py", line' in done.stderr


FORKS = """
import os

import pyarrow as pa


def load():
    pid = os.fork()
    if pid == 0:
        os._exit(5)  # a child process the block made ends as asked
    _, status = os.waitpid(pid, 0)
    child = os.fork()
    if child == 0:
        return pa.table({"x": [99]})  # ... and one that returns into flowc ends there too
    os.waitpid(child, 0)
    return pa.table({"x": [os.waitstatus_to_exitcode(status)]})
"""


def test_a_forked_child_of_a_block_exits_as_asked_and_never_runs_flowc(tmp_path: Path) -> None:
    (tmp_path / "blocks").mkdir()
    (tmp_path / "flow.toml").write_text(FLOW_TOML)
    (tmp_path / "blocks" / "forks.py").write_text(FORKS)
    (tmp_path / "f.flow").write_text(
        'pipeline f { target = local }\nsource raw { python = "blocks/forks.py:load" }\n'
        'transform r { sql = "SELECT x FROM raw" materialize = table }\n'
    )
    done = flowc("run", "f.flow", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count('"event": "run"') == 1  # one run, not two
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT x FROM flowc_internal.r").fetchall() == [(5,)]
    assert len(runs_listed(flowc("runs", cwd=tmp_path).stdout)) == 1


# --- a real Ctrl-C, SIGTERM ---------------------------------------------------------------


def _run_until_running(
    root: Path, step: str, *arguments: str
) -> tuple[subprocess.Popen[str], list[str]]:
    """`flowc run ends.flow --json ARGUMENTS`, read until `step` is running."""
    process = subprocess.Popen(
        [*FLOWC, "run", "ends.flow", "--json", *arguments],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if f'"step": "{step}"' in line and '"status": "running"' in line:
            return process, lines
    raise AssertionError(f"{step} never ran: {''.join(lines)}")


def _stop(process: subprocess.Popen[str], signum: int) -> tuple[str, str, float]:
    time.sleep(0.3)  # into the block's sleep; the block sleeps 60 s, far beyond any wait here
    started = time.monotonic()
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    return out, err, time.monotonic() - started


SIGNAL_CASES = [
    ("sleep", signal.SIGINT, "1"),
    ("sleep", signal.SIGINT, "4"),
    ("swallow", signal.SIGTERM, "1"),  # the block catches the interruption: the run stops still
    ("swallow", signal.SIGINT, "4"),
]


@pytest.mark.parametrize(
    ("block", "signum", "jobs"),
    SIGNAL_CASES,
    ids=[f"{b}-{signal.Signals(s).name}-{j}" for b, s, j in SIGNAL_CASES],
)
def test_a_signal_interrupts_the_run_says_so_and_resume_finishes_it(
    cli_project: Path, block: str, signum: int, jobs: str
) -> None:
    status = 128 + signum
    ending(cli_project, where="transform", how="call", exception=block)
    process, lines = _run_until_running(cli_project, "t.py", "--jobs", jobs)
    out, err, took = _stop(process, signum)
    assert process.returncode == status, err
    event = last_event("".join(lines) + out)
    assert event["status"] == "interrupted"
    assert event["error"] == f"interrupted by {signal.Signals(signum).name}" + (
        " (Ctrl-C)" if signum == signal.SIGINT else ""
    )
    assert "interrupted by SIG" in err and "nothing was changed" in err
    assert "flowc run ends.flow --resume" in err
    assert "Traceback" not in err
    listed = runs_listed(flowc("runs", cwd=cli_project).stdout)[0]
    assert listed[1] == "interrupted"
    assert took < 10  # the block is stopped (or, stuck in C on a worker, left), not waited for
    (cli_project / "ending.json").unlink()
    resumed = flowc("run", "ends.flow", "--resume", cwd=cli_project)
    assert resumed.returncode == 0, resumed.stderr
    with duckdb.connect(str(cli_project / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT sum(x) FROM flowc_internal.r").fetchall() == [(3,)]


LONG_SQL = '''
pipeline long { target = local }
transform t {
  sql = """
    SELECT count(*) AS n FROM range(200000) a, range(200000) b
    WHERE (a.range * b.range) % 7 = 3
  """
  materialize = table
}
'''


def test_ctrl_c_cancels_a_running_statement_at_once(cli_project: Path) -> None:
    (cli_project / "ends.flow").write_text(LONG_SQL)
    process, _ = _run_until_running(cli_project, "t")
    out, err, took = _stop(process, signal.SIGINT)
    assert process.returncode == 130, err
    assert last_event(out)["status"] == "interrupted"
    assert took < 10


# --- timeouts ------------------------------------------------------------------------------


def test_a_block_that_swallows_its_timeout_still_times_out(cli_project: Path) -> None:
    spec = cli_project / "ends.flow"
    spec.write_text(
        spec.read_text().replace("inputs = [raw]", 'inputs = [raw]\n  timeout = "300ms"')
    )
    ending(cli_project, where="transform", how="call", exception="swallow")
    done = flowc("run", "ends.flow", "--json", cwd=cli_project)
    assert done.returncode == 1, done.stderr
    event = last_event(done.stdout)
    assert event["failed_step"] == "t.py"
    error = str(event["error"])
    assert error.startswith("t: timed out after 0.3s (its `timeout`)"), error
    assert 'blocks/end.py", line' in error and "time.sleep(60)" in error  # where it was


def test_ctrl_c_cancels_a_postgres_statement_at_once(
    tmp_path: Path, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "flow.toml").write_text(
        '[project]\nname = "e"\ndefault_profile = "pg"\n' + profile_section("pg", "warehouse")
    )
    (tmp_path / "ends.flow").write_text(
        "pipeline long { target = warehouse }\n"
        'transform t { sql = "SELECT 1 AS n FROM pg_sleep(60)"  materialize = table }\n'
    )
    for variable, value in pg.env().items():
        monkeypatch.setenv(variable, value)
    process, _ = _run_until_running(tmp_path, "t")
    out, err, took = _stop(process, signal.SIGINT)
    assert process.returncode == 130, err
    assert last_event(out)["status"] == "interrupted"
    assert took < 10  # the server was told to cancel, not waited for
    running = pg.query(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE query LIKE '%%pg_sleep(60)%%' AND pid <> pg_backend_pid()"
    )
    assert running == [(0,)]  # nothing left running on the server
