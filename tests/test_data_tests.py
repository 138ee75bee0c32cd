"""Data tests (`expect`) of a run: every one runs and every failure is reported, naming its
node, its expectation and its line in the spec, the tested columns first in sample rows."""

from __future__ import annotations

import re
from pathlib import Path

from flowc_cli import flowc

TOML = '[project]\nname = "t"\n[profiles.dev.local]\ntype = "duckdb"\npath = "w.duckdb"\n'
FLOW = """pipeline t { target = local }

source trips {
  from = csv("data/trips.csv")
  columns { id int  VendorID int  fare double  zone varchar }
}

transform clean_trips {
  sql = "SELECT * FROM trips"
  expect {
    not_null(VendorID)
    unique(id)
    accepted_values(zone, ["a", "b"])
    row_count(min = 1)
  }
}

transform after { sql = "SELECT count(*) AS n FROM clean_trips" materialize = table }
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "flow.toml").write_text(TOML)
    (tmp_path / "t.flow").write_text(FLOW)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "trips.csv").write_text(
        "id,VendorID,fare,zone\n1,,2.5,a\n1,2,3.5,c\n2,1,1.0,b\n"
    )
    return tmp_path


def test_every_failing_expectation_is_reported_in_one_run(tmp_path: Path) -> None:
    done = flowc("run", "t.flow", cwd=_project(tmp_path))
    assert done.returncode == 1
    rows = [re.split(r"\s{2,}", line.strip()) for line in done.stdout.splitlines() if line]
    steps = {row[0]: row[1] for row in rows if len(row) > 1}
    assert steps["clean_trips.not_null(VendorID)"] == "failed"
    assert steps["clean_trips.unique(id)"] == "failed"  # run, not skipped after the first
    assert steps['clean_trips.accepted_values(zone, ["a", "b"])'] == "failed"
    assert steps["clean_trips.row_count(min = 1)"] == "succeeded"
    assert steps["after"] == "skipped"  # what depends on the broken data still waits
    err = done.stderr
    assert "clean_trips: expect not_null(VendorID) failed: 1 row (t.flow:11)" in err
    assert "clean_trips: expect unique(id) failed: 1 row (t.flow:12)" in err
    assert 'clean_trips: expect accepted_values(zone, ["a", "b"]) failed: 1 row (t.flow:13)' in err


def test_a_sample_row_shows_the_tested_column_first(tmp_path: Path) -> None:
    done = flowc("run", "t.flow", cwd=_project(tmp_path))
    assert "    VendorID=NULL | id=1, fare=2.5, zone=a" in done.stderr
    assert "    zone=c | id=1, VendorID=2, fare=3.5" in done.stderr
