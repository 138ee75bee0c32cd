"""The schema pass: output columns, column errors, expect checks (compiler/analysis/schema.py)."""

from __future__ import annotations

import gzip
import textwrap
from pathlib import Path

import pytest
from flowc.compiler import ir
from flowc.compiler.analysis import bind as names
from flowc.compiler.analysis import dag, schema, sql, sql_parse
from flowc.compiler.diagnostics import Diagnostic, Diagnostics
from flowc.compiler.syntax.parser import parse
from sqlglot.optimizer.scope import traverse_scope

PIPELINE = """\
pipeline p {
  dialect = "DIALECT"
}
source trips {
  from = csv("trips.csv")
  columns { VendorID int  fare double  zone_id int  pickup timestamp }
}
source zones {
  from = csv("zones.csv")
  columns { zone_id int  name varchar }
}
"""  # 11 lines: a test's text starts on line 12 (a blank line first, when it is indented)


def check(body: str, tmp_path: Path, dialect: str = "duckdb") -> tuple[ir.Spec, list[Diagnostic]]:
    text = PIPELINE.replace("DIALECT", dialect) + textwrap.dedent(body)
    document, diagnostics = parse(text, "p.flow")
    assert not list(diagnostics), list(diagnostics)
    found = Diagnostics()
    scope = names.Scope(root=tmp_path, connections={"dev": frozenset({"local", "warehouse"})})
    spec = names.bind(document, scope, found)
    spec, trees = sql.analyze_sql(spec, found, dialect=dialect)
    order = dag.order(spec, found)
    spec = schema.infer_schemas(spec, trees, found, dialect=dialect, order=order)
    return spec, [d for d in found.sorted() if d.code.startswith("F03")]


def where(diagnostic: Diagnostic) -> str:
    span = diagnostic.span
    return f"{diagnostic.code} {span.line}:{span.col}-{span.end_line}:{span.end_col}"


def output(spec: ir.Spec, name: str) -> list[tuple[str, str]] | None:
    node = spec.node(name)
    assert node is not None
    return None if node.output is None else [(c.name, c.type) for c in node.output]


def transform(name: str, query: str) -> str:
    return f'transform {name} {{\n  sql = """\n{textwrap.indent(query, "    ")}\n  """\n}}\n'


TRIPS = [("VendorID", "int"), ("fare", "double"), ("zone_id", "int"), ("pickup", "timestamp")]


# --- outputs --------------------------------------------------------------------------------


def test_select_star_expands_through_two_transforms(tmp_path: Path) -> None:
    spec, diagnostics = check(
        transform("clean", "SELECT *, CAST(pickup AS DATE) AS day, fare * 2 AS twice FROM trips")
        + transform("again", "SELECT * FROM clean WHERE day IS NOT NULL"),
        tmp_path,
    )
    assert diagnostics == []
    expected = [*TRIPS, ("day", "date"), ("twice", "unknown")]
    assert output(spec, "clean") == expected
    assert output(spec, "again") == expected


def test_declared_case_is_kept_and_matched_without_case_in_duckdb(tmp_path: Path) -> None:
    query = 'SELECT vendorid, VENDORID AS v, t."VendorID" AS w FROM trips AS t'
    spec, diagnostics = check(transform("t", query), tmp_path)
    assert diagnostics == []
    assert output(spec, "t") == [("VendorID", "int"), ("v", "int"), ("w", "int")]


def test_declared_names_are_unquoted_in_postgres(tmp_path: Path) -> None:
    query = 'SELECT VendorID, vendorid AS "Vendor", "VendorID" AS bad FROM trips'
    spec, diagnostics = check(transform("t", query), tmp_path, "postgres")
    assert [where(d) for d in diagnostics] == ["F0301 14:44-14:54"]
    assert diagnostics[0].hint == "did you mean `vendorid`?"
    assert output(spec, "t") == [("vendorid", "int"), ("Vendor", "int"), ("bad", "unknown")]


def test_output_names_and_types(tmp_path: Path) -> None:
    query = "SELECT fare, COUNT(*), zone_id + 1, CAST(fare AS DECIMAL(10, 2)) AS f FROM trips"
    spec, _ = check(transform("t", query), tmp_path)
    assert output(spec, "t") == [
        ("fare", "double"),
        ("_col_1", "bigint"),
        ("_col_2", "unknown"),
        ("f", "decimal(10, 2)"),
    ]


