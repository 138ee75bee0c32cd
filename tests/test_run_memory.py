"""`flowc run` compiles in a forked child process (cli._aside) so that the run never holds the
compiler's trees; what the child says and how it ends are the run's, as before."""

from __future__ import annotations

from pathlib import Path

from flowc_cli import flowc

SPEC = """\
pipeline p {
}

transform t {
  sql = "SELECT 1 AS one"
}

transform u {
  sql = "SELECT missing FROM t"
}
"""


def test_a_spec_error_ends_the_run_with_its_diagnostic_once(tmp_path: Path) -> None:
    (tmp_path / "p.flow").write_text(SPEC)
    result = flowc("run", "p.flow", cwd=tmp_path)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert output.count("error[F") == 1, output
    assert "`missing`" in output
    assert "Traceback" not in output
    runs = flowc("runs", "p.flow", cwd=tmp_path).stdout
    assert "failed" not in runs and "succeeded" not in runs  # no run was started


def test_a_run_uses_the_plan_the_child_compiled_and_cached(tmp_path: Path) -> None:
    (tmp_path / "p.flow").write_text(SPEC.replace("missing", "one"))
    first = flowc("run", "p.flow", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "run " in first.stdout and "succeeded: 1 steps" in first.stdout
    again = flowc("run", "p.flow", cwd=tmp_path)  # from the plan cache the child filled
    assert again.returncode == 0 and "succeeded: 1 steps" in again.stdout
    assert list((tmp_path / ".flowc" / "cache").rglob("*plan*")), "no cached plan"
