"""The SQL pass: parsing, positions in the .flow file, edges, parameters
(compiler/analysis/sql.py)."""

from __future__ import annotations

import gc
import textwrap
from pathlib import Path

import pytest
from flowc.compiler import ir
from flowc.compiler.analysis import bind as names
from flowc.compiler.analysis import gc_pause, identifiers, sql, sql_spans
from flowc.compiler.diagnostics import Diagnostic, Diagnostics
from flowc.compiler.syntax.parser import parse
from flowc.project.spans import point

PIPELINE = """\
pipeline p {
  dialect = "DIALECT"
  params {
    run_date date = "2020-01-01"
  }
}
source trips {
  from = csv("trips.csv")
  columns { VendorID int  fare double  pickup timestamp }
}
"""  # 10 lines: a test's text starts on line 11 (a blank line first, when it is indented)


def analyze(
    body: str, tmp_path: Path, dialect: str = "duckdb"
) -> tuple[ir.Spec, sql.SqlTrees, list[Diagnostic]]:
    text = PIPELINE.replace("DIALECT", dialect) + textwrap.dedent(body)
    document, diagnostics = parse(text, "p.flow")
    assert not list(diagnostics), list(diagnostics)
    found = Diagnostics()
    scope = names.Scope(root=tmp_path, connections={"dev": frozenset({"local", "warehouse"})})
    spec = names.bind(document, scope, found)
    spec, trees = sql.analyze_sql(spec, found, dialect=dialect)
    return spec, trees, [d for d in found.sorted() if d.code.startswith(("F03", "F05"))]


def where(diagnostic: Diagnostic) -> str:
    span = diagnostic.span
    return f"{diagnostic.code} {span.line}:{span.col}-{span.end_line}:{span.end_col}"


def node(spec: ir.Spec, name: str) -> ir.TransformNode:
    found = spec.node(name)
    assert isinstance(found, ir.TransformNode)
    return found


# --- positions ------------------------------------------------------------------------------


def test_syntax_error_on_the_third_line_of_an_indented_raw_string(tmp_path: Path) -> None:
    _, trees, diagnostics = analyze(
        '''
        transform t {
          sql = """
            SELECT VendorID,
                   fare
            FROM trips WHERE fare = = 1
          """
        }
        ''',
        tmp_path,
    )
    # line 16 is `    FROM trips WHERE fare = = 1`: the second `=` is in column 29
    assert [where(d) for d in diagnostics] == ["F0304 16:29-16:30"]
    assert diagnostics[0].message == "SQL syntax error: incomplete expression at `=`"
    assert trees == {}


def test_syntax_error_after_escapes_in_a_one_line_string(tmp_path: Path) -> None:
    _, _, diagnostics = analyze(
        """
        transform t {
          sql = "SELECT \\"fare\\" AS f FRM trips"
        }
        """,
        tmp_path,
    )
    # `  sql = "SELECT \"fare\" AS f FRM trips"`: `FRM` starts in column 31 of the file,
    # though it is at offset 20 of the SQL value (each `\"` is two characters in the file).
    assert [where(d) for d in diagnostics] == ["F0304 13:31-13:34"]
    assert "unexpected `FRM`" in diagnostics[0].message


def test_unterminated_string_points_at_its_quote(tmp_path: Path) -> None:
    _, _, diagnostics = analyze(
        '''
        transform t {
          sql = """
            SELECT 'abc
            FROM trips
          """
        }
        ''',
        tmp_path,
    )
    assert [where(d) for d in diagnostics] == ["F0304 14:12-14:13"]
    assert "missing closing `'`" in diagnostics[0].message


def test_sql_span_maps_offsets_through_raw_string_segments(tmp_path: Path) -> None:
    spec, _, _ = analyze(
        '''
        transform t {
          sql = """
              SELECT 1 AS one
                FROM trips
          """
        }
        ''',
        tmp_path,
    )
    body = node(spec, "t").sql
    assert body is not None
    assert body.text == "SELECT 1 AS one\n  FROM trips\n"
    start = body.text.index("trips")
    span = sql_spans.sql_span(body, start, start + len("trips"))
    assert (span.line, span.col, span.end_line, span.end_col) == (15, 14, 15, 19)
    first = sql_spans.sql_span(body, 0, 6)
    assert (first.line, first.col, first.end_col) == (14, 7, 13)


def test_sql_span_maps_offsets_after_escapes() -> None:
    text = 'sql = "a\\tb\\"c"'
    document, _ = parse(f"pipeline p {{\n  {text}\n}}\n", "p.flow")
    attribute = document.blocks[0].entries[0]
    assert isinstance(attribute, ir.Attribute) and isinstance(attribute.value, ir.Str)
    value = attribute.value
    body = ir.SqlBody(text=value.value, file="p.flow", segments=value.segments, span=value.span)
    assert body.text == 'a\tb"c'
    columns = [sql_spans.sql_span(body, i, i + 1).col for i in range(len(body.text))]
    # `  sql = "a\tb\"c"`: a=10, \t=11-12, b=13, \"=14-15, c=16
    assert columns == [10, 11, 13, 14, 16]


