"""The command line as a user runs it: exit codes, usage errors, internal errors, the cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import click
import pytest
from flowc import cli
from flowc_cli import FLOWC, flowc

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "specs" / "green_taxi", tmp_path / "green_taxi")
    return tmp_path / "green_taxi"


def test_example_project_checks_clean_for_every_profile(project: Path) -> None:
    result = flowc("check", ".", "--profile", "all", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "checked 1 file: no problems found"
    assert result.stderr == ""


def test_errors_exit_1(project: Path) -> None:
    spec = project / "specs" / "green_taxi.flow"
    spec.write_text(spec.read_text().replace("passenger_count > 0 AND", "pasenger_count > 0 AND"))
    result = flowc("check", cwd=project)
    assert result.returncode == 1
    assert "error[F0301]: unknown column `pasenger_count`" in result.stdout
    assert "did you mean `passenger_count`?" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["check", "no/such/place"], "no such file or folder: no/such/place"),
        (["check", "--format", "xml"], "Invalid value for '--format'"),
        (["check", "--no-such-option"], "No such option"),
        (["nonsense"], "No such command"),
    ],
)
def test_usage_errors_exit_2(project: Path, arguments: list[str], message: str) -> None:
    result = flowc(*arguments, cwd=project)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_folder_without_specs_is_a_usage_error(tmp_path: Path) -> None:
    result = flowc("check", ".", cwd=tmp_path)
    assert result.returncode == 2
    assert "no .flow files found" in result.stderr


def test_a_bug_is_an_internal_error_with_its_traceback_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken() -> None:
        raise RuntimeError("a flowc bug")

    assert cli._guarded(broken) == cli.EXIT_INTERNAL
    message = capsys.readouterr().err
    assert "internal error" in message and "This is a bug in flowc" in message
    saved = Path(message.split("attach ")[1].split(",")[0])
    try:
        assert "RuntimeError: a flowc bug" in saved.read_text()
    finally:
        saved.unlink()


def test_a_recheck_reuses_the_cache_until_a_file_it_read_changes(project: Path) -> None:
    assert flowc("check", cwd=project).returncode == 0
    assert (project / ".flowc" / "cache" / "check.json").is_file()
    sql = project / "sql" / "daily_stats.sql"
    sql.write_text(sql.read_text().replace("lpep_pickup_date", "lpep_pickup_dat", 1))
    result = flowc("check", cwd=project)
    assert result.returncode == 1, "an edit to a SQL file must invalidate the cached result"
    assert "sql/daily_stats.sql" in result.stdout


def test_the_cli_module_runs_without_the_script(project: Path) -> None:
    env = {**os.environ, "PYTHONHASHSEED": "1"}
    result = subprocess.run(
        [*FLOWC, "--version"], cwd=project, capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0
    assert "0.1.0" in result.stdout


def test_ctrl_c_is_reported_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    assert cli._guarded(interrupted) == cli.EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_a_run_a_flowc_bug_ended_still_says_how_it_ended(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from flowc.runtime.run.executor import RunResult

    crash = KeyError("a flowc bug")
    outcome = RunResult("r1", "failed", "s", "internal error: KeyError", crash=crash)
    assert cli._report(outcome, Path("p.flow"), 3, as_json=True) == cli.EXIT_INTERNAL
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1]) == {
        "event": "run",
        "run_id": "r1",
        "status": "failed",
        "failed_step": "s",
        "error": "internal error: KeyError",
    }
    assert "run r1 failed at step `s`" in err and "This is a bug in flowc" in err
    Path(err.split("attach ")[1].split(",")[0]).unlink()


def test_ctrl_c_outside_a_run_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    def compiling() -> None:  # click turns a KeyboardInterrupt into Abort
        raise click.exceptions.Abort() from KeyboardInterrupt()

    assert cli._guarded(compiling) == cli.EXIT_INTERRUPTED
    assert capsys.readouterr().err == "interrupted\n"
