"""flowc deletes or replaces only files it wrote; sinks stay in the project; modes mean what
they say on file sinks (append adds, merge replaces partitions), atomically and resumably."""

from __future__ import annotations

import csv
import gzip
import tempfile
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest
from flowc.compiler.analysis import project_file
from flowc.compiler.driver.check import check_paths
from flowc.compiler.driver.compile import compile_spec
from flowc.runtime.run.executor import RunResult, run_plan
from flowc_cli import flowc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SOURCE = """\
pipeline p {
}

source t {
  from = csv("data/t.csv", header = true)
  columns {
    id   int
    day  int
  }
}
"""


def sink(name: str, to: str, mode: str = "replace", key: str = "") -> str:
    lines = [f"sink {name} {{", "  input = t", f"  to    = {to}", f"  mode  = {mode}"]
    if key:
        lines.append(f"  key   = [{key}]")
    return "\n".join([*lines, "}", ""])


def project(root: Path, *sinks: str, toml: str = "", rows: str = "1,1\n2,2\n") -> Path:
    (root / "specs").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "flow.toml").write_text(f'[project]\nname = "p"\n{toml}')
    (root / "data" / "t.csv").write_text("id,day\n" + rows)
    (root / "specs" / "p.flow").write_text(SOURCE + "\n".join(sinks))
    return root


def run(root: Path) -> RunResult | None:
    """Compile and run the project's spec in this process; None when check found errors."""
    result = compile_spec(root / "specs" / "p.flow", profile=None, env={})
    if result.has_errors:
        return None
    _, [profile], _ = project_file.load_project(root, profile=None, env={})
    return run_plan(result.compiled[0].plan, profile, root, params={})


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and ".flowc" not in p.relative_to(folder).parts
    }


def rows_of(folder: Path) -> list[tuple[int, int]]:
    table = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
    ids, days = table.column("id").to_pylist(), table.column("day").to_pylist()
    return sorted((int(i or 0), int(d or 0)) for i, d in zip(ids, days, strict=True))


# --- ownership ---------------------------------------------------------------------------


def test_a_target_holding_user_files_fails_the_run_before_anything_changes(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        sink("kept", 'table(local, "main.kept")'),
        sink("files", 'parquet("important/")'),
    )
    (root / "important").mkdir()
    (root / "important" / "notes.txt").write_text("precious")
    result = flowc("run", "specs/p.flow", cwd=root)
    assert result.returncode == 1, result.stderr
    assert "specs/p.flow:19:11: `important/` holds files that flowc did not write" in result.stderr
    assert "`notes.txt`" in result.stderr and "Traceback" not in result.stderr
    assert [line.split()[:2] for line in result.stdout.splitlines() if line.strip()] == [
        ["t", "skipped"],  # it fails first: no step works for a run that cannot publish
        ["kept", "skipped"],
        ["files", "failed"],
    ]
    assert (root / "important" / "notes.txt").read_text() == "precious"
    assert [p.name for p in (root / "important").iterdir()] == ["notes.txt"]
    with duckdb.connect(str(root / ".flowc" / "local.duckdb"), read_only=True) as con:
        found = con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'kept'")
        assert found.fetchall() == [(0,)]
    assert " failed " in flowc("runs", "specs/p.flow", cwd=root).stdout


def test_flowc_replaces_what_it_wrote_and_nothing_it_did_not(tmp_path: Path) -> None:
    root = project(tmp_path, sink("files", 'parquet("out/t")'), sink("daily", 'csv("out/t.csv")'))
    assert (ran := run(root)) is not None and ran.status == "succeeded", ran
    assert (ran := run(root)) is not None and ran.status == "succeeded", ran  # its own: replaced
    (root / "out" / "t" / "mine.txt").write_text("mine")
    assert (ran := run(root)) is not None and ran.status == "failed"
    assert "`mine.txt`" in (ran.error or "")
    (root / "out" / "t" / "mine.txt").unlink()
    (root / "out" / "t.csv").write_text("id,day\nedited by hand\n")  # changed since: the user's
    assert (ran := run(root)) is not None and ran.status == "failed"
    assert (root / "out" / "t.csv").read_text() == "id,day\nedited by hand\n"


