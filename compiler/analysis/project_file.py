"""The flow.toml pass: read a project's profiles and connections, expand `${VAR}`s, check them.

The model it yields (`ProjectConfig`, `Profile`, the settings of each engine) is the project
layer's, `flowc.project.config`; this pass is the compiler's because it reports diagnostics at
flow.toml's lines. The choices it makes where LANGUAGE §1 and §5 are silent:

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
  profile (`project_profiles`). `${VAR}` expansion (`flowc.project.env`), and checks of values
  that come from it, run only for the selected profiles (`connection_settings`): a developer's
  machine does not hold prod's variables. An unset variable is an error (F0605).
  Values come from the environment, then from `.env` in the project root (the environment wins).
  `[project]` values and a connection's `type` are never expanded.
- **A broken flow.toml** (not TOML, not readable) gives no profiles at all, so that one error is
  not followed by every reference to a connection in every spec.
- **Settings.** DuckDB `path`s stay as written, relative to the project root. A Postgres
  connection gives either `url` or `host` + `dbname` + `user` (+ `port`, `password`), never
  both. Empty optional values (`credentials = ""`) mean "not set". Unknown keys are warned about
  (F0607) and dropped, so they can never carry a secret onward.
- **Secrets.** No diagnostic ever quotes the value of `password`, `credentials`, `url`, of any
  key whose name contains `password`, `secret`, `token` or key (`secrets.is_secret_key`), or any
  value that came from the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flowc.compiler.analysis.connection_settings import resolve_profile
from flowc.compiler.analysis.project_profiles import Tables, read_profiles
from flowc.compiler.analysis.project_toml import TomlFile
from flowc.compiler.diagnostics import Diagnostics, did_you_mean
from flowc.project import env as variables
from flowc.project.config import Profile, ProjectConfig
from flowc.project.spans import point

# `exclude` is read by compiler/driver/check.py
_PROJECT_KEYS = ("name", "default_profile", "allow_paths", "format_sql", "exclude")


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
    reader = TomlFile.open(root)
    config, tables = _config(root, reader)
    selected = set(_select(config, profile, reader))
    environ = _environment(root, env, reader.diags) if selected else {}
    resolved = {
        name: resolve_profile(
            config.profiles[name], tables, environ if name in selected else None, reader
        )
        for name in config.profiles
    }
    return config, [resolved[name] for name in sorted(selected)], reader.diags


# --- [project] --------------------------------------------------------------------------------


def _config(root: Path, reader: TomlFile) -> tuple[ProjectConfig, Tables]:
    _check_top_level(reader)
    name, default = _project(root, reader)
    allow = _allow_paths(reader)
    format_sql = _project_flag(reader, reader.doc.get("project", {}), "format_sql")
    profiles, tables = read_profiles(reader)
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


def _check_top_level(reader: TomlFile) -> None:
    for key in reader.doc:
        if key not in ("project", "profiles"):
            hint = did_you_mean(key, ["project", "profiles"])
            detail = f"flow.toml has no `{key}`: it holds `[project]` and `[profiles.*]` tables"
            reader.invalid((key,), detail, hint)


def _project(root: Path, reader: TomlFile) -> tuple[str, str | None]:
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


def _allow_paths(reader: TomlFile) -> tuple[str, ...]:
    """`[project] allow_paths`: a list of folders (absolute, `~/...`, or relative to the
    root) that paths may name although they lie outside the project root."""
    table = reader.doc.get("project", {})
    value = table.get("allow_paths", []) if isinstance(table, dict) else []
    if isinstance(value, list) and all(isinstance(item, str) and item for item in value):
        return tuple(value)
    detail = '`allow_paths` must be a list of folder paths, like `["/data/exports"]`'
    reader.invalid(("project", "allow_paths"), detail)
    return ()


def _string(reader: TomlFile, table: Mapping[str, Any], key: str) -> str | None:
    value = table.get(key)
    if value is None or isinstance(value, str):
        return value
    reader.invalid(("project", key), f"`{key}` in `[project]` must be a string")
    return None


def _project_flag(reader: TomlFile, table: Any, key: str) -> bool:
    value = table.get(key, False) if isinstance(table, dict) else False
    if isinstance(value, bool):
        return value
    reader.invalid(("project", key), f"`{key}` in `[project]` must be `true` or `false`")
    return False


# --- selecting profiles -----------------------------------------------------------------------


def _select(config: ProjectConfig, profile: str | None, reader: TomlFile) -> list[str]:
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


def _named(config: ProjectConfig, profile: str, reader: TomlFile) -> list[str]:
    if profile in config.profiles:
        return [profile]
    hint = did_you_mean(profile, [*config.profiles, "all"])
    reader.diags.report("F0602", point(reader.file), hint=hint, name=profile)
    return []


# --- the environment --------------------------------------------------------------------------


def _environment(root: Path, env: Mapping[str, str] | None, diags: Diagnostics) -> dict[str, str]:
    """`.env` in the project root, overridden by the real environment (or `env`)."""
    dotenv = root / ".env"
    return variables.environment(_read_dotenv(dotenv, diags) if dotenv.is_file() else {}, env)


def _read_dotenv(path: Path, diags: Diagnostics) -> dict[str, str]:
    try:
        return variables.read_dotenv(path)
    except (OSError, UnicodeDecodeError) as error:
        detail = f"cannot read `{path}`: {getattr(error, 'strerror', None) or 'not UTF-8 text'}"
        diags.report("F0608", point(str(path)), detail=detail)
        return {}
