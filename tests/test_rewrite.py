"""The dialect rewrites (compiler/codegen/rewrites/), in process.

Most rewrites write DuckDB's meaning out in plain SQL that DuckDB itself also runs, so their
arithmetic is checked here against DuckDB's own functions over many values (hypothesis):
the rewritten tree, generated back as DuckDB SQL, must give what the original gives. The
engines themselves are compared in tests/differential/. Then: refusals and their positions,
the name check's limits, and that the types the rewrites need flow through the planner.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest
import sqlglot
from flowc.compiler.codegen.generate import Renderer
from flowc.compiler.codegen.rewrites.rewrite import rewrite
from flowc.compiler.driver.compile import compile_spec
from flowc.compiler.plan import SqlStep
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

SCHEMA = {"t": [("x", "double"), ("y", "double"), ("i", "int"), ("s", "varchar")]}
CON = duckdb.connect()


def rewritten(sql: str, target: str) -> str:
    """`sql` rewritten for `target`, written back as DuckDB SQL."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    assert isinstance(tree, exp.Query)
    assert rewrite(tree, "duckdb", target, SCHEMA) == []
    return tree.sql(dialect="duckdb")


def on_duckdb(sql: str, *values: object) -> object:
    """The first column of `sql` over a one-row `t` of `values` (x, y, i, s)."""
    row = [*values, *([None] * (4 - len(values)))]
    found = CON.execute(
        f"WITH t AS (SELECT $1::DOUBLE AS x, $2::DOUBLE AS y, $3::INT AS i, $4::VARCHAR AS s) "
        f"SELECT * FROM ({sql})",
        row,
    ).fetchone()
    assert found is not None
    return found[0]


doubles = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False) | st.sampled_from(
    [0.5, 1.5, 2.5, -2.5, 1.005, 2.675, 0.125, -0.045, 8.345, 1e-9, 0.49999999999999994]
)
halves = st.integers(-(10**6), 10**6).map(lambda n: n / 1000)  # many exact and near halves


@settings(max_examples=60)
@given(st.one_of(doubles, halves), st.integers(-3, 11))
@pytest.mark.parametrize("target", ["postgres", "bigquery"])
def test_round_of_a_double_is_duckdbs(target: str, value: float, digits: int) -> None:
    original = f"SELECT round(x, {digits}) FROM t"
    expected = on_duckdb(original, value)
    found = on_duckdb(rewritten(original, target), value)
    assert isinstance(expected, float) and isinstance(found, float)
    assert found == expected or math.isclose(found, expected, rel_tol=1e-15), (value, digits)


@settings(max_examples=60)
@given(st.one_of(doubles, halves))
def test_round_to_a_whole_number_is_duckdbs(value: float) -> None:
    original = "SELECT round(x) FROM t"
    assert on_duckdb(rewritten(original, "postgres"), value) == on_duckdb(original, value)


nonzero = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).filter(lambda v: abs(v) > 1e-3)


@settings(max_examples=60)
@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), nonzero)
def test_modulo_of_doubles_on_bigquery_is_fmod(value: float, divisor: float) -> None:
    """To within a few units in the last place of the dividend: `x - y * TRUNC(x / y)`
    rounds where C's fmod is exact (a remainder near 0 is all rounding error)."""
    original = "SELECT x % y FROM t"
    expected = on_duckdb(original, value, divisor)
    found = on_duckdb(rewritten(original, "bigquery"), value, divisor)
    assert isinstance(expected, float) and isinstance(found, float)
    assert math.isclose(found, expected, rel_tol=1e-9, abs_tol=4 * math.ulp(value)), (
        value,
        divisor,
    )


maybe = st.none() | st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=60)
@given(maybe, maybe)
@pytest.mark.parametrize("function", ["greatest", "least"])
def test_greatest_and_least_skip_nulls_on_bigquery(
    function: str, left: float | None, right: float | None
) -> None:
    original = f"SELECT {function}(x, y) FROM t"
    expected = on_duckdb(original, left, right)
    assert on_duckdb(rewritten(original, "bigquery"), left, right) == expected


@settings(max_examples=60)
@given(st.none() | st.text(max_size=8), st.none() | st.integers(-1000, 1000))
@pytest.mark.parametrize(
    "call", ["printf('%s=%d!', s, i)", "format('{}-{}', s, i)", "printf('%% %s', s)"]
)
def test_printf_and_format_are_concatenations(call: str, text: str | None, number: int) -> None:
    original = f"SELECT {call} FROM t"
    for target in ("postgres", "bigquery"):
        found = on_duckdb(rewritten(original, target), None, None, number, text)
        assert found == on_duckdb(original, None, None, number, text)


@settings(max_examples=60)
@given(st.none() | st.text(alphabet="abAB.x\n", max_size=6))
@pytest.mark.parametrize("pattern", ["a.*", "[ab]+", "a|b", "x?A", ".*B$"])
def test_a_full_match_is_an_anchored_match(pattern: str, text: str | None) -> None:
    original = f"SELECT regexp_full_match(s, '{pattern}') FROM t"
    expected = on_duckdb(original, None, None, None, text)
    assert on_duckdb(rewritten(original, "bigquery"), None, None, None, text) == expected