def test_sql_span_of_a_body_without_segments_is_its_span() -> None:
    body = ir.SqlBody(text="SELECT 1", file="f", segments=(), span=point("f", 3, 4))
    assert sql_spans.sql_span(body, 2, 5) == point("f", 3, 4)


def test_sql_from_a_file_is_positioned_in_that_file(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "q.sql").write_text("SELECT fare\nFROM trips\nWHERE fare >\n")
    _, _, diagnostics = analyze(
        """
        transform t {
          sql = file("sql/q.sql")
        }
        """,
        tmp_path,
    )
    assert len(diagnostics) == 1
    span = diagnostics[0].span
    assert span.file.endswith("q.sql")
    assert (diagnostics[0].code, span.line, span.col) == ("F0304", 3, 12)


# --- one query ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "got", "at"),
    [
        ("INSERT INTO x SELECT * FROM trips", "an INSERT statement", "12:10-12:16"),
        ("CREATE TABLE x AS SELECT 1", "a CREATE statement", "12:10-12:16"),
        ("SELECT 1; SELECT 2", "2 statements", "12:20-12:28"),
        ("", "empty", "12:9-12:11"),
        ("  -- nothing but a comment", "empty", "12:9-12:37"),
    ],
)
def test_a_body_is_exactly_one_query(tmp_path: Path, statement: str, got: str, at: str) -> None:
    _, trees, diagnostics = analyze(f'transform t {{\n  sql = "{statement}"\n}}\n', tmp_path)
    assert [where(d) for d in diagnostics] == [f"F0305 {at}"]
    assert diagnostics[0].message.endswith(f"this is {got}")
    assert trees == {}


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM trips UNION ALL SELECT * FROM trips",
        "WITH x AS (SELECT * FROM trips) SELECT * FROM x",
        "(SELECT fare FROM trips)",
        "SELECT fare FROM trips;",
        "FROM trips SELECT fare",
    ],
)
def test_queries_are_accepted(tmp_path: Path, query: str) -> None:
    spec, trees, diagnostics = analyze(f'transform t {{\n  sql = "{query}"\n}}\n', tmp_path)
    assert diagnostics == []
    assert list(trees) == ["t"]
    assert [e.upstream for e in node(spec, "t").edges] == ["trips"]


# --- edges ----------------------------------------------------------------------------------


def test_ctes_subquery_aliases_and_table_functions_are_not_edges(tmp_path: Path) -> None:
    spec, _, diagnostics = analyze(
        '''
        source zones {
          from = csv("zones.csv")
          columns { zone_id int }
        }
        transform t {
          sql = """
            WITH Recent AS (SELECT * FROM trips), z AS (SELECT * FROM zones)
            SELECT *
            FROM recent
            JOIN (SELECT 1 AS one) AS sub ON TRUE
            JOIN z ON TRUE
            JOIN trips ON TRUE,
            generate_series(1, 3) AS g(i),
            read_csv('data/extra.csv') AS extra,
            unnest([1, 2]) AS u(v),
            'data/*.csv' AS files
          """
        }
        ''',
        tmp_path,
    )
    assert diagnostics == []
    edges = node(spec, "t").edges
    assert [e.upstream for e in edges] == ["trips", "zones"]
    # the first mention: `trips` in the first CTE (line 18, column 35)
    assert (edges[0].span.line, edges[0].span.col, edges[0].span.end_col) == (18, 35, 40)


@pytest.mark.parametrize(
    ("query", "edges"),
    [
        # a CTE does not see itself: inside it, `trips` is the node (the dbt habit)
        ("WITH trips AS (SELECT * FROM trips) SELECT * FROM trips", ["trips"]),
        # nor the CTEs after it
        ("WITH a AS (SELECT * FROM b), b AS (SELECT 1 AS x) SELECT * FROM a", ["b"]),
        # but the ones before it, and the query's body sees them all
        ("WITH b AS (SELECT 1 AS x), a AS (SELECT * FROM b) SELECT * FROM a, b", []),
        # RECURSIVE: a CTE sees itself
        (
            "WITH RECURSIVE trips AS (SELECT 1 AS n UNION ALL SELECT n FROM trips) "
            "SELECT * FROM trips",
            [],
        ),
        # a nested WITH shadows only inside its subquery
        (
            "SELECT * FROM (WITH trips AS (SELECT 1 AS n) SELECT * FROM trips) AS s, trips",
            ["trips"],
        ),
    ],
)
def test_a_cte_is_an_edge_where_the_engine_does_not_see_it(
    tmp_path: Path, query: str, edges: list[str]
) -> None:
    spec, _, diagnostics = analyze(
        f'transform b {{\n  sql = "SELECT 1 AS x"\n}}\ntransform t {{\n  sql = "{query}"\n}}\n',
        tmp_path,
    )
    assert [d.code for d in diagnostics if d.severity == "error"] == []
    assert [e.upstream for e in node(spec, "t").edges] == edges


