"""`test` blocks and `flowc test`: parsing and binding, the runner on DuckDB (and Postgres with
`--profile`), the row diff, and every output format, driven as a user drives them."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from examples import GREEN_TAXI
from flowc.compiler import ir
from flowc.compiler.diagnostics import Diagnostics
from flowc.compiler.driver.check import analyze, load_project
from flowc.compiler.syntax.parser import parse
from flowc.project.spans import point
from flowc.runtime.testing.testrun import Options, compare, run_tests
from flowc_cli import flowc
from hypothesis import given, settings
from hypothesis import strategies as st
from pg_server import PgDatabase

SPEC = "specs/green_taxi.flow"

PIPELINE = """\
pipeline taxi {
  params { run_date date = "2020-10-01" }
}

source trips {
  from = csv("data/trips.csv", header = true)
  columns { id int  day date  amount decimal(10, 2)  kind varchar }
}

transform big_trips {
  sql = \"\"\"
    SELECT id, day, amount FROM trips WHERE amount > 100 AND day >= :run_date
  \"\"\"
  expect { check("amount < 1000") }
}

transform labelled {
  python = "blocks/label.py:label"
  inputs = [big_trips]
  columns { id int  label varchar }
}
"""

LABEL_PY = """\
import pandas as pd


def label(big_trips: pd.DataFrame) -> pd.DataFrame:
    if (big_trips["id"] < 0).any():
        raise ValueError("negative id")
    return pd.DataFrame({"id": big_trips["id"], "label": "big"})
"""

GOOD_TESTS = """
test keeps_big_trips {
  node   = big_trips
  params = { run_date = "2020-10-02" }
  given {
    trips = rows(
      [id, day,          amount, kind],
      [1,  "2020-10-02", 150.5,  "a"],
      [2,  "2020-10-02", 99.99,  "b"],
      [3,  "2020-10-01", 500,    "c"],
      [4,  "2020-10-03", 2000,   null],
    )
  }
  expected = rows([id, amount], [1, 150.5], [4, 2000])
}

