"""The project model: what a `flow.toml` says once it has been read and checked.

A project has profiles; a profile has named connections, each of one engine type with typed,
`${VAR}`-expanded settings. The compiler plans against a profile and the runtime opens its
connections, so the model lives here, between the two; reading and checking `flow.toml` (which
reports diagnostics) is the compiler's `flowc.compiler.analysis.project_file`.

`Connection.settings` is None in `ProjectConfig.profiles` (the structure: names, types and
spans) and in any connection that has an error; the profiles `load_project` returns carry
typed, expanded settings with defaults filled in. Secrets (`password`, `credentials`, `url`)
are `SecretStr`, redacted in `repr`, `str` and JSON.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from flowc.project.engines import EngineName
from flowc.project.spans import Span
from pydantic import BaseModel, ConfigDict, Field, SecretStr

ConnectionType = EngineName
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DuckDBSettings(Model):
    type: Literal["duckdb"] = "duckdb"
    path: str
    read_only: bool = False
    # DuckDB's buffer pool (e.g. "4GB"); beyond it DuckDB spills to disk. None: the runtime's
    # default, a quarter of the machine's memory (runtime/engines/duckdb.py).
    memory_limit: str | None = None
    # how long a run waits for another process that holds the database file (DuckDB admits one
    # writing process) before it fails; None: the runtime's default (runtime/engines/duckdb.py)
    lock_timeout_s: float | None = None
    threads: int | None = None  # None: DuckDB's default, one per core
    temp_directory: str | None = None  # where it spills; None: `<path>.tmp`; relative: to root


class PostgresSettings(Model):
    """Either `url` or `host`/`port`/`dbname`/`user`/`password` is set; `db_schema` is the
    `schema` key of flow.toml (renamed: `schema` is taken on pydantic models)."""

    type: Literal["postgres"] = "postgres"
    url: SecretStr | None = None
    host: str | None = None
    port: int | None = None
    dbname: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    db_schema: str = "public"
    sslmode: SslMode | None = None
    # create tables and columns under lower-case names, as Postgres names unquoted ones
    # (docs/postgres.md); by default flowc keeps the names as declared, on every engine
    fold_names: bool = False


class BigQuerySettings(Model):
    type: Literal["bigquery"] = "bigquery"
    project: str
    dataset: str | None = None
    location: str | None = None
    credentials: SecretStr | None = None
    api_endpoint: str | None = None


Settings = Annotated[
    DuckDBSettings | PostgresSettings | BigQuerySettings, Field(discriminator="type")
]


class Connection(Model):
    """A named database of a profile. `span` is its `[header]` in flow.toml (for the implicit
    `local`: its profile's header, or the project root)."""

    name: str
    type: ConnectionType
    settings: Settings | None = None
    span: Span


class Profile(Model):
    name: str
    connections: dict[str, Connection]
    # Declared with an unknown or missing `type` (already reported): the names exist, so a
    # spec that uses one is not told a second time that the connection is unknown.
    unusable: tuple[str, ...] = ()

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.connections) | frozenset(self.unusable)


class ProjectConfig(Model):
    root: str
    file: str | None
    name: str
    default_profile: str | None
    profiles: dict[str, Profile]
    # folders outside the project root that sinks, `file(...)` and Python blocks may name
    allow_paths: tuple[str, ...] = ()
    format_sql: bool = False  # `flowc fmt` lays out embedded SQL too


def find_project_root(spec_path: Path) -> Path:
    """The nearest folder at or above `spec_path` holding `flow.toml`, else the spec's folder.

    A relative `spec_path` gives a relative root (`.`, `..`), so paths in messages stay short.
    """
    start = spec_path if spec_path.is_dir() else spec_path.parent
    absolute = Path(os.path.normpath(start.absolute()))
    for folder in (absolute, *absolute.parents):
        if (folder / "flow.toml").is_file():
            return folder if start.is_absolute() else Path(os.path.relpath(folder))
    return start


def secret_values(profile: Profile) -> set[str]:
    """Every secret of a resolved profile (passwords, credentials, URLs and the passwords in
    them, as written and percent-decoded), for scrubbing output.

    >>> from flowc.project.spans import point
    >>> settings = PostgresSettings(url=SecretStr("postgresql://me:s%40cret@db/x"))
    >>> conn = Connection(name="w", type="postgres", settings=settings, span=point("flow.toml"))
    >>> sorted(secret_values(Profile(name="dev", connections={"w": conn})))
    ['postgresql://me:s%40cret@db/x', 's%40cret', 's@cret']
    """
    found = {value for conn in profile.connections.values() for value in _secrets(conn.settings)}
    return found - {""}


def _secrets(settings: Settings | None) -> Iterator[str]:
    if settings is None:
        return
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            yield value.get_secret_value()
            yield from url_password(value.get_secret_value()) if name == "url" else ()


def url_password(url: str) -> set[str]:
    """The password of `url`, as written and percent-decoded (none for a URL that does not
    parse).

    >>> sorted(url_password("postgres://me:p%40ss@db/x"))
    ['p%40ss', 'p@ss']
    """
    try:
        password = urlsplit(url).password
    except ValueError:
        return set()
    return {password, unquote(password)} if password else set()
