"""`flowc compile`: check a spec, plan it for one profile (or every one), write the plans.

The spec is analysed once, by the same passes as `flowc check` (a spec with errors gets no
plan); then the planner runs once per selected profile, its code generation reporting what a
target cannot express (F0308) at its position in the spec. Nothing is written unless every
profile compiled: `write` puts `plan.json` and one `NN_<step>.sql` file per SQL-bearing step
(NN: the step's position in the plan) in `DIR/<pipeline>/` (with `--profile all`:
`DIR/<pipeline>/<profile>/`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flowc.compiler import ir, plan
from flowc.compiler.analysis import bind as names
from flowc.compiler.analysis import project_file
from flowc.compiler.analysis.gc_pause import paused_gc
from flowc.compiler.analysis.sql_spans import sql_span
from flowc.compiler.codegen.generate import Problem
from flowc.compiler.diagnostics import Diagnostic, Diagnostics
from flowc.compiler.driver import reads
from flowc.compiler.driver.check import (
    Analysis,
    analyze,
    anchored,
    cached_clean,
    connection_types,
    display,
)
from flowc.compiler.driver.check_cache import CheckCache, spec_key
from flowc.project import config
from flowc.project.spans import point


@dataclass
class Compiled:
    """One profile's plan and the files that show it."""

    profile: str
    plan: plan.Plan

    def files(self) -> dict[str, str]:
        """File name -> text: `plan.json` and the SQL of each SQL-bearing step."""
        found = {"plan.json": plan.to_json(self.plan)}
        width = max(2, len(str(len(self.plan.steps))))
        for index, step in enumerate(self.plan.steps, start=1):
            if not isinstance(step, plan.PythonStep) and step.sql:
                found[f"{index:0{width}d}_{_file_name(step.id)}.sql"] = sql_file(step, self.plan)
        return found


def _file_name(step_id: str) -> str:
    """A step id as a portable file name: a check's `t.not_null(a, b)` is `t.not_null_a_b`."""
    return re.sub(r"[^A-Za-z0-9_.#-]+", "_", step_id).strip("_")


@dataclass
class CompileResult:
    spec: str
    diagnostics: list[Diagnostic]
    compiled: list[Compiled] = field(default_factory=list)
    every_profile: bool = False
    spec_ir: ir.Spec | None = None

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    @property
    def pipeline(self) -> str:
        return self.compiled[0].plan.pipeline.name if self.compiled else ""


def compile_spec(
    path: Path,
    *,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    learned: Mapping[str, tuple[ir.Column, ...]] | None = None,
) -> CompileResult:
    """Check and plan the spec at `path` for `profile` (None: the default one, "all": every
    one). With errors, `compiled` is empty. `learned`: the columns a run found for nodes that
    declare none (plan.Step.resolve_at_run); such a compile neither reads nor fills the cache."""
    root = config.find_project_root(path)
    project, profiles, config_diagnostics = project_file.load_project(
        root, profile=profile, env=env
    )
    file = display(path)
    diagnostics = Diagnostics()
    diagnostics.extend(anchored(list(config_diagnostics), root, file))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        diagnostics.report("F0107", point(file), path=file, reason=str(error))
        return CompileResult(file, diagnostics.sorted())
    scope = names.scope_of(root, profiles, allow=project.allow_paths)
    if learned:
        analysed = _Analysed(analyze(text, file, scope, diagnostics, learned=learned))
    else:
        analysed = _analyze(root, text, file, scope, profiles, diagnostics)
    analysis = analysed.analysis
    result = CompileResult(file, [], every_profile=profile == "all", spec_ir=analysis.spec)
    if diagnostics.has_errors or analysis.spec.pipeline is None:
        result.diagnostics = diagnostics.sorted()
        return result
    with paused_gc():
        _plan_all(analysis, project.name, profiles, result, diagnostics, analysed.known)
    result.diagnostics = diagnostics.sorted()
    if result.has_errors:
        result.compiled = []
    elif analysed.remember is not None:
        analysed.remember()
    return result


@dataclass
class _Analysed:
    analysis: Analysis
    known: set[str] | None = None  # the nodes whose columns were inferred (None: all)
    remember: Callable[[], None] | None = None  # puts a full analysis in the check cache


def _analyze(
    root: Path,
    text: str,
    file: str,
    scope: names.Scope,
    profiles: list[config.Profile],
    diagnostics: Diagnostics,
) -> _Analysed:
    """The analysis of the spec, shared with `flowc check` through its cache.

    When `flowc check` found this very spec clean for these profiles (its cache entry is
    valid: same text, compiler, connection types and files read), its diagnostics stand and
    the schema pass, the costliest, infers only the columns the plan shows. Anything odd
    (an error after all) falls back to the full analysis. A full analysis of a spec that
    then compiles without error is what check would find (check plans the same profiles with
    the same planner), so it is remembered for the next check or compile.
    """
    from flowc.compiler.planning.planner import columns_needed

    key = spec_key(text, connection_types(profiles))
    cached = cached_clean(root, file, key)
    if cached is not None:
        found = Diagnostics()
        needed: set[str] = set()

        # Postgres and BigQuery SQL names every column as its definition spells it, so the
        # plan for them needs every node's columns
        respelled = any(c.type != "duckdb" for p in profiles for c in p.connections.values())

        def wanted(spec: ir.Spec) -> set[str]:
            needed.update({n.name for n in spec.nodes} if respelled else columns_needed(spec))
            return needed

        analysis = analyze(text, file, scope, found, columns_of=wanted)
        if not found.has_errors:
            diagnostics.extend(cached)
            return _Analysed(analysis, needed)
    found = Diagnostics()
    with reads.recording() as recorded:
        analysis = analyze(text, file, scope, found)
    diagnostics.extend(found)

    def remember() -> None:
        cache = CheckCache(root)
        cache.store(file, key, recorded, list(found))
        cache.save()

    return _Analysed(analysis, remember=remember)


