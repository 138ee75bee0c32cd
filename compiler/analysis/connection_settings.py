"""A selected profile's connection settings: `${VAR}`s expanded, values checked, typed.

This half of flow.toml checking depends on the environment, so it runs only for the profiles
a command selects (a developer's machine does not hold prod's variables). A connection with an
error keeps `settings=None`; the others get their engine's settings model with defaults filled
in. No diagnostic quotes a secret, or a value that came from the environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, assert_never, get_args
from urllib.parse import urlsplit

from flowc.compiler.analysis.project_profiles import Tables
from flowc.compiler.analysis.project_toml import TomlFile
from flowc.compiler.analysis.schedule import parse_duration
from flowc.compiler.diagnostics import did_you_mean
from flowc.project import env as variables
from flowc.project.config import (
    BigQuerySettings,
    Connection,
    ConnectionType,
    DuckDBSettings,
    PostgresSettings,
    Profile,
    Settings,
    SslMode,
)
from flowc.project.engines import ENGINES
from flowc.project.secrets import is_secret_key
from flowc.project.spans import Span
from pydantic import SecretStr

_SSLMODES: dict[str, SslMode] = {mode: mode for mode in get_args(SslMode)}
_MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?\s*([KMGT]i?B|B)", re.IGNORECASE)


def resolve_profile(
    profile: Profile, tables: Tables, env: Mapping[str, str] | None, reader: TomlFile
) -> Profile:
    """`profile` with typed settings on each connection (None where there is an error, or for
    every connection using `${...}` when `env` is None: a profile that is not selected)."""
    connections = {
        name: _resolve(profile.name, conn, tables.get((profile.name, name), {}), env, reader)
        for name, conn in profile.connections.items()
    }
    return profile.model_copy(update={"connections": connections})


@dataclass
class _Conn:
    """One connection being resolved: its raw table and how to expand its values. `env` is None
    for a profile that is not selected: its `${...}` values stay unknown, without errors."""

    profile: str
    name: str
    type: ConnectionType
    table: Mapping[str, Any]
    env: Mapping[str, str] | None
    reader: TomlFile
    ok: bool = True

    @property
    def where(self) -> str:
        return f"profiles.{self.profile}.{self.name}"

    def span(self, key: str) -> Span:
        return self.reader.span("profiles", self.profile, self.name, key)

    def value_span(self, key: str, needle: str = "") -> Span:
        return self.reader.locator.value_span(("profiles", self.profile, self.name, key), needle)

    def invalid(self, key: str, detail: str, hint: str | None = None) -> None:
        self.reader.diags.report("F0606", self.value_span(key), detail=detail, hint=hint)
        self.ok = False

    def get(self, key: str, default: str | None = None) -> str | None:
        """The expanded value of `key`; `default` when absent; None when unknown or wrong."""
        value = self.table.get(key)
        if value is None:
            return default
        if type(value) not in ENGINES[self.type].settings[key]:
            self.ok = False
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value) if isinstance(value, int) else _expand(self, key, value)

    def required(self, key: str) -> str | None:
        """Like `get`, but absent (already reported) or empty makes the connection unusable."""
        value = self.get(key)
        if value is None:
            self.ok = False
        elif value == "":
            self.invalid(key, f"`{key}` of connection `{self.where}` is empty")
            return None
        return value

    def shown(self, key: str, text: str) -> str:
        """How a wrong value is quoted: never a secret, never what came from the environment
        (a misplaced `${PASSWORD}` must not print the password)."""
        raw = str(self.table.get(key))
        if is_secret_key(key):
            return "its value"
        return f"`{text}`" if "${" not in raw else f"what `{raw}` expands to"


def _resolve(
    profile: str,
    conn: Connection,
    table: Mapping[str, Any],
    env: Mapping[str, str] | None,
    reader: TomlFile,
) -> Connection:
    state = _Conn(profile, conn.name, conn.type, table, env, reader)
    settings = _settings(state)
    return conn.model_copy(update={"settings": settings if state.ok else None})


def _settings(conn: _Conn) -> Settings | None:
    """The settings model of the connection's engine (a new engine: mypy points here)."""
    match conn.type:
        case "duckdb":
            return _duckdb(conn)
        case "postgres":
            return _postgres(conn)
        case "bigquery":
            return _bigquery(conn)
        case unknown:
            assert_never(unknown)


def _expand(conn: _Conn, key: str, text: str) -> str | None:
    """`text` with its `${VAR}`s and `${VAR:-default}`s replaced; None if that cannot be done."""
    if "${" not in text:
        return text
    if not variables.well_formed(text):
        detail = f"`{key}` of connection `{conn.where}` has a `${{` that is not `${{NAME}}` or "
        conn.invalid(key, detail + "`${NAME:-default}`")
        return None
    if conn.env is None:
        conn.ok = False
        return None
    missing = variables.unset(text, conn.env)
    for name in missing:
        _report_missing(conn, key, name)
    return None if missing else variables.expand(text, conn.env)