def test_star_modifiers_and_using_joins(tmp_path: Path) -> None:
    spec, diagnostics = check(
        transform("a", "SELECT * EXCLUDE (pickup) RENAME (fare AS amount) FROM trips")
        + transform("b", "SELECT * FROM trips JOIN zones USING (zone_id)")
        + transform("c", "SELECT * FROM trips AS t NATURAL JOIN zones")
        + transform("d", "SELECT zone_id, t.* FROM trips AS t NATURAL JOIN zones"),
        tmp_path,
    )
    assert output(spec, "a") == [("VendorID", "int"), ("amount", "double"), ("zone_id", "int")]
    assert output(spec, "b") == [*TRIPS, ("name", "varchar")]
    assert output(spec, "c") == [*TRIPS, ("name", "varchar")]
    # `t.*` holds `zone_id` too, and DuckDB would output it twice
    assert [(d.code, d.message.split("`")[1]) for d in diagnostics] == [("F0311", "zone_id")]


def test_ctes_subqueries_unions_and_values(tmp_path: Path) -> None:
    query = textwrap.dedent(
        """\
        WITH big(id, amount) AS (SELECT VendorID, fare FROM trips WHERE fare > 10)
        SELECT b.id, s.total, v.label
        FROM big AS b
        JOIN (SELECT zone_id, SUM(fare) AS total FROM trips GROUP BY zone_id) AS s
          ON s.zone_id = b.id
        CROSS JOIN (VALUES (1, 'x')) AS v(k, label)
        UNION ALL
        SELECT zone_id, 0, name FROM zones
        ORDER BY id"""
    )
    spec, diagnostics = check(transform("t", query), tmp_path)
    assert diagnostics == []
    assert output(spec, "t") == [("id", "int"), ("total", "unknown"), ("label", "unknown")]


# --- column errors --------------------------------------------------------------------------


def test_unknown_column_on_the_third_line_with_a_suggestion(tmp_path: Path) -> None:
    _, diagnostics = check(
        '''
        transform t {
          sql = """
            SELECT VendorID,
                   fare
            FROM trips WHERE pasenger_count > 0 AND fair > 1
          """
        }
        ''',
        tmp_path,
    )
    # line 17 is `    FROM trips WHERE pasenger_count > 0 AND fair > 1`
    assert [where(d) for d in diagnostics] == ["F0301 17:22-17:36", "F0301 17:45-17:49"]
    assert [d.message for d in diagnostics] == [
        "unknown column `pasenger_count`",
        "unknown column `fair`",
    ]
    assert diagnostics[1].hint == "did you mean `fare`?"


def test_every_unknown_column_is_reported_wherever_it_is(tmp_path: Path) -> None:
    query = textwrap.dedent(
        """\
        WITH c AS (SELECT fare, nope1 FROM trips)
        SELECT c.fare, c.nope2, q.x,
               SUM(c.fare) OVER (PARTITION BY nope3 ORDER BY c.fare) AS running,
               (SELECT MAX(name) FROM zones WHERE zones.nope4 = c.fare) AS top
        FROM c
        JOIN (SELECT zone_id FROM zones WHERE nope5) AS z ON z.nope6 = c.fare
        WHERE nope7 > 0
        GROUP BY nope8
        HAVING COUNT(nope9) > 1
        ORDER BY nope10"""
    )
    _, diagnostics = check(transform("t", query), tmp_path)
    reported = [d.message.split("`")[1] for d in diagnostics]
    assert reported == [
        "nope1",
        "nope2",
        "q.x",
        "nope3",
        "nope4",
        "nope5",
        "nope6",
        "nope7",
        "nope8",
        "nope9",
        "nope10",
    ]
    assert all(d.code == "F0301" for d in diagnostics)
    qualifier = diagnostics[2]
    assert where(qualifier) == "F0301 15:29-15:30"
    assert qualifier.hint == "`q` is not a table of this query; it reads `c`, `z`"


def test_ambiguous_column_in_a_join(tmp_path: Path) -> None:
    query = "SELECT fare, zone_id\nFROM trips AS t JOIN zones AS z ON t.zone_id = z.zone_id"
    spec, diagnostics = check(transform("t", query), tmp_path)
    assert [where(d) for d in diagnostics] == ["F0302 14:18-14:25"]
    assert diagnostics[0].message == "column `zone_id` is ambiguous: it is in `t` and `z`"
    assert diagnostics[0].hint == "qualify it: `t.zone_id`"
    assert output(spec, "t") == [("fare", "double"), ("zone_id", "unknown")]