def _plan_all(
    analysis: Analysis,
    project: str,
    profiles: list[config.Profile],
    result: CompileResult,
    diagnostics: Diagnostics,
    known: set[str] | None = None,
) -> None:
    from flowc.compiler.planning.planner import plan_spec

    for index, chosen in enumerate(profiles):
        planned = plan_spec(
            analysis.spec,
            analysis.trees,
            analysis.order,
            project=project,
            profile=chosen,
            consume=index == len(profiles) - 1,
            known=known,
        )
        for problem in planned.problems:
            report_problem(problem, analysis.spec, chosen, diagnostics)
        result.compiled.append(Compiled(chosen.name, planned.plan))


def report_problem(
    problem: Problem, spec: ir.Spec, profile: config.Profile, out: Diagnostics
) -> None:
    node = spec.node(problem.node)
    body = node.sql if isinstance(node, ir.TransformNode) else None
    span = node.name_span if node is not None else point(spec.file)
    if body is not None:
        span = body.span if problem.start is None else sql_span(body, *_extent(problem, body))
    hint = problem.hint or "run the node on a connection whose engine has it (`target = ...`)"
    out.report("F0308", span, hint=hint, detail=f"{problem.detail} (profile `{profile.name}`)")


def _extent(problem: Problem, body: ir.SqlBody) -> tuple[int, int]:
    """Offsets of the problem in the node's SQL text: found by its words when it has them."""
    start, end = problem.start or 0, problem.end
    if problem.find is None:
        return start, end
    window = body.text[start:end] if problem.find_last else body.text[start:]
    matches = list(re.finditer(problem.find, window, re.IGNORECASE))
    if not matches:  # where the search started (before: ended), so near the construct
        return (end, end + 1) if problem.find_last else (start, start + 1)
    found = matches[-1] if problem.find_last else matches[0]
    return start + found.start(), start + found.end()


def sql_file(step: plan.Step, compiled: plan.Plan) -> str:
    """A step's statements as one readable file."""
    kind = next((c.type for c in compiled.connections if c.name == step.connection), "")
    header = f"-- {step.id}: {step.kind} step on `{step.connection}` ({kind})"
    if isinstance(step, plan.Fusing) and step.fused:
        header += f"\n-- fused (ephemeral, inlined as CTEs): {', '.join(step.fused)}"
    sql = [] if isinstance(step, plan.PythonStep) else step.sql or []
    text = header + "\n\n" + ";\n\n".join(sql) + ";\n"
    incremental = step.incremental if isinstance(step, plan.SqlStep) else None
    if incremental is None:
        return text
    later = [
        incremental.watermark,
        *incremental.new_rows,
        incremental.duplicates,
        *incremental.update,
    ]
    since = (
        f"from {plan.SINCE}\n-- (the newest {incremental.time_column} less the lookback) on"
        if incremental.time_column
        else "all of the\n-- query's rows"
    )
    note = (
        f"-- later runs (incremental, {incremental.strategy}): the statements above build the "
        "table whole on the\n-- first run and with --full-refresh; afterwards these add the "
        f"new rows, {since}"
    )
    return f"{text}\n{note}\n\n" + ";\n\n".join(s for s in later if s) + ";\n"


def output_folder(result: CompileResult, out: Path, compiled: Compiled) -> Path:
    folder = out / result.pipeline
    return folder / compiled.profile if result.every_profile else folder


def write(result: CompileResult, out: Path) -> list[Path]:
    """Write every compiled profile under `out`; stale plan files there are removed first."""
    with paused_gc():
        return _write(result, out)


def _write(result: CompileResult, out: Path) -> list[Path]:
    written: list[Path] = []
    for compiled in result.compiled:
        folder = output_folder(result, out, compiled)
        folder.mkdir(parents=True, exist_ok=True)
        files = compiled.files()
        for old in os.scandir(folder):
            if old.name not in files and _PLAN_FILE.match(old.name):
                Path(old.path).unlink()
        for name, text in files.items():
            written.append(_write_text(folder / name, text))
    return written


_PLAN_FILE = re.compile(r"(plan\.json|\d+_.+\.sql)\Z")


def _write_text(path: Path, text: str) -> Path:
    """Write `text` as UTF-8 unless the file holds it already (so unchanged files keep their
    times, and a recompile writes only what changed); low-level calls: a plan has thousands
    of small files."""
    data = text.encode("utf-8")
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return path
    except OSError:
        pass
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(descriptor, data)
    finally:
        os.close(descriptor)
    return path