def _report_missing(conn: _Conn, key: str, name: str) -> None:
    advice = f"set it in the environment or in `.env`, or write `${{{name}:-default}}`"
    suggestion = did_you_mean(name, conn.env or {})
    hint = f"{suggestion} else {advice}" if suggestion else advice
    where = f"`{key}` of connection `{conn.where}`"
    span = conn.value_span(key, "${" + name)
    conn.reader.diags.report("F0605", span, hint=hint, var=name, where=where)
    conn.ok = False


def _duckdb(conn: _Conn) -> DuckDBSettings | None:
    path = conn.get("path", f".flowc/{conn.name}.duckdb")
    read_only = _flag(conn, "read_only")
    if path == "":
        conn.invalid("path", f"`path` of connection `{conn.where}` is empty")
    memory_limit = conn.get("memory_limit")
    if memory_limit is not None and not _MEMORY.fullmatch(memory_limit.strip()):
        detail = f"`memory_limit` of connection `{conn.where}` is not a size: `{memory_limit}`"
        conn.invalid("memory_limit", detail, hint='write it like "512MB" or "4GB"')
        memory_limit = None
    threads = _positive(conn, "threads")
    temp_directory = conn.get("temp_directory")
    if temp_directory == "":
        conn.invalid("temp_directory", f"`temp_directory` of connection `{conn.where}` is empty")
        temp_directory = None
    if not path:
        return None
    return DuckDBSettings(
        path=path,
        read_only=read_only,
        memory_limit=memory_limit,
        lock_timeout_s=_lock_timeout(conn),
        threads=threads,
        temp_directory=temp_directory,
    )


def _lock_timeout(conn: _Conn) -> float | None:
    text = conn.get("lock_timeout")
    if text is None:
        return None
    duration = parse_duration(text)
    if duration is None:
        detail = f"`lock_timeout` of connection `{conn.where}` is not a duration: `{text}`"
        conn.invalid("lock_timeout", detail, hint='write it like "30s", "10m" or "1h"')
        return None
    return duration.total_seconds()


def _positive(conn: _Conn, key: str) -> int | None:
    text = conn.get(key)
    if text is None:
        return None
    if not text.strip().isdigit() or int(text) < 1:
        detail = f"`{key}` of connection `{conn.where}` is not a whole number above 0: `{text}`"
        conn.invalid(key, detail, hint=f"write it like `{key} = 4`")
        return None
    return int(text)


def _flag(conn: _Conn, key: str) -> bool:
    text = conn.get(key, "false")
    if text is None or text.lower() in ("true", "1"):
        return text is not None
    if text.lower() not in ("false", "0"):
        conn.invalid(key, f"`{key}` of connection `{conn.where}` must be true or false")
    return False


def _postgres(conn: _Conn) -> PostgresSettings | None:
    schema = conn.get("schema") or "public"
    common: dict[str, Any] = {
        "db_schema": schema,
        "sslmode": _sslmode(conn),
        "fold_names": _flag(conn, "fold_names"),
    }
    if "url" in conn.table:
        return PostgresSettings(url=_secret(_url(conn)), **common)
    host, dbname, user = conn.required("host"), conn.required("dbname"), conn.required("user")
    return PostgresSettings(
        host=host,
        port=_port(conn),
        dbname=dbname,
        user=user,
        password=_secret(conn.get("password")),
        **common,
    )


def _port(conn: _Conn) -> int | None:
    text = conn.get("port", "5432")
    if text is None:
        return None
    if text.isascii() and text.isdigit() and 1 <= int(text) <= 65535:
        return int(text)
    detail = f"`port` of connection `{conn.where}` must be an integer from 1 to 65535"
    conn.invalid("port", f"{detail}, not {conn.shown('port', text)}")
    return None


def _sslmode(conn: _Conn) -> SslMode | None:
    text = conn.get("sslmode")
    if not text:
        return None
    if text not in _SSLMODES:
        detail = f"`sslmode` of connection `{conn.where}` must be one of {', '.join(_SSLMODES)}"
        shown = conn.shown("sslmode", text)
        conn.invalid("sslmode", f"{detail}, not {shown}", did_you_mean(text, _SSLMODES))
    return _SSLMODES.get(text)


def _url(conn: _Conn) -> str | None:
    """The URL, checked without ever quoting it: it may hold a password."""
    url = conn.required("url")
    if url is None:
        return None
    where = f"`url` of connection `{conn.where}`"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        conn.invalid("url", f"{where} is not a valid URL (is its port a number?)")
        return None
    if parts.scheme not in ("postgresql", "postgres"):
        conn.invalid("url", f"{where} must start with `postgresql://`")
    return url


def _bigquery(conn: _Conn) -> BigQuerySettings | None:
    project = conn.required("project")
    dataset, location = conn.get("dataset") or None, conn.get("location") or None
    credentials = _secret(conn.get("credentials"))
    endpoint = conn.get("api_endpoint") or None
    if endpoint and not endpoint.startswith(("http://", "https://")):
        detail = f"`api_endpoint` of connection `{conn.where}` must be an http:// or https:// URL"
        conn.invalid("api_endpoint", detail)
    if project is None:
        return None
    return BigQuerySettings(
        project=project,
        dataset=dataset,
        location=location,
        credentials=credentials,
        api_endpoint=endpoint,
    )


def _secret(value: str | None) -> SecretStr | None:
    return SecretStr(value) if value else None