test labels_every_row {
  node     = labelled
  given    { big_trips = rows([id], [7], [8]) }
  expected = rows([label, id], ["big", 8], ["big", 7])
}
"""


def project(folder: Path, tests: str = GOOD_TESTS, toml: str = "") -> Path:
    """A project whose spec is the pipeline above and `tests`."""
    root = folder / "taxi"
    (root / "specs").mkdir(parents=True)
    (root / "blocks").mkdir()
    (root / "flow.toml").write_text('[project]\nname = "taxi"\n' + toml, encoding="utf-8")
    (root / "blocks" / "label.py").write_text(LABEL_PY, encoding="utf-8")
    (root / "specs" / "taxi.flow").write_text(PIPELINE + tests, encoding="utf-8")
    return root


def green_taxi(folder: Path) -> Path:
    root = folder / "green_taxi"
    shutil.copytree(GREEN_TAXI, root, ignore=shutil.ignore_patterns(".flowc", "data", "out"))
    return root


def analysed(root: Path) -> tuple[ir.Spec, Diagnostics]:
    diagnostics = Diagnostics()
    path = root / "specs" / "taxi.flow"
    scope = load_project(root, None, {}).scope
    spec = analyze(path.read_text(encoding="utf-8"), str(path), scope, diagnostics).spec
    return spec, diagnostics


# --- the language -----------------------------------------------------------------------------


def test_a_test_block_binds_to_a_unit_test(tmp_path: Path) -> None:
    spec, diagnostics = analysed(project(tmp_path))
    assert not list(diagnostics)
    assert [n.name for n in spec.nodes] == ["trips", "big_trips", "labelled"]
    first, second = spec.tests
    assert (first.name, first.node and first.node.dotted) == ("keeps_big_trips", "big_trips")
    [given] = first.given
    assert given.node == "trips" and given.columns == ("id", "day", "amount", "kind")
    assert [[getattr(v, "value", None) for v in row] for row in given.rows][3] == [
        4,
        "2020-10-03",
        2000,
        None,
    ]
    assert first.expected is not None and first.expected.columns == ("id", "amount")
    assert [(e.key, getattr(e.value, "value", None)) for e in first.params] == [
        ("run_date", "2020-10-02")
    ]
    assert second.expected is not None and len(second.expected.rows) == 2


def test_the_parser_resynchronises_at_test_blocks() -> None:
    text = (
        PIPELINE + "transform broken {\n  sql = = 1\n}\n" + GOOD_TESTS + "test x {\n  node = =\n}\n"
    )
    document, syntax = parse(text, "t.flow")
    assert [d.code for d in syntax] == ["F0101", "F0101"]
    assert [(b.kind, b.name) for b in document.unparsed] == [("transform", "broken"), ("test", "x")]
    assert [b.name for b in document.blocks if b.kind == "test"] == [
        "keeps_big_trips",
        "labels_every_row",
    ]


def test_the_example_checks_clean_with_its_tests(tmp_path: Path) -> None:
    done = flowc("check", ".", "--profile", "all", cwd=green_taxi(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no problems found" in done.stdout


# --- running ----------------------------------------------------------------------------------


def test_the_example_tests_pass(tmp_path: Path) -> None:
    root = green_taxi(tmp_path)
    done = flowc("test", ".", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 tests: 3 passed, 0 failed, 0 errors" in done.stdout
    for name in ("clean_trips_", "snake_trips_", "daily_stats_"):
        assert f"PASS {SPEC}::{name}" in done.stdout


def test_the_example_tests_pass_on_postgres(tmp_path: Path, pg: PgDatabase) -> None:
    done = flowc(
        "test", ".", "--profile", "pg", "--format", "json", cwd=green_taxi(tmp_path), env=pg.env()
    )
    assert done.returncode == 0, done.stdout + done.stderr
    engines = {t["test"].split("_")[0]: t["engine"] for t in json.loads(done.stdout)["tests"]}
    assert engines == {
        "clean": "postgres (profile `pg`)",
        "snake": "duckdb (in memory)",
        "daily": "postgres (profile `pg`)",
    }


def test_a_broken_expectation_shows_the_row_diff(tmp_path: Path) -> None:
    root = green_taxi(tmp_path)
    spec = root / SPEC
    text = spec.read_text(encoding="utf-8")
    broken = text.replace(
        '[1,        "2020-10-03",     4.0],', '[1,        "2020-10-04",     4.0],'
    )
    broken = broken.replace('["2020-10-01",     1,     7.50,', '["2020-10-01",     2,     7.50,')
    assert broken.count("2020-10-04") == text.count("2020-10-04") + 1
    spec.write_text(broken, encoding="utf-8")
    done = flowc("test", SPEC, cwd=root)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    head = f"FAIL {SPEC}::clean_trips_drops_empty_and_early_trips (clean_trips, "
    assert any(line.startswith(head) for line in lines), done.stdout
    assert "  expected 2 row(s), got 2: 1 changed" in lines
    assert (
        "    ~ [1, 2020-10-04, 4.00]  lpep_pickup_date: expected 2020-10-04, got 2020-10-03"
    ) in lines
    assert "    ~ [2020-10-01, 2, 7.50, 2.0]  trips: expected 2, got 1" in lines
    assert "3 tests: 1 passed, 2 failed, 0 errors" in done.stdout


def test_missing_unexpected_and_changed_rows() -> None:
    actual = pa.table({"id": [1, 2, 3, 3], "name": ["a", "b", "c", "c"]})
    fixture = _fixture(["id", "name"], [[1, "a"], [2, "x"], [3, "c"], [5, "e"]])
    diff = compare(actual, fixture)
    assert diff.missing == [(5, "e")]
    assert diff.unexpected == [(3, "c")]  # the second of two equal rows
    assert [(c.expected, c.actual, c.cells) for c in diff.changed] == [
        ((2, "x"), (2, "b"), ["name"])
    ]


def test_rows_compare_in_order_only_when_asked() -> None:
    actual = pa.table({"id": [2, 1]})
    fixture = _fixture(["id"], [[1], [2]])
    assert compare(actual, fixture).empty
    diff = compare(actual, fixture, ordered=True)
    assert [(c.expected, c.actual) for c in diff.changed] == [((1,), (2,)), ((2,), (1,))]


def test_expected_values_take_the_result_types() -> None:
    actual = pa.table(
        {"amount": pa.array([Decimal("1.5")], pa.decimal128(10, 2)), "ratio": [2 / 3], "day": ["x"]}
    )
    fixture = _fixture(["amount", "ratio", "day"], [[1.50, 0.6666666667, "x"]])
    assert compare(actual, fixture).empty
    assert not compare(actual, _fixture(["amount", "ratio", "day"], [[1.5, 0.67, "x"]])).empty


def _fixture(columns: list[str], rows: Sequence[Sequence[object]]) -> ir.Fixture:
    span = _SPAN
    return ir.Fixture(
        node="n",
        span=span,
        name_span=span,
        columns=tuple(columns),
        column_spans=tuple(span for _ in columns),
        rows=tuple(tuple(_value(v) for v in row) for row in rows),
    )


def _value(value: object) -> ir.Value:
    if isinstance(value, str):
        return ir.Str(value=value, span=_SPAN)
    if isinstance(value, int | float):
        return ir.Num(value=value, text=repr(value), span=_SPAN)
    return ir.Null(span=_SPAN)


_SPAN = point("t.flow")


def test_a_node_whose_columns_are_unknown_takes_the_fixture_columns(tmp_path: Path) -> None:
    tests = """
