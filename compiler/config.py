"""The flow.toml pass: read a project's profiles and connections, expand `${VAR}`s, check them.

The choices this module makes where LANGUAGE §1 and §5 are silent:

- **Project root.** `find_project_root` walks up from a spec (or a folder) to the nearest folder
  holding `flow.toml`; without one, the spec's own folder is the root.
- **Implicit profiles and `local`.** Every profile has a connection `local` (DuckDB, path
  `.flowc/local.duckdb` under the root) unless it defines one itself (of any type). Without
  `flow.toml`, or with one that has no `[profiles.*]`, there is one profile, `default`, holding
  only `local`. A profile may not be called `all`: `--profile all` means every profile.
- **Which profile.** `load_project(profile=None)` takes `[project] default_profile`; without it
  the only profile, if there is exactly one; with several and no default it is an error (F0608)
  rather than a guess. `profile="all"` selects every profile, in name order.
- **Two stages of errors.** Errors that do not depend on the environment (TOML syntax, an unknown
  or missing `type`, a missing or unknown key, a wrong literal value) are reported for every
  profile. `${VAR}` expansion, and checks of values that come from it, run only for the selected
  profiles: a developer's machine does not hold prod's variables.
- **Expansion.** `${VAR}` is the variable's value (an error when unset; empty when set empty);
  `${VAR:-default}` is the default when the variable is unset *or empty*, as in the shell (a
  default holds no `}` and no `${`). Nothing else is special: a lone `$` stays as written, a `${`
  of another shape is an error (F0606).
  Values come from the environment, then from `.env` in the project root (the environment wins).
  `.env` values are taken literally (no interpolation inside `.env`). `[project]` values and a
  connection's `type` are never expanded.
- **A broken flow.toml** (not TOML, not readable) gives no profiles at all, so that one error is
  not followed by every reference to a connection in every spec.
- **Settings.** `Connection.settings` is `None` in `ProjectConfig.profiles` (the structure: names,
  types and spans) and in any connection that has an error; the profiles `load_project` returns
  carry typed, expanded settings with defaults filled in. DuckDB `path`s stay as written, relative
  to the project root. A Postgres connection gives either `url` or `host` + `dbname` + `user`
  (+ `port`, `password`), never both. Empty optional values (`credentials = ""`) mean "not set".
  Unknown keys are warned about (F0607) and dropped, so they can never carry a secret onward.
- **Secrets.** `password`, `credentials` and `url` (which may hold a password) are `SecretStr`,
  redacted in `repr`, `str` and JSON; no diagnostic ever quotes the value of those keys, of any
  key whose name contains `password`, `secret`, `token` or `key` (`is_secret_key`), or any value
  that came from the environment. `secret_values` lists a profile's secrets so that later stages
  can scrub their output.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from flowc.compiler.analysis.schedule import parse_duration
from flowc.compiler.diagnostics import Diagnostics, Span, did_you_mean, point
from pydantic import BaseModel, ConfigDict, Field, SecretStr

ConnectionType = Literal["duckdb", "postgres", "bigquery"]
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

_TYPES: dict[str, ConnectionType] = {
    "duckdb": "duckdb",
    "postgres": "postgres",
    "bigquery": "bigquery",
}
_SSLMODES: dict[str, SslMode] = {
    mode: mode for mode in ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
}
_KEYS: dict[ConnectionType, dict[str, tuple[type, ...]]] = {
    "duckdb": {
        "path": (str,),
        "read_only": (bool, str),
        "memory_limit": (str,),
        "lock_timeout": (str,),
        "threads": (int, str),
        "temp_directory": (str,),
    },
    "postgres": {
        **dict.fromkeys(("url", "host", "dbname", "user", "password", "schema"), (str,)),
        "port": (int, str),
        "sslmode": (str,),
        "fold_names": (bool, str),
    },
    "bigquery": dict.fromkeys(
        ("project", "dataset", "location", "credentials", "api_endpoint"), (str,)
    ),
}
_REQUIRED: dict[ConnectionType, tuple[str, ...]] = {
    "duckdb": (),
    "postgres": ("host", "dbname", "user"),
    "bigquery": ("project",),
}
_ALL_KEYS = {"type", *(key for keys in _KEYS.values() for key in keys)}
_NOT_WITH_URL = ("host", "port", "dbname", "user", "password")
# `exclude` is read by compiler/driver/check.py
_PROJECT_KEYS = ("name", "default_profile", "allow_paths", "format_sql", "exclude")
_SECRET_KEYS = ("password", "credentials", "url")
_SECRET_WORDS = ("password", "secret", "token", "key")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>(?:[^}$]|\$(?!\{))*))?\}")
_MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?\s*([KMGT]i?B|B)", re.IGNORECASE)
_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


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


# --- public entry points --------------------------------------------------------------------


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


def load_project(
    root: Path, *, profile: str | None, env: Mapping[str, str] | None = None
) -> tuple[ProjectConfig, list[Profile], Diagnostics]:
    """Read `root/flow.toml` (if any) and return the config, the selected expanded profiles
    and the diagnostics. `profile` is a name, `"all"`, or None for the default one;
    `env=None` reads `os.environ`.

    >>> config, [profile], diagnostics = load_project(Path("/nowhere"), profile=None, env={})
    >>> profile.name, profile.connections["local"].settings.path, len(diagnostics)
    ('default', '.flowc/local.duckdb', 0)
    """
    reader = _Reader.open(root)
    config, tables = _config(root, reader)
    selected = set(_select(config, profile, reader))
    environ = _environment(root, env, reader.diags) if selected else {}
    resolved = {
        name: _resolve_profile(
            config.profiles[name], tables, environ if name in selected else None, reader
        )
        for name in config.profiles
    }
    return config, [resolved[name] for name in sorted(selected)], reader.diags


def secret_values(profile: Profile) -> set[str]:
    """Every secret of a resolved profile (passwords, credentials, URLs and the passwords in
    them, as written and percent-decoded), for scrubbing output.

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
            yield from _url_password(value.get_secret_value()) if name == "url" else ()


