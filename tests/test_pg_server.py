"""The PostgreSQL fixture itself: a real server, one fresh database per test."""

from __future__ import annotations

from pg_server import PgDatabase


def test_each_test_has_an_empty_database_of_its_own(pg: PgDatabase) -> None:
    pg.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
    assert pg.query("SELECT x FROM t") == [(1,)]
    assert pg.query("SELECT current_database()") == [(pg.dbname,)]


def test_the_databases_are_independent(pg: PgDatabase) -> None:
    assert pg.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