source zones {
  from = table(local, "main.zones")
}

transform named {
  sql = "SELECT id, upper(name) AS name FROM zones WHERE active"
}

test upper_names {
  node     = named
  given    { zones = rows([id, name, active], [1, "a", true], [2, "b", false], [3, null, true]) }
  expected = rows([name, id], ["A", 1], [null, 3])
}
"""
    report = run_tests([project(tmp_path, tests)], Options(pattern="upper"))
    assert [(o.status, o.message) for o in report.outcomes] == [("passed", "")]


def test_list_results_compare_with_list_literals(tmp_path: Path) -> None:
    tests = """
transform pairs {
  sql = "SELECT [id, id * 2] AS pair, {'k': id} AS s FROM big_trips"
}

test pairs_of_ids {
  node     = pairs
  given    { big_trips = rows([id], [1], [2]) }
  expected = rows([pair], ["[2, 4]"], ["[1, 2]"])
}
"""
    report = run_tests([project(tmp_path, tests)], Options(pattern="pairs"))
    assert [(o.status, o.message) for o in report.outcomes] == [("passed", "")]


@settings(max_examples=50)
@given(
    st.lists(st.tuples(st.integers(-3, 3), st.sampled_from(["a", "b", None])), max_size=8),
    st.data(),
)
def test_a_result_matches_its_own_rows_in_any_order_and_not_a_sample(
    rows: list[tuple[int, str | None]], data: st.DataObject
) -> None:
    actual = pa.table({"id": [r[0] for r in rows], "name": [r[1] for r in rows]})
    shuffled = data.draw(st.permutations(rows))
    assert compare(actual, _fixture(["id", "name"], [list(r) for r in shuffled])).empty
    if rows:
        dropped = data.draw(st.integers(0, len(rows) - 1))
        kept = [list(r) for i, r in enumerate(shuffled) if i != dropped]
        diff = compare(actual, _fixture(["id", "name"], kept))
        assert (len(diff.unexpected), diff.missing, diff.changed) == (1, [], [])
        assert diff.unexpected[0] == shuffled[dropped]


def test_sql_and_python_tests_run_and_filter(tmp_path: Path) -> None:
    root = project(tmp_path)
    report = run_tests([root], Options())
    assert [(o.test, o.status) for o in report.outcomes] == [
        ("keeps_big_trips", "passed"),
        ("labels_every_row", "passed"),
    ], [o.message for o in report.outcomes]
    assert [o.engine for o in report.outcomes] == ["duckdb (in memory)"] * 2
    only = run_tests([root], Options(pattern="labels"))
    assert [o.test for o in only.outcomes] == ["labels_every_row"]
    globbed = run_tests([root], Options(pattern="keeps_*"))
    assert [o.test for o in globbed.outcomes] == ["keeps_big_trips"]


def test_a_failing_python_block_is_an_error_with_its_message(tmp_path: Path) -> None:
    tests = """
test negative {
  node     = labelled
  given    { big_trips = rows([id], [-1]) }
  expected = rows([id], [-1])
}
"""
    done = flowc("test", cwd=project(tmp_path, tests))
    assert done.returncode == 1
    assert "ERROR specs/taxi.flow::negative" in done.stdout
    assert "ValueError: negative id" in done.stdout
    assert "Traceback" not in done.stderr


def test_expect_checks_run_on_the_result_with_expect(tmp_path: Path) -> None:
    root = project(tmp_path)
    plain = run_tests([root], Options(pattern="keeps"))
    assert plain.ok  # the row with amount 2000 breaks `check("amount < 1000")`
    checked = run_tests([root], Options(pattern="keeps", expect=True))
    [outcome] = checked.outcomes
    assert outcome.status == "failed"
    assert outcome.message == 'expect check("amount < 1000") failed: 1 row(s)'


BUILT = """
pipeline checked {}