def _url_password(url: str) -> set[str]:
    try:
        password = urlsplit(url).password
    except ValueError:
        return set()
    return {password, unquote(password)} if password else set()


def is_secret_key(key: str) -> bool:
    """Whether the value of a flow.toml key must never be shown."""
    lowered = key.lower()
    return lowered in _SECRET_KEYS or any(word in lowered for word in _SECRET_WORDS)


# --- reading flow.toml ----------------------------------------------------------------------


@dataclass
class _Reader:
    """flow.toml as parsed data plus a locator, and the diagnostics to report into."""

    file: str
    exists: bool
    doc: dict[str, Any]
    locator: _Locator
    diags: Diagnostics = field(default_factory=Diagnostics)
    valid: bool = True

    @classmethod
    def open(cls, root: Path) -> _Reader:
        path = root / "flow.toml"
        if not path.is_file():
            return cls(str(root), False, {}, _Locator(str(root), ""))
        reader = cls(str(path), True, {}, _Locator(str(path), ""))
        text = reader.read_text(path)
        if text is not None:
            reader.locator = _Locator(reader.file, text)
            reader.doc = reader.parse(text)
        return reader

    def read_text(self, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            self.diags.report("F0601", self.span(), detail="it is not UTF-8 text")
            self.valid = False
        except OSError as error:
            self.diags.report("F0601", self.span(), detail=f"cannot read it ({error.strerror})")
            self.valid = False
        return None

    def parse(self, text: str) -> dict[str, Any]:
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            self.diags.report(
                "F0601", self._error_span(str(error)), detail=_TOML_AT.sub("", str(error))
            )
            self.valid = False
            return {}

    def _error_span(self, message: str) -> Span:
        found = _TOML_AT.search(message)
        if found is None:
            return point(self.file, self.locator.lines, 1)
        return point(self.file, int(found[1]), int(found[2]))

    def span(self, *path: str) -> Span:
        return self.locator.span(path)

    def invalid(self, path: tuple[str, ...], detail: str, hint: str | None = None) -> None:
        self.diags.report("F0608", self.span(*path), detail=detail, hint=hint)


class _Locator:
    """Where tables and keys of a TOML text are: tomllib gives no positions, so scan the lines,
    tracking the current `[table.header]`. Good enough for hand-written config files."""

    _PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
    _DOTTED = rf"{_PART}(?:[ \t]*\.[ \t]*{_PART})*"
    _HEADER = re.compile(rf"([ \t]*)(\[\[?[ \t]*({_DOTTED})[ \t]*\]\]?)")
    _KEY = re.compile(rf"([ \t]*)({_DOTTED})[ \t]*=")

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.lines = max(1, text.count("\n") + 1)
        self._spans: dict[tuple[str, ...], Span] = {}
        self._values: dict[tuple[str, ...], tuple[int, int, str]] = {}
        table: tuple[str, ...] = ()
        in_string = False
        for number, line in enumerate(text.split("\n"), start=1):
            if not in_string:
                table = self._scan(number, line, table)
            in_string ^= (line.count('"""') + line.count("'''")) % 2 == 1

    def _scan(self, number: int, line: str, table: tuple[str, ...]) -> tuple[str, ...]:
        if header := self._HEADER.match(line):
            path = _key_parts(header[3])
            self._record(path, number, len(header[1]) + 1, len(header[2]))
            return path
        if key := self._KEY.match(line):
            path = (*table, *_key_parts(key[2]))
            self._record(path, number, len(key[1]) + 1, len(key[2]))
            value = line[key.end() :]
            start = key.end() + len(value) - len(value.lstrip())
            self._values.setdefault(path, (number, start + 1, line[start:].split(" #")[0].rstrip()))
        return table

    def _record(self, path: tuple[str, ...], line: int, col: int, width: int) -> None:
        for end in range(1, len(path) + 1):
            self._spans.setdefault(path[:end], point(self.file, line, col, width))

    def value_span(self, path: tuple[str, ...], needle: str = "") -> Span:
        """The span of the value of key `path` (of `needle` inside it, if found there)."""
        if path not in self._values:
            return self.span(path)
        line, col, text = self._values[path]
        at = text.find(needle) if needle else -1
        if at >= 0:
            return point(self.file, line, col + at, len(needle))
        return point(self.file, line, col, max(1, len(text)))

    def span(self, path: tuple[str, ...]) -> Span:
        """The span of `path`, else of its nearest located ancestor, else line 1."""
        for end in range(len(path), 0, -1):
            if path[:end] in self._spans:
                return self._spans[path[:end]]
        return point(self.file)


def _key_parts(dotted: str) -> tuple[str, ...]:
    parts = re.findall(_Locator._PART, dotted)
    return tuple(part[1:-1] if part[0] in "\"'" else part for part in parts)


# --- structure: [project] and [profiles.*.*] ------------------------------------------------

_Tables = dict[tuple[str, str], Mapping[str, Any]]


def _config(root: Path, reader: _Reader) -> tuple[ProjectConfig, _Tables]:
    _check_top_level(reader)
    name, default = _project(root, reader)
    allow = _allow_paths(reader)
    format_sql = _project_flag(reader, reader.doc.get("project", {}), "format_sql")
    profiles, tables = _profiles(reader)
    if default is not None and default not in profiles:
        hint = did_you_mean(default, profiles)
        detail = f"`default_profile` names unknown profile `{default}`"
        reader.invalid(("project", "default_profile"), detail, hint)
    file = reader.file if reader.exists else None
    config = ProjectConfig(
        root=str(root),
        file=file,
        name=name,
        default_profile=default,
        profiles=profiles,
        allow_paths=allow,
        format_sql=format_sql,
    )
    return config, tables


def _check_top_level(reader: _Reader) -> None:
    for key in reader.doc:
        if key not in ("project", "profiles"):
            hint = did_you_mean(key, ["project", "profiles"])
            detail = f"flow.toml has no `{key}`: it holds `[project]` and `[profiles.*]` tables"
            reader.invalid((key,), detail, hint)


def _project(root: Path, reader: _Reader) -> tuple[str, str | None]:
    table = reader.doc.get("project", {})
    if not isinstance(table, dict):
        reader.invalid(("project",), "`project` must be a table: `[project]`")
        table = {}
    for key in table:
        if key not in _PROJECT_KEYS:
            hint = did_you_mean(key, _PROJECT_KEYS)
            reader.invalid(("project", key), f"`[project]` has no setting `{key}`", hint)
    fallback = Path(os.path.normpath(root.absolute())).name
    return _string(reader, table, "name") or fallback, _string(reader, table, "default_profile")


def _allow_paths(reader: _Reader) -> tuple[str, ...]:
    """`[project] allow_paths`: a list of folders (absolute, `~/...`, or relative to the
    root) that paths may name although they lie outside the project root."""
    table = reader.doc.get("project", {})
    value = table.get("allow_paths", []) if isinstance(table, dict) else []
    if isinstance(value, list) and all(isinstance(item, str) and item for item in value):
        return tuple(value)
    detail = '`allow_paths` must be a list of folder paths, like `["/data/exports"]`'
    reader.invalid(("project", "allow_paths"), detail)
    return ()


def _string(reader: _Reader, table: Mapping[str, Any], key: str) -> str | None:
    value = table.get(key)
    if value is None or isinstance(value, str):
        return value
    reader.invalid(("project", key), f"`{key}` in `[project]` must be a string")
    return None


def _project_flag(reader: _Reader, table: Any, key: str) -> bool:
    value = table.get(key, False) if isinstance(table, dict) else False
    if isinstance(value, bool):
        return value
    reader.invalid(("project", key), f"`{key}` in `[project]` must be `true` or `false`")
    return False


def _profiles(reader: _Reader) -> tuple[dict[str, Profile], _Tables]:
    raw = reader.doc.get("profiles", {})
    if not isinstance(raw, dict):
        reader.invalid(("profiles",), "`profiles` must hold tables: `[profiles.<name>.<conn>]`")
        raw = {}
    tables: _Tables = {}
    profiles: dict[str, Profile] = {}
    for name, value in sorted(raw.items()):
        if _is_profile(reader, name, value):
            profiles[name] = _profile(reader, name, value, tables)
    if not profiles and reader.valid:
        profiles["default"] = _with_local("default", {}, reader.span())
    return profiles, tables


def _is_profile(reader: _Reader, name: str, value: Any) -> bool:
    if name == "all":
        detail = "a profile cannot be called `all`: `--profile all` means every profile"
        reader.invalid(("profiles", name), detail)
        return False
    if not isinstance(value, dict):
        detail = f"`profiles.{name}` must hold connection tables: `[profiles.{name}.<conn>]`"
        reader.invalid(("profiles", name), detail)
        return False
    return True


def _profile(reader: _Reader, name: str, table: dict[str, Any], tables: _Tables) -> Profile:
    connections: dict[str, Connection] = {}
    unusable: list[str] = []
    for conn_name, value in table.items():
        conn_type = _connection_type(reader, (name, conn_name), value)
        if conn_type is None:
            unusable.append(conn_name)
            continue
        span = reader.span("profiles", name, conn_name)
        connections[conn_name] = Connection(name=conn_name, type=conn_type, span=span)
        tables[(name, conn_name)] = value
        _check_keys(reader, (name, conn_name), conn_type, value)
    return _with_local(name, connections, reader.span("profiles", name), unusable)


def _with_local(
    profile: str, connections: dict[str, Connection], span: Span, unusable: Sequence[str] = ()
) -> Profile:
    local = Connection(name="local", type="duckdb", span=span)
    merged = {"local": local, **connections}
    return Profile(
        name=profile, connections=dict(sorted(merged.items())), unusable=tuple(sorted(unusable))
    )


def _connection_type(reader: _Reader, at: tuple[str, str], value: Any) -> ConnectionType | None:
    path = ("profiles", *at)
    if not isinstance(value, dict):
        reader.invalid(path, _not_a_table(at))
        return None
    if not _IDENTIFIER.fullmatch(at[1]):
        reader.invalid(path, f"connection name `{at[1]}` is not an identifier")
        return None
    return _known_type(reader, path, value.get("type"))


def _not_a_table(at: tuple[str, str]) -> str:
    profile, name = at
    if name in _ALL_KEYS:
        return f"`{name}` is a connection setting: put it under `[profiles.{profile}.<connection>]`"
    return f"`profiles.{profile}.{name}` must be a connection table: `[profiles.{profile}.{name}]`"


def _known_type(reader: _Reader, path: tuple[str, ...], value: Any) -> ConnectionType | None:
    where = ".".join(path)
    if value is None:
        hint = 'add `type = "duckdb"` (or "postgres", "bigquery")'
        reader.diags.report(
            "F0604", reader.span(*path), hint=hint, name=where, type="no type", key="type"
        )
    elif not isinstance(value, str):
        _invalid_value(reader, path, "type", "a string: duckdb, postgres or bigquery", value)
    elif value not in _TYPES:
        span = reader.locator.value_span((*path, "type"))
        reader.diags.report("F0603", span, hint=did_you_mean(value, _TYPES), name=where, type=value)
    return _TYPES.get(value) if isinstance(value, str) else None


def _check_keys(
    reader: _Reader, at: tuple[str, str], conn_type: ConnectionType, table: Mapping[str, Any]
) -> None:
    path = ("profiles", *at)
    known = _KEYS[conn_type]
    for key, value in table.items():
        if key != "type" and key not in known:
            hint = did_you_mean(key, [*known, "type"])
            name = ".".join(path)
            reader.diags.report(
                "F0607", reader.span(*path, key), hint=hint, name=name, type=conn_type, key=key
            )
        elif key != "type" and type(value) not in known[key]:
            _invalid_value(reader, path, key, _expected(known[key]), value)
    _check_required(reader, path, conn_type, table)


def _check_required(
    reader: _Reader, path: tuple[str, ...], conn_type: ConnectionType, table: Mapping[str, Any]
) -> None:
    where = ".".join(path)
    if conn_type == "postgres" and "url" in table:
        for key in (key for key in _NOT_WITH_URL if key in table):
            detail = f"connection `{where}` sets both `url` and `{key}`: give one or the other"
            reader.diags.report("F0606", reader.locator.value_span((*path, key)), detail=detail)
        return
    hint = 'or give `url = "postgresql://user:password@host:port/dbname"`'
    for key in (key for key in _REQUIRED[conn_type] if key not in table):
        reader.diags.report(
            "F0604",
            reader.span(*path),
            hint=hint if conn_type == "postgres" else None,
            name=where,
            type=conn_type,
            key=key,
        )


def _invalid_value(
    reader: _Reader, path: tuple[str, ...], key: str, expected: str, value: Any
) -> None:
    detail = f"`{key}` of connection `{'.'.join(path)}` must be {expected}, not {_kind(value)}"
    reader.diags.report("F0606", reader.locator.value_span((*path, key)), detail=detail)


def _expected(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false"}
    return " or ".join(names[t] for t in types)


def _kind(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    kinds |= {list: "an array", dict: "a table"}
    return kinds.get(type(value), "a date or time")


# --- selecting profiles ---------------------------------------------------------------------


def _select(config: ProjectConfig, profile: str | None, reader: _Reader) -> list[str]:
    if not config.profiles:
        return []  # flow.toml could not be read: that error is enough
    if profile == "all":
        return sorted(config.profiles)
    if profile is not None:
        return _named(config, profile, reader)
    if config.default_profile is not None:
        return [config.default_profile] if config.default_profile in config.profiles else []
    if len(config.profiles) == 1:
        return list(config.profiles)
    names = ", ".join(f"`{name}`" for name in config.profiles)
    detail = f"flow.toml defines the profiles {names} and no `default_profile`"
    hint = "set `default_profile` in `[project]`, or pass `--profile NAME` (or `--profile all`)"
    reader.invalid(("project",), detail, hint)
    return []


def _named(config: ProjectConfig, profile: str, reader: _Reader) -> list[str]:
    if profile in config.profiles:
        return [profile]
    hint = did_you_mean(profile, [*config.profiles, "all"])
    reader.diags.report("F0602", point(reader.file), hint=hint, name=profile)
    return []


# --- the environment ------------------------------------------------------------------------


def _environment(root: Path, env: Mapping[str, str] | None, diags: Diagnostics) -> dict[str, str]:
    """`.env` in the project root, overridden by the real environment (or `env`)."""
    dotenv = root / ".env"
    values = _read_dotenv(dotenv, diags) if dotenv.is_file() else {}
    return {**values, **(os.environ if env is None else env)}


def _read_dotenv(path: Path, diags: Diagnostics) -> dict[str, str]:
    from dotenv import dotenv_values  # only here: importing dotenv costs ~30 ms of start-up

    try:
        values = dotenv_values(path, interpolate=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        detail = f"cannot read `{path}`: {getattr(error, 'strerror', None) or 'not UTF-8 text'}"
        diags.report("F0608", point(str(path)), detail=detail)
        return {}
    return {key: value for key, value in values.items() if value is not None}


# --- resolving the selected profiles --------------------------------------------------------


@dataclass
class _Conn:
    """One connection being resolved: its raw table and how to expand its values. `env` is None
    for a profile that is not selected: its `${...}` values stay unknown, without errors."""

    profile: str
    name: str
    type: ConnectionType
    table: Mapping[str, Any]
    env: Mapping[str, str] | None
    reader: _Reader
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
        if type(value) not in _KEYS[self.type][key]:
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


def _resolve_profile(
    profile: Profile, tables: _Tables, env: Mapping[str, str] | None, reader: _Reader
) -> Profile:
    connections = {
        name: _resolve(profile.name, conn, tables.get((profile.name, name), {}), env, reader)
        for name, conn in profile.connections.items()
    }
    return profile.model_copy(update={"connections": connections})


def _resolve(
    profile: str,
    conn: Connection,
    table: Mapping[str, Any],
    env: Mapping[str, str] | None,
    reader: _Reader,
) -> Connection:
    state = _Conn(profile, conn.name, conn.type, table, env, reader)
    settings = _RESOLVERS[conn.type](state)
    return conn.model_copy(update={"settings": settings if state.ok else None})


def _expand(conn: _Conn, key: str, text: str) -> str | None:
    """`text` with its `${VAR}`s and `${VAR:-default}`s replaced; None if that cannot be done."""
    if "${" not in text:
        return text
    if "${" in _VAR.sub("", text):
        detail = f"`{key}` of connection `{conn.where}` has a `${{` that is not `${{NAME}}` or "
        conn.invalid(key, detail + "`${NAME:-default}`")
        return None
    if conn.env is None:
        conn.ok = False
        return None
    missing = [found["name"] for found in _VAR.finditer(text) if _lookup(found, conn.env) is None]
    for name in missing:
        _report_missing(conn, key, name)
    return None if missing else _VAR.sub(lambda found: _lookup(found, conn.env or {}) or "", text)


def _lookup(found: re.Match[str], env: Mapping[str, str]) -> str | None:
    value = env.get(found["name"])
    default = found["default"]
    return value if default is None else (value or default)


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


_RESOLVERS = {"duckdb": _duckdb, "postgres": _postgres, "bigquery": _bigquery}