def test_a_project_copied_whole_keeps_its_records(tmp_path: Path) -> None:
    import shutil

    root = project(tmp_path / "a", sink("files", 'parquet("out/t")'))
    assert (ran := run(root)) is not None and ran.status == "succeeded"
    copy = Path(shutil.copytree(root, tmp_path / "b"))
    assert (ran := run(copy)) is not None and ran.status == "succeeded", ran


def test_a_warehouse_file_is_no_sink_target(tmp_path: Path) -> None:
    toml = '[profiles.default.local]\ntype = "duckdb"\npath = "wh.duckdb"\n'
    root = project(tmp_path, sink("over", 'csv("wh.duckdb")'), toml=toml)
    found = check_paths([root / "specs" / "p.flow"], env={}, use_cache=False).diagnostics
    assert [(d.code, d.message) for d in found if d.severity == "error"] == [
        ("F0231", "a sink cannot write `wh.duckdb`: it is the warehouse file `wh.duckdb`")
    ]


# --- paths outside the project -----------------------------------------------------------


def test_allow_paths_lets_a_sink_write_outside_the_project(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    root = project(
        tmp_path / "p",
        sink("out", f'csv("{exports}/t.csv")'),
        toml=f'allow_paths = ["{exports}"]\n',
    )
    assert (ran := run(root)) is not None and ran.status == "succeeded", ran
    assert (exports / "t.csv").read_text().splitlines()[1:] == ["1,1", "2,2"]
    (root / "flow.toml").write_text('[project]\nname = "p"\n')  # no longer allowed
    found = check_paths([root / "specs" / "p.flow"], env={}).diagnostics
    assert [d.code for d in found if d.severity == "error"] == ["F0230"]


def test_a_tilde_is_the_home_folder_never_a_folder_named_tilde(tmp_path: Path) -> None:
    home = tmp_path / "home"
    root = project(
        tmp_path / "p", sink("out", 'csv("~/exports/t.csv")'), toml='allow_paths = ["~/exports"]\n'
    )
    result = flowc("run", "specs/p.flow", cwd=root, env={"HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert (home / "exports" / "t.csv").is_file()
    assert not (root / "~").exists()


# --- modes -------------------------------------------------------------------------------


def test_append_to_partitioned_parquet_keeps_every_other_partition(tmp_path: Path) -> None:
    to = 'parquet("out/t", partition_by = [day])'
    root = project(tmp_path, sink("files", to, "append"), rows="1,1\n2,2\n")
    assert (ran := run(root)) is not None and ran.status == "succeeded", ran
    before = snapshot(root / "out" / "t")
    (root / "data" / "t.csv").write_text("id,day\n3,3\n")  # the next day's data
    assert (ran := run(root)) is not None and ran.status == "succeeded", ran
    after = snapshot(root / "out" / "t")
    assert {k: after[k] for k in before} == before  # the old files, byte for byte
    assert rows_of(root / "out" / "t") == [(1, 1), (2, 2), (3, 3)]


def test_append_twice_adds_the_rows_twice(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        sink("files", 'parquet("out/t")', "append"),
        sink("log", 'csv("out/t.csv.gz")', "append"),
    )
    for _ in range(2):
        assert (ran := run(root)) is not None and ran.status == "succeeded", ran
    assert rows_of(root / "out" / "t") == [(1, 1), (1, 1), (2, 2), (2, 2)]
    with gzip.open(root / "out" / "t.csv.gz", "rt") as text:
        assert list(csv.reader(text)) == [
            ["id", "day"],
            ["1", "1"],
            ["2", "2"],
            ["1", "1"],
            ["2", "2"],
        ]


def test_merge_replaces_the_partitions_it_writes_and_keeps_the_others(tmp_path: Path) -> None:
    to = 'parquet("out/t", partition_by = [day])'
    root = project(tmp_path, sink("files", to, "merge", key="day"), rows="1,1\n2,2\n")
    assert (ran := run(root)) is not None and ran.status == "succeeded", ran
    day_one = snapshot(root / "out" / "t" / "day=1")
    (root / "data" / "t.csv").write_text("id,day\n20,2\n30,3\n")
    assert (ran := run(root)) is not None and ran.status == "succeeded", ran
    assert rows_of(root / "out" / "t") == [(1, 1), (20, 2), (30, 3)]
    assert snapshot(root / "out" / "t" / "day=1") == day_one


def test_a_failed_append_leaves_every_file_as_before(tmp_path: Path) -> None:
    appends = (
        sink("files", 'parquet("out/t")', "append"),
        sink("log", 'csv("out/t.csv")', "append"),
    )
    root = project(tmp_path, *appends)
    assert (ran := run(root)) is not None and ran.status == "succeeded", ran
    before = snapshot(root / "out")
    # a new column: the CSV's header no longer fits the rows, so its sink fails (the
    # Parquet sink, which comes first, had its files staged already: they are dropped)
    spec = (root / "specs" / "p.flow").read_text()
    (root / "specs" / "p.flow").write_text(spec.replace("day  int", "day  int\n    more int"))
    (root / "data" / "t.csv").write_text("id,day,more\n5,5,5\n")
    ran = run(root)
    assert ran is not None and ran.status == "failed", ran
    assert 'its header is `"id","day"`' in (ran.error or "")
    assert snapshot(root / "out") == before


def test_an_append_killed_before_it_finished_is_added_once_by_resume(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        sink("files", 'parquet("out/t")', "append"),
        sink("log", 'csv("out/t.csv")', "append"),
    )
    assert flowc("run", "specs/p.flow", cwd=root).returncode == 0
    killed = flowc("run", "specs/p.flow", cwd=root, env={"FLOWC_FAILPOINT": "kill-after:log"})
    assert killed.returncode != 0
    assert rows_of(root / "out" / "t") == [(1, 1), (2, 2)]  # the killed run changed nothing
    resumed = flowc("run", "specs/p.flow", "--resume", cwd=root)
    assert resumed.returncode == 0, resumed.stderr
    assert rows_of(root / "out" / "t") == [(1, 1), (1, 1), (2, 2), (2, 2)]
    with (root / "out" / "t.csv").open() as text:
        assert list(csv.reader(text)) == [
            ["id", "day"],
            ["1", "1"],
            ["2", "2"],
            ["1", "1"],
            ["2", "2"],
        ]
    assert not [p for p in (root / "out").iterdir() if ".flowc-" in p.name]  # no leftovers


# --- the property ------------------------------------------------------------------------

_TARGETS = [
    "out/a",
    "out/b.csv",
    "notes",
    "notes/a.txt",
    "data",
    "data/t.csv",
    ".",
    ".flowc",
    ".flowc/state.db",
    ".flowc/local.duckdb",
    "specs",
    "specs/p.flow",
    "flow.toml",
    "new/x",
    "../outside",
    "../outside/o.txt",
    "out/../../x",
    "gs://bucket/x",
    "",
]
_SINKS = st.tuples(
    st.sampled_from(_TARGETS),
    st.sampled_from(["csv", "parquet", "parquet_by_day"]),
    st.sampled_from(["replace", "append", "merge"]),
)


def _sink_text(index: int, target: str, kind: str, mode: str) -> str:
    if kind == "csv":
        to = f'csv("{target}")'
    elif kind == "parquet":
        to = f'parquet("{target}")'
    else:
        to = f'parquet("{target}", partition_by = [day])'
    return sink(f"s{index}", to, mode, key="day" if mode == "merge" else "")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_SINKS, min_size=1, max_size=2), min_size=1, max_size=3))
