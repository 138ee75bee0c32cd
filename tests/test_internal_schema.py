"""Intermediate nodes live in the pipeline's internal schema (docs/language.md, what users see):
a run leaves only the sinks' tables and the nodes marked `publish = true` where users read, on
DuckDB and Postgres (BigQuery: tests/test_bigquery_run.py); `internal_schema` names the schema;
what an older flowc published under a node's name is left alone; `flowc explain` says where
each node lives; a failed run changes neither schema.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from flowc_cli import flowc
from pg_server import PgDatabase

FLOW_TOML = """\
[project]
name = "p"
default_profile = "dev"

[profiles.dev.local]
type = "duckdb"
path = ".flowc/local.duckdb"
"""

PG_TOML = """
[profiles.pg.local]
type     = "postgres"
host     = "${POSTGRES_HOST}"
port     = "${POSTGRES_PORT}"
dbname   = "${POSTGRES_DBNAME}"
user     = "${POSTGRES_USER}"
password = "${POSTGRES_PASSWORD:-}"
schema   = "mage"
"""

SPEC = """\
pipeline p {
  target = local%s
}

source raw {
  from = csv("data/raw.csv", header = true)
  columns {
    id     int
    amount int
  }
}

transform cleaned {
  sql = "SELECT id, amount FROM raw WHERE amount > 0"
  expect { row_count(min = 1) }
}

transform totals {
  sql = "SELECT count(*) AS n, sum(amount) AS total FROM cleaned"
  materialize = table%s
}

sink out {
  input = totals
  to    = table(local, "report.totals")
}
"""


def project(tmp_path: Path, *, pipeline: str = "", totals: str = "", pg: bool = False) -> Path:
    root = tmp_path / "p"
    (root / "specs").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "raw.csv").write_text("id,amount\n1,5\n2,0\n3,7\n")
    (root / "flow.toml").write_text(FLOW_TOML + (PG_TOML if pg else ""))
    (root / "specs" / "p.flow").write_text(SPEC % (pipeline, totals))
    return root


def duckdb_relations(root: Path) -> set[str]:
    """schema.name of every table and view users or flowc left, less the run stages."""
    with duckdb.connect(str(root / ".flowc" / "local.duckdb"), read_only=True) as con:
        found = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE NOT starts_with(table_schema, '_flowc_')"
        ).fetchall()
    return {name for (name,) in found}


def test_only_the_sink_is_where_users_read(tmp_path: Path) -> None:
    root = project(tmp_path)
    result = flowc("run", "specs/p.flow", cwd=root)
    assert result.returncode == 0, result.stderr
    assert duckdb_relations(root) == {
        "report.totals",
        "flowc_internal.raw",
        "flowc_internal.cleaned",
        "flowc_internal.totals",
    }
    with duckdb.connect(str(root / ".flowc" / "local.duckdb"), read_only=True) as con:
        assert con.execute("SELECT n, total FROM report.totals").fetchall() == [(2, 12)]
    again = flowc("run", "specs/p.flow", cwd=root)  # the second run reads and replaces them
    assert again.returncode == 0, again.stderr
    assert "main.cleaned" not in duckdb_relations(root)


def test_publish_true_and_internal_schema(tmp_path: Path) -> None:
    root = project(tmp_path, pipeline='\n  internal_schema = "work"', totals="\n  publish = true")
    result = flowc("run", "specs/p.flow", cwd=root)
    assert result.returncode == 0, result.stderr
    assert duckdb_relations(root) == {"report.totals", "main.totals", "work.raw", "work.cleaned"}
    explained = flowc("explain", "specs/p.flow", cwd=root)
    assert explained.returncode == 0, explained.stderr
    assert "  cleaned: local, internal schema work" in explained.stdout
    assert "  totals: local, published (publish = true)" in explained.stdout


def test_a_table_an_older_flowc_published_is_left_alone(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / ".flowc").mkdir()
    with duckdb.connect(str(root / ".flowc" / "local.duckdb")) as con:
        con.execute("CREATE TABLE main.cleaned AS SELECT 99 AS id, 99 AS amount")
    result = flowc("run", "specs/p.flow", cwd=root)
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(root / ".flowc" / "local.duckdb"), read_only=True) as con:
        assert con.execute("FROM main.cleaned").fetchall() == [(99, 99)]
        # the pipeline read its own `cleaned`, not the old one
        assert con.execute("SELECT n, total FROM report.totals").fetchall() == [(2, 12)]


def test_a_failed_run_changes_no_schema(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert flowc("run", "specs/p.flow", cwd=root).returncode == 0
    with duckdb.connect(str(root / ".flowc" / "local.duckdb"), read_only=True) as con:
        before = con.execute("FROM flowc_internal.cleaned ORDER BY ALL").fetchall()
    (root / "data" / "raw.csv").write_text("id,amount\n1,0\n")  # row_count(min = 1) fails
    failed = flowc("run", "specs/p.flow", cwd=root)
    assert failed.returncode == 1
    with duckdb.connect(str(root / ".flowc" / "local.duckdb"), read_only=True) as con:
        assert con.execute("FROM flowc_internal.cleaned ORDER BY ALL").fetchall() == before
        assert con.execute("SELECT n FROM report.totals").fetchall() == [(2,)]


@pytest.mark.parametrize("publish", [False, True])
def test_postgres_keeps_intermediate_nodes_out_of_the_users_schema(
    tmp_path: Path, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch, publish: bool
) -> None:
    for name, value in pg.env().items():
        monkeypatch.setenv(name, value)
    root = project(tmp_path, totals="\n  publish = true" if publish else "", pg=True)
    result = flowc("run", "specs/p.flow", "--profile", "pg", cwd=root)
    assert result.returncode == 0, result.stderr
    found = pg.query(
        "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname NOT IN "
        "('pg_catalog', 'information_schema') AND NOT starts_with(schemaname, '_flowc_')"
    )
    published = {"mage.totals"} if publish else {"flowc_internal.totals"}
    assert {name for (name,) in found} == {
        "report.totals",
        "flowc_internal.raw",
        "flowc_internal.cleaned",
        *published,
    }
    assert pg.query("SELECT n, total FROM report.totals") == [(2, 12)]


@pytest.mark.parametrize("name", ["a.b", "_flowc_p_1", "9lives"])
def test_an_internal_schema_no_engine_takes_is_refused_at_check(tmp_path: Path, name: str) -> None:
    root = project(tmp_path, pipeline=f'\n  internal_schema = "{name}"')
    result = flowc("check", "specs/p.flow", cwd=root)
    assert result.returncode == 1
    assert "specs/p.flow:3:21" in result.stdout + result.stderr
    assert "F0212" in result.stdout + result.stderr


def test_an_unqualified_table_sink_goes_where_users_read(tmp_path: Path) -> None:
    root = project(tmp_path)
    spec = root / "specs" / "p.flow"
    spec.write_text(spec.read_text().replace('"report.totals"', '"plain_out"'))
    result = flowc("run", "specs/p.flow", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "main.plain_out" in duckdb_relations(root)
    assert "flowc_internal.plain_out" not in duckdb_relations(root)
