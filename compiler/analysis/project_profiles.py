"""The structure of flow.toml's `[profiles.<profile>.<connection>]` tables, checked.

Everything here holds whatever the environment is: a connection's name and `type`, its keys
(known to its engine, of the right TOML type, the required ones present). What the settings'
values mean, after `${VAR}` expansion, is `connection_settings`'s to check, and only for the
profiles a run selects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from flowc.compiler.analysis.project_toml import TomlFile
from flowc.compiler.diagnostics import did_you_mean
from flowc.project.config import Connection, ConnectionType, Profile
from flowc.project.engines import ENGINES
from flowc.project.spans import Span

# the raw table of each connection, by (profile, connection): what settings are resolved from
Tables = dict[tuple[str, str], Mapping[str, Any]]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ALL_KEYS = {"type", *(key for engine in ENGINES.values() for key in engine.settings)}
# the engine types, in messages: `add type = "duckdb" (or "postgres", ...)`, `duckdb, ... or x`
_FIRST_TYPE, *_OTHER_TYPES = (f'"{name}"' for name in ENGINES)
_TYPE_HINT = f"add `type = {_FIRST_TYPE}` (or {', '.join(_OTHER_TYPES)})"
_TYPE_NAMES = f"{', '.join(list(ENGINES)[:-1])} or {list(ENGINES)[-1]}"


def read_profiles(reader: TomlFile) -> tuple[dict[str, Profile], Tables]:
    """The profiles of flow.toml, each with the implicit `local`, in name order, and the raw
    tables of their connections. A flow.toml without profiles has one: `default`."""
    raw = reader.doc.get("profiles", {})
    if not isinstance(raw, dict):
        reader.invalid(("profiles",), "`profiles` must hold tables: `[profiles.<name>.<conn>]`")
        raw = {}
    tables: Tables = {}
    profiles: dict[str, Profile] = {}
    for name, value in sorted(raw.items()):
        if _is_profile(reader, name, value):
            profiles[name] = _profile(reader, name, value, tables)
    if not profiles and reader.valid:
        profiles["default"] = _with_local("default", {}, reader.span())
    return profiles, tables


def _is_profile(reader: TomlFile, name: str, value: Any) -> bool:
    if name == "all":
        detail = "a profile cannot be called `all`: `--profile all` means every profile"
        reader.invalid(("profiles", name), detail)
        return False
    if not isinstance(value, dict):
        detail = f"`profiles.{name}` must hold connection tables: `[profiles.{name}.<conn>]`"
        reader.invalid(("profiles", name), detail)
        return False
    return True


def _profile(reader: TomlFile, name: str, table: dict[str, Any], tables: Tables) -> Profile:
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


def _connection_type(reader: TomlFile, at: tuple[str, str], value: Any) -> ConnectionType | None:
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


def _known_type(reader: TomlFile, path: tuple[str, ...], value: Any) -> ConnectionType | None:
    where = ".".join(path)
    if value is None:
        reader.diags.report(
            "F0604", reader.span(*path), hint=_TYPE_HINT, name=where, type="no type", key="type"
        )
    elif not isinstance(value, str):
        _invalid_value(reader, path, "type", f"a string: {_TYPE_NAMES}", value)
    elif value not in ENGINES:
        span = reader.locator.value_span((*path, "type"))
        reader.diags.report(
            "F0603", span, hint=did_you_mean(value, ENGINES), name=where, type=value
        )
    return ENGINES[value].name if isinstance(value, str) and value in ENGINES else None


def _check_keys(
    reader: TomlFile, at: tuple[str, str], conn_type: ConnectionType, table: Mapping[str, Any]
) -> None:
    path = ("profiles", *at)
    known = ENGINES[conn_type].settings
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
    reader: TomlFile, path: tuple[str, ...], conn_type: ConnectionType, table: Mapping[str, Any]
) -> None:
    where = ".".join(path)
    engine = ENGINES[conn_type]
    if engine.url_replaces and "url" in table:
        for key in (key for key in engine.url_replaces if key in table):
            detail = f"connection `{where}` sets both `url` and `{key}`: give one or the other"
            reader.diags.report("F0606", reader.locator.value_span((*path, key)), detail=detail)
        return
    hint = 'or give `url = "postgresql://user:password@host:port/dbname"`'
    for key in (key for key in engine.required_settings if key not in table):
        reader.diags.report(
            "F0604",
            reader.span(*path),
            hint=hint if engine.url_replaces else None,
            name=where,
            type=conn_type,
            key=key,
        )


def _invalid_value(
    reader: TomlFile, path: tuple[str, ...], key: str, expected: str, value: Any
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
