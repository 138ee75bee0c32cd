"""The plan cache of `flowc run`: an unchanged spec runs its cached plan without parsing
anything (no sqlglot is imported), and any change the plan depends on compiles it again."""

from __future__ import annotations

import subprocess
from pathlib import Path

import duckdb
from flowc_cli import FLOWC

FLOW_TOML = '[project]\nname = "c"\n[profiles.dev.local]\ntype = "duckdb"\npath = "{db}"\n'
SPEC = """
pipeline cached {
  target = local
}
source numbers {
  from = csv("data/numbers.csv", header = true)
  columns { n int }
}
transform doubled {
  sql = file("sql/doubled.sql")
  materialize = table
}
transform labelled {
  python = "blocks/label.py:label"
  inputs = [doubled]
  columns { n int  label varchar }
}
sink out {
  input = labelled
  to = table(local, "out")
}
"""
BLOCK = """
import pandas as pd


def label(doubled: pd.DataFrame) -> pd.DataFrame:
    return doubled.assign(label="{word}")
"""


def project(root: Path) -> Path:
    for folder in ("data", "sql", "blocks"):
        (root / folder).mkdir()
    (root / "flow.toml").write_text(FLOW_TOML.format(db="w.duckdb"))
    (root / "cached.flow").write_text(SPEC)
    (root / "data" / "numbers.csv").write_text("n\n1\n2\n")
    (root / "sql" / "doubled.sql").write_text("SELECT n * 2 AS n FROM numbers")
    (root / "blocks" / "label.py").write_text(BLOCK.format(word="a"))
    return root


def run(root: Path, db: str = "w.duckdb") -> tuple[bool, list[tuple[object, ...]]]:
    """Whether the run compiled (imported sqlglot), and the rows of the sink's table."""
    done = subprocess.run(
        [*FLOWC[:1], "-X", "importtime", *FLOWC[1:], "run", "cached.flow"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with duckdb.connect(str(root / db), read_only=True) as con:
        rows = con.execute("SELECT n, label FROM out ORDER BY n").fetchall()
    return "sqlglot" in done.stderr, rows


def test_an_unchanged_spec_reuses_its_plan_and_any_change_compiles_again(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert run(root) == (True, [(2, "a"), (4, "a")])
    assert run(root) == (False, [(2, "a"), (4, "a")])  # nothing parsed
    (root / "sql" / "doubled.sql").write_text("SELECT n * 3 AS n FROM numbers")
    assert run(root) == (True, [(3, "a"), (6, "a")])
    assert run(root)[0] is False
    (root / "blocks" / "label.py").write_text(BLOCK.format(word="b"))
    assert run(root) == (True, [(3, "b"), (6, "b")])
    (root / "data" / "numbers.csv").write_text("n\n5\n")  # new data, same plan
    assert run(root) == (False, [(15, "b")])
    (root / "flow.toml").write_text(FLOW_TOML.format(db="other.duckdb"))
    assert run(root, "other.duckdb") == (True, [(15, "b")])
    (root / "cached.flow").write_text("# the spec itself changed\n" + SPEC)
    assert run(root, "other.duckdb") == (True, [(15, "b")])


def test_a_cached_plan_shows_its_warnings_again(tmp_path: Path) -> None:
    root = project(tmp_path)
    unknown = SPEC.replace("columns { n int  label varchar }\n", "")
    after = 'transform after {\n  sql = "SELECT * FROM labelled"\n  materialize = table\n}\n'
    (root / "cached.flow").write_text(unknown + after)
    first = subprocess.run(
        [*FLOWC, "run", "cached.flow"], cwd=root, capture_output=True, text=True, check=False
    )
    again = subprocess.run(
        [*FLOWC, "run", "cached.flow"], cwd=root, capture_output=True, text=True, check=False
    )
    assert first.returncode == again.returncode == 0
    assert "warning[F0307]" in first.stderr
    assert "warning[F0307]" in again.stderr


def test_a_check_after_a_changed_sql_file_does_not_revive_the_old_plan(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert run(root) == (True, [(2, "a"), (4, "a")])
    (root / "sql" / "doubled.sql").write_text("SELECT n * 3 AS n FROM numbers")
    checked = subprocess.run(
        [*FLOWC, "check", "cached.flow"], cwd=root, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
    assert run(root) == (True, [(3, "a"), (6, "a")])  # the new SQL, not the cached plan's
    assert run(root)[0] is False
