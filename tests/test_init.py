"""`flowc init`: the scaffolded project checks clean and runs as it is written."""

from __future__ import annotations

from pathlib import Path

from flowc_cli import flowc


def test_a_new_project_checks_and_runs(tmp_path: Path) -> None:
    created = flowc("init", "shop", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    project = tmp_path / "shop"
    for relative in ("flow.toml", "specs/example.flow", "blocks/label.py", "data/orders.csv"):
        assert (project / relative).is_file(), relative
    checked = flowc("check", cwd=project)
    assert (checked.returncode, checked.stdout.strip()) == (0, "checked 1 file: no problems found")
    tested = flowc("test", cwd=project)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "1 test: 1 passed, 0 failed, 0 errors" in tested.stdout
    ran = flowc("run", "specs/example.flow", cwd=project)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    daily = (project / "out" / "daily_totals.csv").read_text().splitlines()
    assert len(daily) == 8  # a header and the seven days of the sample orders


def test_init_refuses_a_folder_that_holds_files(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = flowc("init", ".", cwd=tmp_path)
    assert result.returncode == 2
    assert "already exists and is not an empty folder" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