@settings(max_examples=60)
@given(st.none() | st.text(alphabet="ab ,", max_size=10), st.integers(1, 4))
def test_split_part_on_bigquery_is_duckdbs(text: str | None, part: int) -> None:
    original = f"SELECT split_part(s, ' ', {part}) FROM t"
    rewritten_sql = rewritten(original, "bigquery").replace("SAFE_OFFSET", "")
    # DuckDB has no SAFE_OFFSET: its list index is 1-based and NULL past the end
    rewritten_sql = rewritten_sql.replace(f"[({part - 1})]", f"[{part}]")
    assert on_duckdb(rewritten_sql, None, None, None, text) == on_duckdb(
        original, None, None, None, text
    )


# --- refusals ---------------------------------------------------------------------------------


def problems(
    sql: str, target: str, schemas: dict[str, list[tuple[str, str]]] | None = None
) -> list[tuple[str, int | None]]:
    renderer = Renderer("duckdb", target, {})
    tree = sqlglot.parse_one(sql, read="duckdb")
    assert isinstance(tree, exp.Query)
    prepared = renderer.prepare(tree, {"t": ("t",)}, "n", schemas=schemas or SCHEMA)
    renderer.query("n", prepared)
    return [(p.detail, p.start) for p in renderer.problems]


def test_an_alias_list_over_a_star_of_unknown_columns_is_refused_at_the_list() -> None:
    sql = "SELECT a FROM (SELECT * FROM t) AS q (a, b)"
    found = problems(sql, "bigquery", {"t": []})
    assert found == [
        (
            "a column-alias list over columns that cannot all be named has no BigQuery equivalent",
            sql.index("a, b"),
        )
    ]
    assert problems(sql, "bigquery") == []  # known columns: rewritten


def test_a_duckdb_function_the_target_lacks_is_refused_once_at_its_call() -> None:
    sql = "SELECT histogram(s) AS h FROM t"
    assert problems(sql, "postgres") == [
        ("`histogram` has no Postgres equivalent", sql.index("histogram"))
    ]


def test_a_function_duckdb_does_not_know_is_a_users_function_and_passes() -> None:
    assert problems("SELECT my_udf(s) AS h FROM t", "bigquery") == []
    assert problems("SELECT my_udf(s) AS h FROM t", "postgres") == []


def test_a_string_that_looks_like_a_call_is_no_call() -> None:
    assert problems("SELECT 'histogram(x)' AS h, s AS \"printf(\" FROM t", "postgres") == []


def test_regexp_replace_of_the_first_match_is_refused_on_bigquery_only() -> None:
    sql = "SELECT regexp_replace(s, 'a', 'b') AS r FROM t"
    assert [d for d, _ in problems(sql, "bigquery")] == [
        "`regexp_replace` of the first match only has no BigQuery equivalent"
    ]
    assert problems(sql, "postgres") == []
    assert problems("SELECT regexp_replace(s, '^a', 'b') AS r FROM t", "bigquery") == []


# --- types through the planner ---------------------------------------------------------------

FLOW = """
pipeline p {
  target  = warehouse
  dialect = "duckdb"
}

source trips {
  from = csv("trips.csv", header = true)
  columns {
    fare      decimal(10, 2)
    distance  int
  }
}

transform per_mile {
  sql = "SELECT CAST(fare AS DOUBLE) / distance AS rate, fare FROM trips"
}

transform rounded {
  sql = "SELECT round(rate, 2) AS rate, round(fare, 1) AS fare FROM per_mile"
}
"""

TOML = """
[project]
name = "p"
default_profile = "pg"

[profiles.pg.warehouse]
type   = "postgres"
host   = "localhost"
dbname = "x"
user   = "u"
"""


def test_types_flow_from_the_queries_a_query_reads(tmp_path: Path) -> None:
    (tmp_path / "flow.toml").write_text(TOML)
    (tmp_path / "p.flow").write_text(FLOW)
    result = compile_spec(tmp_path / "p.flow")
    assert not result.has_errors, result.diagnostics
    step = result.compiled[0].plan.step("rounded")
    assert isinstance(step, SqlStep)
    text = "\n".join(step.sql)
    # the upstream's `rate` is a double: rounded in doubles; `fare` a decimal: ROUND kept
    assert "FLOOR" in text and 'ROUND("fare", 1)' in text.replace("\n", " ")


def test_the_plan_is_the_same_after_a_clean_check(tmp_path: Path) -> None:
    """`flowc compile` after a clean `flowc check` infers only some nodes' columns (the
    check cache vouches for the rest): the rewrites type queries from the trees and the
    declared inputs only, so the plan is byte for byte the one of a compile from scratch."""
    from flowc.compiler import plan as plan_module
    from flowc.compiler.driver.check import check_paths

    spec = FLOW + '\nsink out {\n  input = rounded\n  to    = csv("out.csv")\n}\n'
    plans = []
    for name, checked in (("fresh", False), ("cached", True)):
        root = tmp_path / name
        root.mkdir()
        (root / "flow.toml").write_text(TOML)
        (root / "p.flow").write_text(spec)
        if checked:
            assert not check_paths([root / "p.flow"], profile="pg").diagnostics
        result = compile_spec(root / "p.flow", profile="pg")
        assert not result.has_errors, result.diagnostics
        plans.append(plan_module.to_json(result.compiled[0].plan))
    assert plans[0] == plans[1]
