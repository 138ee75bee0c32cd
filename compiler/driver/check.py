"""`flowc check`: run every analysis pass over every spec, offline, collecting diagnostics.

The passes run in a fixed order (`PASSES` documents it); each collects diagnostics and hands
the next a checked copy of the IR. Files are independent, so one file's errors never hide
another's.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowc.compiler import ir
from flowc.compiler.analysis import bind as names
from flowc.compiler.analysis import paths, project_file
from flowc.compiler.diagnostics import Diagnostic, Diagnostics
from flowc.compiler.driver import reads
from flowc.compiler.driver.check_cache import CheckCache, spec_key
from flowc.compiler.driver.memo import Memo
from flowc.project import config
from flowc.project.errors import UsageError
from flowc.project.spans import point

PASSES = (
    "config: flow.toml, profiles, connections, ${VAR} expansion",
    "parse: the Lark grammar, friendly syntax errors",
    "names: kinds, attributes, values, references to nodes, connections and files",
    "sql: SQL bodies parsed with sqlglot, edges inferred, :params found",
    "dag: cycles, topological order",
    "schema: columns propagated through every transform, expect checks",
    "params: defaults typed, unused parameters",
    "schedule: cron expression, durations",
    "tests: `test` blocks against the nodes they run and read",
)

_SKIP_DIRS = {".flowc", ".venv", ".git", "node_modules", "__pycache__", "build"}


@dataclass
class Project:
    root: Path
    scope: names.Scope
    diagnostics: list[Diagnostic]
    cache: CheckCache | None = None
    name: str = ""
    profiles: list[config.Profile] = field(default_factory=list)

    def connection_types(self) -> dict[str, frozenset[str]]:
        return connection_types(self.profiles)


def connection_types(profiles: Sequence[config.Profile]) -> dict[str, frozenset[str]]:
    """Each profile's connections as `name:type`: what a cached result depends on."""
    return {
        p.name: frozenset(f"{n}:{c.type}" for n, c in p.connections.items()) | p.names
        for p in profiles
    }


@dataclass
class CheckResult:
    diagnostics: list[Diagnostic]
    files: list[str]

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)