def test_duplicate_output_columns(tmp_path: Path) -> None:
    query = "SELECT fare, zone_id, fare\nFROM trips"
    _, diagnostics = check(transform("a", query), tmp_path)
    assert [where(d) for d in diagnostics] == ["F0311 14:27-14:31"]
    assert diagnostics[0].message == "the query outputs column `fare` more than once"
    _, diagnostics = check(transform("b", "SELECT * FROM trips JOIN zones ON TRUE"), tmp_path)
    assert [(d.code, d.message.split("`")[1]) for d in diagnostics] == [("F0311", "zone_id")]


@pytest.mark.parametrize(
    ("dialect", "query", "errors"),
    [
        ("duckdb", "SELECT fare * 2 AS f2, f2 + 1 AS f3 FROM trips WHERE f2 > 1", 0),
        ("duckdb", "SELECT f2 + 1 AS f3, fare * 2 AS f2 FROM trips", 1),
        ("postgres", "SELECT fare * 2 AS f2 FROM trips WHERE f2 > 1", 1),
        ("postgres", "SELECT fare * 2 AS f2 FROM trips GROUP BY f2 ORDER BY f2", 0),
        ("bigquery", "SELECT fare * 2 AS f2 FROM trips GROUP BY f2 HAVING f2 > 1", 0),
        ("bigquery", "SELECT fare * 2 AS f2 FROM trips WHERE f2 > 1", 1),
    ],
)
def test_lateral_aliases_as_the_dialect_allows(
    tmp_path: Path, dialect: str, query: str, errors: int
) -> None:
    _, diagnostics = check(transform("t", query), tmp_path, dialect)
    assert len(diagnostics) == errors
    if errors:
        assert diagnostics[0].hint is not None and "alias" in diagnostics[0].hint


def test_correlated_references_and_struct_fields_are_accepted(tmp_path: Path) -> None:
    query = textwrap.dedent(
        """\
        SELECT t.fare, t AS whole_row
        FROM trips AS t
        WHERE EXISTS (SELECT 1 FROM zones AS z WHERE z.zone_id = t.zone_id AND fare > 0)
          AND zone_id IN (SELECT zone_id FROM zones WHERE name = 'x')"""
    )
    _, diagnostics = check(transform("t", query), tmp_path)
    assert diagnostics == []


# --- unknown inputs -------------------------------------------------------------------------


def test_an_unknown_input_gives_one_warning_and_no_column_errors(tmp_path: Path) -> None:
    spec, diagnostics = check(
        'source external {\n  from = table(warehouse, "public.things")\n}\n'
        + transform("t", "SELECT whatever, fare FROM external JOIN trips ON nope")
        + transform("u", "SELECT anything FROM t"),
        tmp_path,
    )
    assert [where(d) for d in diagnostics] == ["F0307 15:11-15:12", "F0307 20:11-20:12"]
    first, second = diagnostics
    assert first.severity == "warning"
    assert first.message == (
        "the columns of `t` cannot be known offline: it reads `external`, whose columns are unknown"
    )
    assert second.message.endswith(
        "it reads `t`, whose columns are unknown (they depend on `external`)"
    )
    assert output(spec, "t") is None and output(spec, "u") is None


def test_errors_upstream_give_no_warnings_downstream(tmp_path: Path) -> None:
    spec, diagnostics = check(
        transform("bad", "SELECT FROM WHERE") + transform("t", "SELECT x FROM bad"), tmp_path
    )
    assert [d.code for d in diagnostics] == ["F0304"]
    assert output(spec, "t") is None


# --- sources read from files ----------------------------------------------------------------