def test_table_names_follow_the_dialect_case_rules(tmp_path: Path) -> None:
    query = 'SELECT * FROM TRIPS JOIN \\"Trips\\" ON TRUE'
    spec, _, diagnostics = analyze(f'transform t {{\n  sql = "{query}"\n}}\n', tmp_path)
    assert diagnostics == []
    assert [e.upstream for e in node(spec, "t").edges] == ["trips"]
    _, _, diagnostics = analyze(f'transform t {{\n  sql = "{query}"\n}}\n', tmp_path, "postgres")
    assert [d.message for d in diagnostics] == [
        "unknown table `Trips`: no node or `table(...)` source has that name"
    ]
    _, _, diagnostics = analyze(
        'transform t {\n  sql = "SELECT * FROM TRIPS"\n}\n', tmp_path, "bigquery"
    )
    assert [(d.code, d.hint) for d in diagnostics] == [("F0303", "did you mean `trips`?")]


def test_unknown_external_and_sink_tables(tmp_path: Path) -> None:
    _, _, diagnostics = analyze(
        '''
        transform t {
          sql = """
            SELECT 1 FROM trps, public.zones, out, trips
          """
        }
        sink out {
          input = trips
          to = parquet("out/")
        }
        ''',
        tmp_path,
    )
    assert [where(d) for d in diagnostics] == [
        "F0303 14:19-14:23",
        "F0303 14:25-14:37",
        "F0309 14:39-14:42",
    ]
    unknown, external, sink = diagnostics
    assert unknown.hint == "did you mean `trips`?"
    assert external.message.startswith("unknown table `public.zones`")
    assert external.hint is not None and 'table(connection, "public.zones")' in external.hint
    assert sink.message == "`out` is a sink; SQL can read sources and transforms only"


def test_edges_are_deduplicated_in_order_of_first_mention(tmp_path: Path) -> None:
    spec, _, _ = analyze(
        """
        transform a {
          sql = "SELECT * FROM trips"
        }
        transform b {
          sql = "SELECT * FROM a JOIN trips ON TRUE JOIN a AS a2 ON TRUE"
        }
        """,
        tmp_path,
    )
    assert [e.upstream for e in node(spec, "b").edges] == ["a", "trips"]


# --- parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "bigquery"])
def test_colon_parameters_in_every_dialect(tmp_path: Path, dialect: str) -> None:
    spec, _, diagnostics = analyze(
        '''
        transform t {
          sql = """
            SELECT fare FROM trips
            WHERE pickup >= :run_date AND fare > :min_fare AND pickup < :run_date
          """
        }
        ''',
        tmp_path,
        dialect,
    )
    parameters = node(spec, "t").parameters
    assert [p.parts for p in parameters] == [("run_date",), ("min_fare",)]
    assert (parameters[0].span.line, parameters[0].span.col, parameters[0].span.end_col) == (
        15,
        21,
        30,
    )
    assert [where(d) for d in diagnostics] == ["F0501 15:42-15:51"]
    assert diagnostics[0].message.startswith("parameter `:min_fare` is not declared")


def test_at_parameters_in_bigquery(tmp_path: Path) -> None:
    query = "SELECT fare FROM trips WHERE pickup >= @run_date AND fare > @rundate"
    spec, _, diagnostics = analyze(f'transform t {{\n  sql = "{query}"\n}}\n', tmp_path, "bigquery")
    assert [p.parts for p in node(spec, "t").parameters] == [("run_date",), ("rundate",)]
    assert [(d.code, d.hint) for d in diagnostics] == [("F0501", "did you mean `run_date`?")]


def test_colons_that_are_not_parameters(tmp_path: Path) -> None:
    query = "SELECT fare::int AS f, [1, 2, 3][1:2] AS s, ':x' AS t FROM trips -- :y"
    spec, _, diagnostics = analyze(f'transform t {{\n  sql = "{query}"\n}}\n', tmp_path)
    assert diagnostics == []
    assert node(spec, "t").parameters == ()


# --- identifiers ----------------------------------------------------------------------------


def test_identifier_keys_per_dialect() -> None:
    key = identifiers.identifier_key
    assert key("VendorID", quoted=False, dialect="duckdb") == "vendorid"
    assert key("VendorID", quoted=True, dialect="duckdb") == "vendorid"
    assert key("VendorID", quoted=False, dialect="postgres") == "vendorid"
    assert key("VendorID", quoted=True, dialect="postgres") == "VendorID"
    assert key("VendorID", quoted=True, dialect="bigquery") == "vendorid"
    assert key("Trips", quoted=False, dialect="bigquery", table=True) == "Trips"
    assert identifiers.declared_key("VendorID", "postgres") == "vendorid"


def test_the_collector_is_restored_after_a_pass() -> None:
    assert gc.isenabled()
    with gc_pause.paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        with gc_pause.paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