def discover(paths: Sequence[Path], exclude: Sequence[str] = ()) -> list[Path]:
    """The .flow files named by `paths`: files as given, folders searched below, leaving out
    what `exclude` names and what the folder's own settings exclude (`excluded_in`)."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            patterns = [*_relative_to(exclude, path), *excluded_in(path)]
            found.extend(f for f in _flow_files(path) if not _excluded(f, path, patterns))
        else:
            raise UsageError(f"no such file or folder: {path}")
    if not found:
        raise UsageError("no .flow files found under " + ", ".join(str(p) for p in paths))
    return sorted(dict.fromkeys(found))


def excluded_in(folder: Path) -> list[str]:
    """The paths a folder's settings leave out of a search: `exclude` in `[project]` of its
    flow.toml, or in `[tool.flowc]` of its pyproject.toml (for a repository that holds
    projects), relative to the folder. Unreadable files exclude nothing (`flowc check`
    reports a broken flow.toml itself)."""
    patterns: list[str] = []
    for name, keys in (("flow.toml", ("project",)), ("pyproject.toml", ("tool", "flowc"))):
        try:
            table: Any = tomllib.loads((folder / name).read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        for key in keys:
            table = table.get(key, {}) if isinstance(table, dict) else {}
        listed = table.get("exclude", []) if isinstance(table, dict) else []
        patterns += [p for p in listed if isinstance(p, str)] if isinstance(listed, list) else []
    return patterns


def _relative_to(exclude: Sequence[str], folder: Path) -> list[str]:
    """`--exclude` paths (relative to the current folder) as paths relative to `folder`."""
    found = []
    for pattern in exclude:
        absolute = Path(pattern).absolute()
        try:
            found.append(absolute.relative_to(folder.absolute()).as_posix())
        except ValueError:
            found.append(pattern)  # a glob such as `*/broken`, or outside: matched as written
    return found


def _excluded(file: Path, folder: Path, patterns: Sequence[str]) -> bool:
    relative = file.relative_to(folder).as_posix()
    for pattern in patterns:
        pattern = pattern.strip("/").removeprefix("./")
        if relative == pattern or relative.startswith(pattern + "/"):
            return True
        if fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(relative, pattern + "/*"):
            return True
    return False


def _flow_files(folder: Path) -> list[Path]:
    files = []
    for directory, subdirs, filenames in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIP_DIRS and not d.startswith("."))
        files += [Path(directory) / f for f in filenames if f.endswith(".flow")]
    return files


def check_paths(
    paths: Sequence[Path],
    *,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    use_cache: bool = True,
    exclude: Sequence[str] = (),
) -> CheckResult:
    """Check every spec under `paths` for `profile` (None: the default, "all": every one)."""
    files = discover(paths, exclude)
    projects: dict[Path, Project] = {}
    collected: list[Diagnostic] = []
    for path in files:
        root = config.find_project_root(path)
        if root not in projects:
            projects[root] = load_project(root, profile, env, use_cache=use_cache)
            collected += anchored(projects[root].diagnostics, root, display(path))
        collected += check_file(path, projects[root])
    for project in projects.values():
        if project.cache is not None:
            project.cache.save()
    ordered = sorted(set(collected), key=Diagnostic.sort_key)
    return CheckResult(diagnostics=ordered, files=[display(f) for f in files])


def anchored(diagnostics: list[Diagnostic], root: Path, spec: str) -> list[Diagnostic]:
    """A project without flow.toml has no file to point at: report at the spec instead."""
    here = point(spec)
    return [
        d.model_copy(update={"span": here}) if d.span.file == str(root) else d for d in diagnostics
    ]


def load_project(
    root: Path, profile: str | None, env: Mapping[str, str] | None, *, use_cache: bool = False
) -> Project:
    project, profiles, diagnostics = project_file.load_project(root, profile=profile, env=env)
    return Project(
        root=root,
        scope=names.scope_of(root, profiles, allow=project.allow_paths),
        diagnostics=list(diagnostics),
        cache=CheckCache(root) if use_cache else None,
        name=project.name,
        profiles=profiles,
    )


def check_file(path: Path, project: Project) -> list[Diagnostic]:
    """The diagnostics of one spec, from the cache when nothing it depends on changed."""
    file = display(path)
    diagnostics = Diagnostics()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        diagnostics.report("F0107", point(file), path=file, reason=_reason(error))
        return list(diagnostics)
    key = spec_key(text, project.connection_types())
    cached = project.cache.lookup(file, key) if project.cache else None
    if cached is not None:
        return cached
    with reads.recording() as recorded:
        analysis = analyze(text, file, project.scope, diagnostics)
        if not diagnostics.has_errors:
            check_dialects(analysis, project, diagnostics)
    if project.cache is not None:
        project.cache.store(file, key, recorded, list(diagnostics))
    return list(diagnostics)


def cached_clean(root: Path, file: str, key: str) -> list[Diagnostic] | None:
    """What `flowc check` found in spec `file`, from the check cache, when its entry is still
    valid for `key` (`spec_key`: the text and the profiles) and found no error; else None."""
    found = CheckCache(root).lookup(file, key)
    if found is None or any(d.severity == "error" for d in found):
        return None
    return found


@dataclass
class Analysis:
    """A checked spec with what later stages reuse: the parsed SQL trees and the DAG order."""

    spec: ir.Spec
    trees: dict[str, Any]  # node name -> its parsed sqlglot query (sql.SqlTrees)
    order: list[str]


def analyze(
    text: str,
    file: str,
    scope: names.Scope,
    diagnostics: Diagnostics,
    *,
    columns_of: Callable[[ir.Spec], Collection[str]] | None = None,
    learned: Mapping[str, tuple[ir.Column, ...]] | None = None,
    memo: Memo | None = None,
) -> Analysis:
    """All passes over one spec's text, in order. With `columns_of`, the schema pass infers
    only the columns of the nodes it names (and of what they read): see `infer_schemas`,
    which also takes `learned`. `memo`: what an earlier analysis of this spec can lend."""
    # Imported here so that a fully cached check never loads Lark or sqlglot.
    from flowc.compiler.analysis.gc_pause import paused_gc

    with paused_gc():
        analysis = _passes(text, file, scope, diagnostics, columns_of, learned, memo)
    if memo is not None:
        memo.trim()
    return analysis


def _passes(
    text: str,
    file: str,
    scope: names.Scope,
    diagnostics: Diagnostics,
    columns_of: Callable[[ir.Spec], Collection[str]] | None,
    learned: Mapping[str, tuple[ir.Column, ...]] | None = None,
    memo: Memo | None = None,
) -> Analysis:
    from flowc.compiler.analysis import (
        dag,
        extract,
        params,
        schedule,
        schema,
        sql,
        tables,
        testblocks,
    )
    from flowc.compiler.syntax.parser import parse

    document, syntax = parse(text, file, memo=memo)
    diagnostics.extend(syntax)
    spec = names.bind(document, scope, diagnostics, memo)
    paths.check_paths(spec, scope.root, scope.allow, scope.warehouses, diagnostics)
    dialect = spec.pipeline.dialect if spec.pipeline else "duckdb"
    tables.check_table_names(spec, dialect, scope.types, diagnostics)
    extract.check_http(spec, diagnostics)
    spec, trees = sql.analyze_sql(spec, diagnostics, dialect=dialect, memo=memo)
    order = dag.order(spec, diagnostics)
    spec = schema.infer_schemas(
        spec,
        trees,
        diagnostics,
        dialect=dialect,
        order=order,
        only=columns_of,
        learned=learned,
        memo=memo,
    )
    spec = params.check_params(spec, diagnostics)
    spec = schedule.check_schedule(spec, diagnostics)
    spec = testblocks.check_tests(spec, diagnostics)
    return Analysis(spec=spec, trees=dict(trees), order=order)


def check_dialects(analysis: Analysis, project: Project, diagnostics: Diagnostics) -> None:
    """SQL that a target engine cannot express is an error of `check` too, for every profile
    checked, not a surprise at compile time. Only profiles whose connections in use speak
    another dialect than the spec's are planned for it: the rest need no translation."""
    from flowc.compiler.analysis.gc_pause import paused_gc
    from flowc.compiler.driver.compile import report_problem
    from flowc.compiler.planning.planner import plan_spec

    spec = analysis.spec
    if spec.pipeline is None:
        return
    used = _connections_used(spec)
    for profile in project.profiles:
        types = {profile.connections[n].type for n in used if n in profile.connections}
        if types <= {spec.pipeline.dialect}:
            continue
        with paused_gc():
            planned = plan_spec(
                spec, analysis.trees, analysis.order, project=project.name, profile=profile
            )
        for problem in planned.problems:
            report_problem(problem, spec, profile, diagnostics)


def _connections_used(spec: ir.Spec) -> set[str]:
    default = spec.pipeline.target.dotted if spec.pipeline and spec.pipeline.target else "local"
    used = {default}
    for node in spec.nodes:
        if node.target is not None:
            used.add(node.target.dotted)
        for call in (getattr(node, "from_", None), getattr(node, "to", None)):
            if isinstance(call, ir.Call) and call.name == "table" and call.args:
                connection = call.args[0]
                if isinstance(connection, ir.Ref):
                    used.add(connection.dotted)
    return used


def display(path: Path) -> str:
    """How a path is shown in diagnostics: relative to the working folder when below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _reason(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text (byte {error.start})"
    return error.strerror or str(error) if isinstance(error, OSError) else str(error)