def test_csv_headers_give_the_columns_of_undeclared_sources(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a_01.csv").write_text("VendorID,fare\n1,2.5\n")
    with gzip.open(tmp_path / "data" / "b.csv.gz", "wt") as handle:
        handle.write("id;label\n")
    spec, diagnostics = check(
        textwrap.dedent(
            """\
            source a {
              from = csv("data/a_*.csv")
            }
            source b {
              from = csv("data/b.csv.gz", delimiter = ";")
            }
            source missing {
              from = csv("data/none_*.csv")
            }
            source pq {
              from = parquet("data/x.parquet")
            }
            """
        )
        + transform("t", "SELECT vendorid, label FROM a JOIN b ON TRUE"),
        tmp_path,
    )
    assert output(spec, "a") == [("VendorID", "unknown"), ("fare", "unknown")]
    assert output(spec, "b") == [("id", "unknown"), ("label", "unknown")]
    assert output(spec, "t") == [("VendorID", "unknown"), ("label", "unknown")]
    assert [where(d) for d in diagnostics] == [
        "F0312 12:8-12:9",  # a note: the columns come from the file's header
        "F0312 15:8-15:9",
        "F0307 18:8-18:15",
        "F0307 21:8-21:10",
    ]
    assert diagnostics[0].message == "the columns of `a` are read from the header of `data/a_*.csv`"
    assert "no file matches `data/none_*.csv`" in diagnostics[2].message


# --- references to columns in the .flow file ------------------------------------------------


def test_expectations_keys_and_partitions_name_existing_columns(tmp_path: Path) -> None:
    _, diagnostics = check(
        '''
        transform t {
          sql = """
            SELECT *, CAST(pickup AS DATE) AS day FROM trips
          """
          unique_key = [VendorID, tripid]
          time_column = picked
          materialize = incremental
          expect {
            not_null(vendorid, fare2)
            unique(zone)
            accepted_values(vendor, [1, 2])
            relationship(zone_id, zones.zone)
            check("fare > 0 AND farre < 100")
            check("fare >")
          }
        }
        sink out {
          input = t
          to = parquet("out/", partition_by = [day, month])
          key = [VENDORID, nope]
        }
        ''',
        tmp_path,
    )
    assert [(where(d), d.message) for d in diagnostics] == [
        ("F0306 17:27-17:33", "`unique_key` names unknown column `tripid` of `t`"),
        ("F0306 18:17-18:23", "`time_column` names unknown column `picked` of `t`"),
        ("F0306 21:24-21:29", "`not_null` names unknown column `fare2` of `t`"),
        ("F0306 22:12-22:16", "`unique` names unknown column `zone` of `t`"),
        ("F0306 23:21-23:27", "`accepted_values` names unknown column `vendor` of `t`"),
        ("F0306 24:33-24:37", "`relationship` names unknown column `zone` of `zones`"),
        ("F0306 25:25-25:30", "`check` names unknown column `farre` of `t`"),
        ("F0310 26:17-26:18", "invalid SQL in `check(...)`: incomplete expression at the end"),
        ("F0306 31:45-31:50", "`partition_by` names unknown column `month` of `out`"),
        ("F0306 32:20-32:24", "`key` names unknown column `nope` of `out`"),
    ]
    assert diagnostics[2].hint == "did you mean `fare`?"
    assert diagnostics[5].hint == "did you mean `zone_id`?"


# --- the pure per-node function -------------------------------------------------------------


def test_node_output_is_a_function_of_text_and_input_schemas() -> None:
    cols = (ir.Column(name="a", type="int"), ir.Column(name="b", type="varchar"))
    columns, problems = schema.node_output("SELECT a, c FROM t", {"t": cols}, "duckdb")
    assert columns is not None and [c.name for c in columns] == ["a", "c"]
    assert [(p.code, p.start, p.end, p.fields) for p in problems] == [
        ("F0301", 10, 11, {"name": "c"})
    ]
    columns, problems = schema.node_output("SELECT a FROM t", {"t": None}, "duckdb")
    assert columns is not None and problems == []


def test_columns_in_walks_when_sqlglot_keeps_no_list() -> None:
    parsed = sql_parse.parse_query(
        "WITH c AS (SELECT a FROM t) SELECT c.a, t.* FROM c, t WHERE b > (SELECT 1)", "duckdb"
    )
    assert isinstance(parsed, sql_parse.ParsedQuery)
    for scope in traverse_scope(parsed.tree):
        kept = [c.sql() for c in schema.columns_in(scope)]

        class Bare:
            expression = scope.expression
            tables = ()

        walked = [c.sql() for c in schema.columns_in(Bare())]  # type: ignore[arg-type]
        assert sorted(kept) == sorted(walked)


def test_a_table_named_twice_in_one_from_clause(tmp_path: Path) -> None:
    query = "SELECT fare FROM trips JOIN trips ON TRUE"
    spec, diagnostics = check(transform("t", query), tmp_path)
    assert [where(d) for d in diagnostics] == ["F0304 14:33-14:38"]
    assert "`trips` is used twice" in diagnostics[0].message
    assert output(spec, "t") is None


def test_using_columns_must_be_on_both_sides(tmp_path: Path) -> None:
    query = "SELECT * FROM trips JOIN zones USING (zone_id, fare)"
    _, diagnostics = check(transform("t", query), tmp_path)
    assert [(where(d), d.message) for d in diagnostics] == [
        ("F0301 14:52-14:56", "unknown column `fare`")
    ]