source raw {
  from = table(local, "main.raw")
  columns { id int  amount double }
  expect {
    not_null(id)
    check("amount > 0", on_fail = warn)
  }
}
"""


def test_expect_runs_the_checks_on_the_built_data(tmp_path: Path) -> None:
    root = tmp_path / "checked"
    (root / "specs").mkdir(parents=True)
    (root / "flow.toml").write_text('[project]\nname = "checked"\n', encoding="utf-8")
    (root / "specs" / "checked.flow").write_text(BUILT, encoding="utf-8")
    never_built = flowc("test", "--expect", cwd=root)
    assert never_built.returncode == 1
    assert "has no built data yet (.flowc/local.duckdb does not exist)" in never_built.stdout
    database = root / ".flowc" / "local.duckdb"
    database.parent.mkdir()
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE TABLE raw AS SELECT * FROM (VALUES (1, 2.5), (2, -1.0)) t(id, amount)")
    done = flowc("test", "--expect", "--format", "json", cwd=root)
    assert done.returncode == 0, done.stdout
    found = {t["test"]: t for t in json.loads(done.stdout)["tests"]}
    assert {n: t["status"] for n, t in found.items()} == {
        "expect:raw.not_null(id)": "passed",
        'expect:raw.check("amount > 0")': "passed",
    }
    assert found['expect:raw.check("amount > 0")']["notes"] == [
        'warning: expect check("amount > 0", on_fail = warn) failed: 1 row(s); sample:\n'
        "  id=2, amount=-1.0"
    ]
    not_null = found["expect:raw.not_null(id)"]
    assert (not_null["line"], not_null["col"]) == (8, 5)
    with duckdb.connect(str(database)) as con:
        con.execute("INSERT INTO raw VALUES (NULL, 3.0)")
    failed = flowc("test", "--expect", "-k", "not_null", cwd=root)
    assert failed.returncode == 1
    assert "FAIL specs/checked.flow::expect:raw.not_null(id)" in failed.stdout
    assert "expect not_null(id) failed: 1 row(s)" in failed.stdout
    assert "1 test: 0 passed, 1 failed" in failed.stdout
    assert flowc("test", cwd=root).returncode == 0  # without --expect: no tests, no checks


def test_a_postgres_target_says_the_sql_ran_on_duckdb(tmp_path: Path) -> None:
    toml = '[profiles.dev.local]\ntype = "postgres"\nhost = "h"\ndbname = "d"\nuser = "u"\n'
    toml = '[project]\nname = "taxi"\ndefault_profile = "dev"\n' + toml
    root = project(tmp_path)
    (root / "flow.toml").write_text(toml, encoding="utf-8")
    report = run_tests([root], Options(pattern="keeps"))
    [outcome] = report.outcomes
    assert outcome.status == "passed"
    assert outcome.notes == [
        "ran the SQL as compiled for DuckDB (in memory); `local` is postgres in profile `dev`: "
        "`flowc test --profile dev` runs it there"
    ]


def test_postgres_sql_runs_translated_for_duckdb(tmp_path: Path) -> None:
    root = tmp_path / "pgsql"
    (root / "specs").mkdir(parents=True)
    (root / "flow.toml").write_text('[project]\nname = "pgsql"\n', encoding="utf-8")
    spec = """
