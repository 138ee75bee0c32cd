"""Decorrelation for Postgres (compiler/codegen/decorrelate.py): a correlated scalar aggregate in a
WHERE comparison becomes a grouped derived table, and gives the rows DuckDB gives for the query
as written — with NULL keys, outer rows without a group, several keys, an outer row repeated;
and what the rewrite cannot prove exact (COUNT, a comparison under OR, a correlation that is not
an equality, a subquery in the SELECT list) is left as written and still right."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from flowc_cli import flowc
from pg_server import PgDatabase, profile_section

ORDERS = [
    ("id", "cust", "amount", "day"),
    (1, 1, 10.0, "2020-01-01"),
    (2, 1, 30.0, "2020-01-02"),
    (3, 2, 5.0, "2020-01-02"),
    (4, "", 50.0, "2020-01-03"),
    (5, 2, 25.0, "2020-01-03"),
    (6, 3, 7.5, "2020-01-01"),
    (7, 1, 30.0, "2020-01-03"),
]
CUSTS = [
    ("id", "region", "code"),
    (1, "north", 1),
    (2, "south", 2),
    (3, "north", 3),
    (4, "east", 4),
    ("", "west", ""),
]

QUERIES = {
    # rewritten
    "self_correlated": "SELECT id FROM orders AS o WHERE amount > "
    "(SELECT avg(amount) FROM orders AS i WHERE i.cust = o.cust)",
    "filtered_inside": "SELECT c.id FROM custs AS c WHERE 10 < (SELECT sum(amount) FROM orders "
    "WHERE orders.cust = c.id AND day >= DATE '2020-01-02')",
    "two_keys": "SELECT o.id FROM orders AS o, custs AS c WHERE o.cust = c.id AND o.amount >= "
    "(SELECT 0.5 * max(i.amount) FROM orders AS i WHERE i.cust = o.cust AND i.day = o.day)",
    "unqualified": "SELECT region FROM custs WHERE code = "
    "(SELECT min(cust) FROM orders WHERE cust = code)",
    # left as written
    "count": "SELECT c.id FROM custs AS c WHERE 1 <= (SELECT count(*) FROM orders "
    "WHERE orders.cust = c.id)",
    "under_or": "SELECT c.id FROM custs AS c WHERE c.region = 'east' OR 10 < "
    "(SELECT sum(amount) FROM orders WHERE orders.cust = c.id)",
    "not_equality": "SELECT o.id FROM orders AS o WHERE o.amount > (SELECT max(i.amount) "
    "FROM orders AS i WHERE i.day < o.day)",
    "in_select_list": "SELECT c.id, (SELECT sum(amount) FROM orders WHERE orders.cust = c.id) "
    "AS total FROM custs AS c",
}
REWRITTEN = {"self_correlated", "filtered_inside", "two_keys", "unqualified"}

SOURCES = """\
pipeline p {
  target = warehouse
}

source orders {
  from = csv("orders.csv", header = true)
  columns { id int  cust int  amount double  day date }
}

source custs {
  from = csv("custs.csv", header = true)
  columns { id int  region varchar  code int }
}
"""

PROFILES = """\
[project]
name = "p"
default_profile = "duck"

[profiles.duck.warehouse]
type = "duckdb"
path = "w.duckdb"
""" + profile_section("pg", "warehouse")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name, rows in (("orders", ORDERS), ("custs", CUSTS)):
        with (tmp_path / f"{name}.csv").open("w", newline="") as out:
            csv.writer(out).writerows(rows)
    spec = SOURCES
    for name, sql in QUERIES.items():
        spec += f'\ntransform {name} {{\n  sql = "{sql}"\n}}\n'
        spec += f'\nsink {name}_csv {{\n  input = {name}\n  to = csv("out/{name}.csv")\n}}\n'
    (tmp_path / "p.flow").write_text(spec)
    (tmp_path / "flow.toml").write_text(PROFILES)
    return tmp_path


def outputs(root: Path) -> dict[str, list[list[str]]]:
    found = {}
    for name in QUERIES:
        with (root / "out" / f"{name}.csv").open(newline="") as file:
            rows = list(csv.reader(file))
        found[name] = [rows[0], *sorted(rows[1:])]
    return found


def test_rewritten_where_exact_and_the_rows_equal_duckdbs(project: Path, pg: PgDatabase) -> None:
    compiled = flowc(
        "compile", "p.flow", "--profile", "pg", "-o", "build", cwd=project, env=pg.env()
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    for name in QUERIES:
        sql = next((project / "build" / "p").glob(f"*_{name}.sql")).read_text()
        assert ("_flowc_sq1" in sql) == (name in REWRITTEN), sql
    on_duckdb = flowc("run", "p.flow", cwd=project)
    assert on_duckdb.returncode == 0, on_duckdb.stdout + on_duckdb.stderr
    expected = outputs(project)
    assert expected["self_correlated"][1:] == [["2"], ["5"], ["7"]]
    on_postgres = flowc("run", "p.flow", "--profile", "pg", cwd=project, env=pg.env())
    assert on_postgres.returncode == 0, on_postgres.stdout + on_postgres.stderr
    assert outputs(project) == expected


def test_duckdb_sql_keeps_the_subquery(project: Path) -> None:
    compiled = flowc("compile", "p.flow", "-o", "duck", cwd=project)
    assert compiled.returncode == 0, compiled.stdout
    written = "".join(p.read_text() for p in (project / "duck" / "p").glob("*.sql"))
    assert "_flowc_sq" not in written
    assert '"i"."cust" = "o"."cust"' in written  # the correlated subquery, as written