def test_no_sequence_of_runs_changes_a_file_flowc_did_not_write(
    runs: list[list[tuple[str, str, str]]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        root = project(base / "p")
        for path in ("notes/a.txt", "out/a/keep.txt", "specs/other.flow", ".env"):
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(f"the user's {path}\n")
        (base / "outside").mkdir()
        (base / "outside" / "o.txt").write_text("outside the project\n")
        run(root)  # flowc's own folder exists, with a warehouse and a history
        theirs = snapshot(base)
        for sinks in runs:
            texts = [_sink_text(i, *s) for i, s in enumerate(sinks)]
            (root / "specs" / "p.flow").write_text(SOURCE + "\n".join(texts))
            theirs["p/specs/p.flow"] = (root / "specs" / "p.flow").read_bytes()
            run(root)
            now = snapshot(base)
            assert {k: now.get(k) for k in theirs} == theirs
        with duckdb.connect(str(root / ".flowc" / "local.duckdb"), read_only=True) as con:
            con.sql("SELECT 1").fetchall()  # the warehouse is still a database


@pytest.mark.parametrize("target", ["out/x.csv", "out/x"])
def test_an_empty_folder_or_missing_target_is_free_to_take(tmp_path: Path, target: str) -> None:
    root = project(tmp_path, sink("s", f'parquet("{target}")'))
    (root / target).mkdir(parents=True)
    assert (ran := run(root)) is not None and ran.status == "succeeded", ran


def test_an_append_killed_after_its_files_moved_in_is_not_added_twice(tmp_path: Path) -> None:
    """Killed after the files are in place but before the run is recorded as done: `--resume`
    runs the sinks again, and each replaces its own first attempt instead of adding to it."""
    root = project(
        tmp_path,
        sink("files", 'parquet("out/t", partition_by = [day])', "append"),
        sink("log", 'csv("out/t.csv")', "append"),
    )
    assert flowc("run", "specs/p.flow", cwd=root).returncode == 0
    killed = flowc("run", "specs/p.flow", cwd=root, env={"FLOWC_FAILPOINT": "kill-after:moved-in"})
    assert killed.returncode != 0
    assert rows_of(root / "out" / "t") == [(1, 1), (1, 1), (2, 2), (2, 2)]  # moved in
    resumed = flowc("run", "specs/p.flow", "--resume", cwd=root)
    assert resumed.returncode == 0, resumed.stderr
    assert rows_of(root / "out" / "t") == [(1, 1), (1, 1), (2, 2), (2, 2)]
    with (root / "out" / "t.csv").open() as text:
        assert list(csv.reader(text)) == [
            ["id", "day"],
            ["1", "1"],
            ["2", "2"],
            ["1", "1"],
            ["2", "2"],
        ]


def test_modes_through_arrow_as_postgres_and_bigquery_write(tmp_path: Path) -> None:
    """The Arrow writer (engines that do not write Parquet themselves) honours modes too."""
    import pyarrow as pa
    from flowc.runtime.io.sinks import write_parquet

    def rows(*pairs: tuple[int, int]) -> pa.RecordBatchReader:
        table = pa.table({"id": [p[0] for p in pairs], "day": [p[1] for p in pairs]})
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())

    write_parquet(tmp_path, "out/t", rows((1, 1), (2, 2)), partition_by=["day"])
    write_parquet(tmp_path, "out/t", rows((3, 3)), partition_by=["day"], mode="append", tag="b")
    assert rows_of(tmp_path / "out" / "t") == [(1, 1), (2, 2), (3, 3)]
    write_parquet(tmp_path, "out/t", rows((20, 2)), partition_by=["day"], mode="merge", tag="c")
    assert rows_of(tmp_path / "out" / "t") == [(1, 1), (3, 3), (20, 2)]
    write_parquet(tmp_path, "out/t", rows((9, 9)), partition_by=["day"])
    assert rows_of(tmp_path / "out" / "t") == [(9, 9)]


def test_explain_says_what_a_file_sink_mode_does(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        sink("files", 'parquet("out/t", partition_by = [day])', "merge", key="day"),
        sink("log", 'csv("out/t.csv")', "append"),
    )
    shown = flowc("explain", "specs/p.flow", cwd=root).stdout
    assert (
        "writes parquet out/t (merge: replaces the partitions it writes, keeps the others)" in shown
    )
    assert "writes csv out/t.csv (append: rows added below the old)" in shown