pipeline p { dialect = "postgres" }
source t {
  from = csv("data/t.csv", header = true)
  columns { id int  name varchar }
}
transform s {
  sql = "SELECT id, name || '!' AS shout, string_agg(name, ',') OVER (ORDER BY id) AS names FROM t"
}
test shouts {
  node     = s
  given    { t = rows([id, name], [1, "a"], [2, "b"]) }
  expected = rows([id, shout, names], [1, "a!", "a"], [2, "b!", "a,b"])
}
"""
    (root / "specs" / "p.flow").write_text(spec, encoding="utf-8")
    [outcome] = run_tests([root], Options()).outcomes
    assert (outcome.status, outcome.message) == ("passed", "")
    assert outcome.notes == ["ran the SQL, written in postgres SQL, as compiled for DuckDB"]


def test_profile_runs_sql_on_postgres_and_leaves_nothing(tmp_path: Path, pg: PgDatabase) -> None:
    toml = (
        '[profiles.pg.local]\ntype = "postgres"\nhost = "${POSTGRES_HOST}"\n'
        'port = "${POSTGRES_PORT}"\ndbname = "${POSTGRES_DBNAME}"\nuser = "${POSTGRES_USER}"\n'
        'password = "${POSTGRES_PASSWORD:-}"\n'
    )
    root = project(tmp_path, toml=toml)
    done = flowc("test", "--profile", "pg", "--format", "json", cwd=root, env=pg.env())
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    engines = {t["test"]: t["engine"] for t in document["tests"]}
    assert engines == {
        "keeps_big_trips": "postgres (profile `pg`)",
        "labels_every_row": "duckdb (in memory)",  # Python blocks run in flowc's process
    }
    checked = flowc("test", "--profile", "pg", "--expect", "-k", "keeps", cwd=root, env=pg.env())
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert 'expect check("amount < 1000") failed: 1 row(s)' in checked.stdout
    left = pg.query("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, '_flowc_test_')")
    assert (
        left == [] and pg.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == []
    )


# --- output formats ---------------------------------------------------------------------------

FAILING = GOOD_TESTS.replace('["big", 8]', '["small", 8]')


def test_json_output(tmp_path: Path) -> None:
    done = flowc("test", "--format", "json", cwd=project(tmp_path, FAILING))
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert document["summary"] == {
        "files": 1,
        "tests": 2,
        "passed": 1,
        "failed": 1,
        "errors": 0,
        "seconds": document["summary"]["seconds"],
    }
    failed = document["tests"][1]
    assert set(failed) == {
        "file", "test", "node", "line", "col", "status", "seconds", "engine", "message", "notes",
        "diff",
    }  # fmt: skip
    assert (failed["file"], failed["test"], failed["status"]) == (
        "specs/taxi.flow",
        "labels_every_row",
        "failed",
    )
    assert failed["diff"]["changed"] == [
        {"expected": ["small", 8], "actual": ["big", 8], "columns": ["label"]}
    ]
    assert document["tests"][0]["diff"] is None and document["diagnostics"] == []


def test_github_output(tmp_path: Path) -> None:
    done = flowc("test", "--format", "github", cwd=project(tmp_path, FAILING))
    assert done.returncode == 1
    [annotation] = [line for line in done.stdout.splitlines() if line.startswith("::")]
    line = (PIPELINE + FAILING).splitlines().index("test labels_every_row {") + 1
    assert annotation.startswith(
        f"::error file=specs/taxi.flow,line={line},col=6,title=flowc test labels_every_row failed::"
    )
    assert '%0A~ ["small", 8]  label: expected "small", got "big"' in annotation


def test_junit_output(tmp_path: Path) -> None:
    done = flowc("test", "--format", "junit", cwd=project(tmp_path, FAILING))
    assert done.returncode == 1
    suites = ElementTree.fromstring(done.stdout)
    assert (suites.tag, suites.get("tests"), suites.get("failures")) == ("testsuites", "2", "1")
    [suite] = suites
    cases = {case.get("name"): case for case in suite}
    assert set(cases) == {"keeps_big_trips", "labels_every_row"}
    assert list(cases["keeps_big_trips"]) == []
    [failure] = cases["labels_every_row"]
    assert failure.tag == "failure"
    assert failure.get("message") == "expected 2 row(s), got 2: 1 changed"
    assert '~ ["small", 8]  label: expected "small", got "big"' in (failure.text or "")


def test_a_spec_with_errors_runs_no_test_and_fails(tmp_path: Path) -> None:
    broken = GOOD_TESTS.replace("node   = big_trips", "node   = big_trip")
    root = project(tmp_path, broken)
    done = flowc("test", cwd=root)
    assert done.returncode == 1
    assert "error[F0801]: unknown node `big_trip` in `test keeps_big_trips`" in done.stdout
    assert "0 tests: 0 passed" in done.stdout
    junit = ElementTree.fromstring(flowc("test", "--format", "junit", cwd=root).stdout)
    [case] = junit.iter("testcase")
    assert case.get("name") == "flowc check" and case[0].tag == "error"


@pytest.mark.parametrize("output", ["text", "json", "github", "junit"])
def test_every_format_exits_0_when_all_pass(tmp_path: Path, output: str) -> None:
    done = flowc("test", "--format", output, cwd=project(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert flowc("test", "nowhere", cwd=tmp_path).returncode == 2
    assert flowc("test", "--profile", "all", cwd=project(tmp_path)).returncode == 2


def test_bigquery_profile_is_a_usage_error(tmp_path: Path) -> None:
    toml = '[profiles.bq.local]\ntype = "bigquery"\nproject = "p"\ndataset = "d"\n'
    done = flowc("test", "--profile", "bq", "-k", "keeps", cwd=project(tmp_path, toml=toml))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "tests run on DuckDB and Postgres; `local` is bigquery" in done.stderr
