"""The command line: parse arguments, call the compiler (and later the runtime), print.

Exit codes: 0 clean (warnings allowed), 1 errors in the specs or a failed run, 2 usage, 3
internal error, 128 + N interrupted by signal N (130: Ctrl-C). Nothing a user types may end in
a Python traceback: a flowc bug is reported as an internal error, with the traceback saved to
a file to attach to a bug report. A run always ends with its summary (`_report`).
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # as shells report a process ended by SIGINT
EXIT_BUSY = 75  # EX_TEMPFAIL: another process held the warehouse; running again can succeed
_REPORT_URL = "https://github.com/flowc/flowc/issues"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flowc")
def cli() -> None:
    """flowc: compile declarative .flow pipelines into SQL for DuckDB, Postgres and BigQuery."""


@cli.command()
@click.argument("folder", type=click.Path(path_type=Path))
def init(folder: Path) -> None:
    """Scaffold a working project in FOLDER: flow.toml, specs/, blocks/ and sample data."""
    from flowc.scaffold import scaffold

    for path in scaffold(folder):
        click.echo(f"created {path}")
    into = "" if folder.resolve() == Path.cwd().resolve() else f"  cd {folder}\n"
    click.echo(f"\nNext:\n{into}  flowc check\n  flowc test\n  flowc run")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--profile", "-p", default=None, help="Profile of flow.toml to check, or `all`.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="How to print diagnostics.",
)
@click.option("--max-diagnostics", default=50, show_default=True, help="Cap for text output.")
@click.option(
    "--exclude",
    multiple=True,
    metavar="PATH",
    help="Leave out a path (or glob) when searching folders; repeatable.",
)
def check(
    paths: tuple[Path, ...],
    profile: str | None,
    output_format: str,
    max_diagnostics: int,
    exclude: tuple[str, ...],
) -> None:
    """Parse and validate .flow specs offline: files, or folders searched for *.flow."""
    from flowc.compiler import render
    from flowc.compiler.driver.check import check_paths

    # sqlglot logs a warning when it falls back to a raw command; flowc reports those itself.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)

    result = check_paths(list(paths) or [Path()], profile=profile, exclude=exclude)
    shown = [*result.files, *(d.span.file for d in result.diagnostics)]
    secrets = _secrets(shown) if result.diagnostics else frozenset()
    if output_format == "json":
        click.echo(render.render_json(result.diagnostics, len(result.files), secrets))
    elif output_format == "github":
        if result.diagnostics:
            click.echo(render.render_github(result.diagnostics, secrets))
        click.echo(render.summary(result.diagnostics, len(result.files)))
    else:
        color = sys.stdout.isatty()
        text = render.render_text(
            result.diagnostics,
            render.file_lines({}),
            limit=max_diagnostics,
            color=color,
            secrets=secrets,
        )
        if text:
            click.echo(text)
        click.echo(render.summary(result.diagnostics, len(result.files)))
    sys.exit(EXIT_ERRORS if result.has_errors else EXIT_OK)


@cli.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "-k",
    "pattern",
    default=None,
    metavar="PATTERN",
    help="Only tests whose name or FILE::TEST holds PATTERN (or matches it, with * ? [).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "github", "junit"]),
    default="text",
    show_default=True,
    help="How to print the results.",
)
@click.option(
    "--profile",
    "-p",
    default=None,
    help="Run SQL tests on this profile's engine (default: in-memory DuckDB).",
)
@click.option(
    "--expect",
    "run_expect",
    is_flag=True,
    help="Also run `expect` checks: the tested node's on its result, and the spec's on the "
    "data built for the profile.",
)
def test_command(
    paths: tuple[Path, ...],
    pattern: str | None,
    output_format: str,
    profile: str | None,
    run_expect: bool,
) -> None:
    """Run the `test` blocks of .flow specs (files, or folders searched for *.flow) on their
    fixture rows, offline: exit 0 when all pass, 1 when any fails."""
    from flowc.runtime.testing import testreport
    from flowc.runtime.testing.testrun import Options, run_tests

    if profile == "all":
        raise click.UsageError("--profile names one profile")
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    report = run_tests(
        list(paths) or [Path()], Options(pattern=pattern, profile=profile, expect=run_expect)
    )
    if output_format == "json":
        click.echo(testreport.render_json(report))
    elif output_format == "github":
        click.echo(testreport.render_github(report))
    elif output_format == "junit":
        click.echo(testreport.render_junit(report))
    else:
        click.echo(testreport.render_text(report, color=sys.stdout.isatty()))
    sys.exit(EXIT_OK if report.ok else EXIT_ERRORS)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--check", "check_only", is_flag=True, help="Write nothing; exit 1 if any would change."
)
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff; write nothing.")
def fmt(paths: tuple[Path, ...], check_only: bool, show_diff: bool) -> None:
    """Lay out .flow files canonically: files, or folders searched for *.flow."""
    import difflib

    from flowc.compiler import render
    from flowc.compiler.driver.check import discover, display
    from flowc.compiler.syntax.fmt import format_file

    changed, broken = 0, 0
    files = discover(list(paths) or [Path()])
    for path in files:
        name = display(path)
        outcome = format_file(path, name)
        if outcome.diagnostics:
            broken += 1
            click.echo(render.render_text(outcome.diagnostics, render.file_lines({})), err=True)
            continue
        if outcome.before == outcome.after:
            continue
        changed += 1
        if show_diff:
            lines = difflib.unified_diff(
                outcome.before.splitlines(keepends=True),
                outcome.after.splitlines(keepends=True),
                fromfile=name,
                tofile=name,
            )
            click.echo("".join(lines), nl=False)
        elif check_only:
            click.echo(f"would reformat {name}")
        else:
            path.write_text(outcome.after, encoding="utf-8")
            click.echo(f"reformatted {name}")
    verb = "would be reformatted" if check_only or show_diff else "reformatted"
    click.echo(
        f"{changed} of {len(files)} files {verb}" + (f", {broken} not parsed" if broken else "")
    )
    sys.exit(EXIT_ERRORS if broken or (changed and (check_only or show_diff)) else EXIT_OK)


@cli.command()
def lsp() -> None:
    """Run the language server on stdin/stdout (editors start it: see docs/editors.md)."""
    from flowc.lsp import serve

    serve()


@cli.command(name="compile")
@click.argument("spec", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--profile", "-p", default=None, help="Profile of flow.toml, or `all`.")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("build"),
    show_default=True,
    help="Folder to write DIR/<pipeline>/plan.json and the SQL files into.",
)
def compile_command(spec: Path, profile: str | None, output: Path) -> None:
    """Compile SPEC into an execution plan (plan.json) and one SQL file per SQL step."""
    from flowc.compiler.driver.compile import output_folder, write

    result = _compiled(spec, profile)
    write(result, output)
    for compiled in result.compiled:
        folder = output_folder(result, output, compiled)
        sql_steps = sum(1 for s in compiled.plan.steps if s.kind != "python" and s.sql)
        click.echo(
            f"compiled {result.spec} for profile `{compiled.profile}`: "
            f"{len(compiled.plan.steps)} steps ({sql_steps} with SQL) -> {folder}/"
        )


@cli.command()
@click.argument("spec", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--profile", "-p", default=None, help="Profile of flow.toml.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["mermaid", "dot"]),
    default="mermaid",
    show_default=True,
)
def graph(spec: Path, profile: str | None, output_format: str) -> None:
    """Print the DAG of SPEC (Mermaid or Graphviz dot)."""
    from flowc.compiler.driver.graph import render_graph

    result = _compiled(spec, profile, single=True)
    assert result.spec_ir is not None
    click.echo(render_graph(result.spec_ir, result.compiled[0].plan, output_format), nl=False)


@cli.command()
@click.argument("spec", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--profile", "-p", default=None, help="Profile of flow.toml, or `all`.")
@click.option(
    "--skip-unchanged",
    is_flag=True,
    help="Also say which steps `flowc run --skip-unchanged` would leave out.",
)
def explain(spec: Path, profile: str | None, skip_unchanged: bool) -> None:
    """Explain the plan of SPEC: steps, placement, materialization, fused CTEs."""
    from flowc.compiler.driver.explain import explain as explain_plan

    result = _compiled(spec, profile)
    texts = [explain_plan(c.plan) for c in result.compiled]
    if skip_unchanged:
        texts = [
            t + _unchanged_text(c.plan, spec) for t, c in zip(texts, result.compiled, strict=True)
        ]
    click.echo("\n".join(texts), nl=False)


def _unchanged_text(plan: Any, spec: Path) -> str:
    """What `--skip-unchanged` would leave out of a run of `plan` (default parameters)."""
    from flowc.project import config
    from flowc.runtime.run.executor import bind_params
    from flowc.runtime.run.stages import unchanged_steps
    from flowc.runtime.state import StateStore

    root = config.find_project_root(spec)
    store = StateStore.open(root)
    try:
        params = bind_params(plan.params, {})
        unchanged = unchanged_steps(plan, store, params, root)
        last = store.published_steps(plan.pipeline.name, plan.profile)
    finally:
        store.close()
    lines = [f"\nwith --skip-unchanged: {len(unchanged)} of {len(plan.steps)} steps left out"]
    for step in plan.steps:
        if step.id in unchanged:
            lines.append(f"  {step.id}: unchanged since run {last[step.id].run_id}: skipped")
        else:
            lines.append(f"  {step.id}: runs")
    return "\n".join(lines) + "\n"


@cli.command()
@click.argument("spec", required=False, type=click.Path(path_type=Path))
@click.option("--profile", "-p", default=None, help="Profile of flow.toml.")
@click.option(
    "--param",
    "param_texts",
    multiple=True,
    metavar="NAME=VALUE",
    help="A pipeline parameter's value, parsed by its declared type (repeatable).",
)
@click.option(
    "--select",
    "selects",
    multiple=True,
    metavar="[+]NODE[+]",
    help="Run only NODE (NODE+: and downstream, +NODE: and upstream); repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per step event.")
@click.option(
    "--full-refresh", is_flag=True, help="Rebuild incremental tables whole from their query."
)
@click.option(
    "--resume",
    "resume_id",
    is_flag=False,
    flag_value="last",
    default=None,
    metavar="[RUN_ID|last]",
    help="Finish a failed or killed run: its finished steps are not run again.",
)
@click.option(
    "--skip-unchanged",
    is_flag=True,
    help="Leave out steps whose work and inputs are those of their last successful run.",
)
@click.option(
    "--jobs",
    "-j",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="How many independent steps run at once.",
)
def run(
    spec: Path | None,
    profile: str | None,
    param_texts: tuple[str, ...],
    selects: tuple[str, ...],
    as_json: bool,
    full_refresh: bool,
    resume_id: str | None,
    skip_unchanged: bool,
    jobs: int,
) -> None:
    """Compile SPEC and run it: all or nothing (a failed run changes no table or file).

    SPEC may be a folder (default: the current one) holding one spec, or a spec's path
    without `.flow`."""
    import pyarrow as pa
    from flowc.project.errors import FlowcError
    from flowc.runtime.run.executor import bind_params, find_resumable, run_plan, select_steps

    # Arrow's default allocator (mimalloc) keeps freed memory for reuse; the C library's
    # gives it back, so batches that come and go do not add up: peak RSS of a run is about
    # 10% lower (benchmarks/README.md), its time the same
    pa.set_memory_pool(pa.system_memory_pool())
    given: dict[str, str] = {}
    for text in param_texts:
        name, equals, value = text.partition("=")
        if not equals or not name.strip():
            raise click.UsageError(f"--param wants NAME=VALUE, not `{text}`")
        given[name.strip()] = value
    spec = _spec_to_run(spec)
    plan, chosen, root = _plan_to_run(spec, profile)
    try:
        resumed = find_resumable(plan, root, resume_id) if resume_id else None
        params = bind_params(plan.params, given)
        if resumed is not None:
            params = _resumed_params(plan, resumed, params, given)
        only = select_steps(plan, list(selects)) if selects else None
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    faulthandler.enable()  # a crash in a C extension shows the Python frames where it was
    width = max((len(step.id) for step in plan.steps), default=4)
    progress = _Progress(as_json=as_json, live=not as_json and sys.stdout.isatty(), width=width)
    try:
        _readable_history(root)
        with progress:
            outcome = run_plan(
                plan,
                chosen,
                root,
                params=params,
                listener=progress.event,
                only=only,
                full_refresh=full_refresh,
                resume=resumed,
                skip_unchanged=skip_unchanged,
                jobs=jobs,
            )
    except FlowcError as error:  # before the run began (its history cannot be opened, say)
        if as_json:
            click.echo(_run_event(None, "failed", None, str(error)))
        raise
    ran = len(plan.steps) if only is None else len(only)
    sys.exit(_report(outcome, spec, ran, as_json=as_json, left_out=progress.unchanged()))


def _spec_to_run(given: Path | None) -> Path:
    """The spec `flowc run` means: a file as given, `NAME` for `NAME.flow`, or the one spec of
    a folder (the current one without SPEC); several specs there: a usage error naming them."""
    from flowc.compiler.driver.check import discover
    from flowc.project.errors import UsageError

    folder = given or Path()
    if given is not None and not given.exists():
        with_suffix = given.with_name(given.name + ".flow")
        if with_suffix.is_file():
            return with_suffix
        raise click.UsageError(f"no such spec file or folder: {given}")
    if not folder.is_dir():
        return folder
    try:
        specs = discover([folder])
    except UsageError:  # no .flow file there
        specs = []
    if len(specs) == 1:
        return specs[0]
    if not specs:
        raise click.UsageError(f"no .flow spec under {folder}: name one, `flowc run SPEC`")
    listed = "\n".join(f"  flowc run {s}" for s in specs)
    raise click.UsageError(f"{folder} holds {len(specs)} specs; say which to run:\n{listed}")


def _history_root(given: Path | None, near: Path | None) -> Path:
    """The project whose run history `flowc runs` and `flowc show` read: `--project`, else
    the project of `near` (the current folder); a folder that is no project is an error, not
    an empty history."""
    from flowc.project import config

    if given is not None:
        return given
    root = config.find_project_root(near or Path.cwd())
    if not (root / "flow.toml").is_file() and not (root / ".flowc" / "state.db").is_file():
        raise click.UsageError(
            f"not in a flowc project: no flow.toml in {Path(root).absolute()} or above, and no "
            "run history there; cd into a project or pass --project DIR"
        )
    return root


def _readable_history(root: Path) -> None:
    """A run never waits on a damaged run history: it is moved aside (kept), with a word."""
    from flowc.runtime.state import StateStore

    store = StateStore.open(root, recover=True)
    store.close()
    if store.recovered:
        click.echo(f"warning: {store.recovered}", err=True)


def _run_event(run_id: str | None, status: str, step: str | None, error: str | None) -> str:
    fields = {"run_id": run_id, "status": status, "failed_step": step, "error": error}
    return json.dumps({"event": "run", **fields})


def _report(outcome: Any, spec: Path, ran: int, *, as_json: bool, left_out: int = 0) -> int:
    """Print how a run ended (always: the last `run` event with `--json`, the summary) and
    return the exit status that says so."""
    if as_json:
        click.echo(_run_event(outcome.run_id, outcome.status, outcome.failed_step, outcome.error))
    if outcome.status == "succeeded":
        if not as_json:
            click.echo(f"run {outcome.run_id} succeeded: {_work_done(ran, left_out)}")
        return EXIT_OK
    resume = f"`flowc run {spec} --resume`"
    unchanged = "nothing was changed (every table and file is as before the run)"
    if outcome.status == "interrupted":
        where = f" at step `{outcome.failed_step}`" if outcome.failed_step else ""
        click.echo(
            f"run {outcome.run_id} {outcome.error}{where}; {unchanged}\n"
            f"hint: {resume} finishes it: the steps that finished are not run again",
            err=True,
        )
        return 128 + (outcome.signal or 2)
    if outcome.unreachable:
        click.echo(f"run {outcome.run_id} failed; {unchanged}:\n{outcome.error}", err=True)
        click.echo(
            f"hint: check connection `{outcome.unreachable}` in flow.toml and that its server "
            f"is up, then run `flowc run {spec}` again",
            err=True,
        )
        return EXIT_ERRORS
    click.echo(
        f"run {outcome.run_id} failed at step `{outcome.failed_step}`; {unchanged}:\n"
        f"{outcome.error}",
        err=True,
    )
    if outcome.crash is not None:
        return _internal_error(outcome.crash)
    if outcome.busy:
        click.echo(f"hint: run `flowc run {spec}` again once the other run is over", err=True)
        return EXIT_BUSY
    if outcome.hint:
        click.echo(f"hint: {outcome.hint}", err=True)
        return EXIT_ERRORS
    click.echo(f"hint: fix the cause, then {resume} runs only what did not finish", err=True)
    return EXIT_ERRORS


def _work_done(ran: int, unchanged: int) -> str:
    """What a succeeded run did, saying so when `--skip-unchanged` left steps out."""
    if unchanged and unchanged >= ran:
        return f"nothing to do: all {ran} steps unchanged since their last successful run"
    if unchanged:
        return f"{ran - unchanged} steps ran, {unchanged} unchanged (left out)"
    return f"{ran} steps"


# What the `rows` of a step counts, by its kind (a check's are the rows that fail it).
_ROWS = {
    "load": "loaded",
    "sql": "built",
    "python": "returned",
    "check": "failing",
    "transfer": "copied",
    "export": "written",
}


def _rows_text(kind: str | None, rows: int | None) -> str:
    if rows is None:
        return ""
    word = _ROWS.get(kind or "", "rows")
    return f"{rows} {word}"


def _print_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[str] = ()
) -> None:
    """Rows under a header, in aligned columns (those named in `right` right-aligned), as
    plain text: `flowc runs` and `flowc show` are read in terminals and in logs alike."""
    import io

    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="")
    for name in header:
        table.add_column(name, justify="right" if name in right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    text = io.StringIO()
    Console(file=text, width=100_000, color_system=None, highlight=False).print(table)
    click.echo("\n".join(line.rstrip() for line in text.getvalue().splitlines()))


def _resumed_params(
    plan: Any, resumed: Any, params: dict[str, object], given: dict[str, str]
) -> dict[str, object]:
    """A resumed run's parameter values: those it started with; `--param` may repeat them,
    not change them (the finished steps used them)."""
    from flowc.runtime.run.executor import bind_params

    kept = {k: str(v) for k, v in resumed.params.items() if v is not None}
    before = bind_params(plan.params, kept)
    changed = sorted(k for k in given if params.get(k) != before.get(k))
    if changed:
        name = changed[0]
        raise ValueError(
            f"--param {name}: run {resumed.id} ran with {name}={before.get(name)}; a resumed "
            "run keeps its parameters (start a new run to change them)"
        )
    return before


class _Progress:
    """How a run's step events are shown: plain lines, JSON lines, or a live table. Step
    names take `width` columns (the plan's longest), so that long ones do not shift the rest."""

    def __init__(self, *, as_json: bool, live: bool, width: int = 30) -> None:
        self.as_json = as_json
        self.width = width
        self.rows: dict[str, tuple[str, str, str, str]] = {}
        self._live: Any = None
        if live:
            from rich.live import Live

            self._live = Live(self._table(), refresh_per_second=8, transient=False)

    def __enter__(self) -> _Progress:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc_info)

    def unchanged(self) -> int:
        """How many steps `--skip-unchanged` left out."""
        return sum(1 for row in self.rows.values() if row[1] == "unchanged")

    def event(self, event: Any) -> None:
        rows = _rows_text(event.kind, event.rows)
        seconds = "" if event.seconds is None else f"{event.seconds:.2f}s"
        if self.as_json:
            click.echo(
                json.dumps(
                    {
                        "event": "step",
                        "step": event.step,
                        "node": event.node,
                        "kind": event.kind,
                        "status": event.status,
                        "rows": event.rows,
                        "seconds": event.seconds,
                        "message": event.message,
                    },
                    default=str,
                )
            )
            return
        self.rows[event.step] = (event.step, event.status, rows, seconds)
        if self._live is not None:
            self._live.update(self._table())
        elif event.status != "running":
            line = (
                f"{event.step:<{self.width}}  {event.status:<10} {rows or '-':>14} "
                f"{seconds or '-':>8}"
            )
            click.echo(line.rstrip())
        if event.status == "warned" and event.message:
            click.echo(f"warning: {event.step}: {event.message}", err=True)
        if event.status == "retrying" and event.message:
            click.echo(f"retrying: {event.step}: {event.message}", err=True)
        if event.status == "waiting" and event.message:  # another run holds the run lock
            click.echo(f"{event.step}: {event.message}", err=True)

    def _table(self) -> Any:
        from rich.table import Table

        table = Table()
        # a long step name folds inside its cell instead of pushing the table out of shape
        table.add_column("step", overflow="fold")
        table.add_column("status", no_wrap=True)
        table.add_column("rows", justify="right", no_wrap=True)
        table.add_column("time", justify="right", no_wrap=True)
        for row in self.rows.values():
            table.add_row(*row)
        return table


@cli.command()
@click.argument("spec", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--project",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The project folder (default: found from SPEC or the current folder).",
)
@click.option("--limit", default=20, show_default=True, help="How many runs to list.")
def runs(spec: Path | None, project: Path | None, limit: int) -> None:
    """List the latest runs of the project (of SPEC only, when given)."""
    from flowc.runtime.state import StateStore

    root = _history_root(project, spec)
    relative = None
    if spec is not None:
        relative = Path(os.path.relpath(spec.absolute(), root.absolute())).as_posix()
    store = StateStore.open(root)
    try:
        found = store.list_runs(spec=relative, limit=limit)
    finally:
        store.close()
    if not found:
        click.echo(f"no runs yet in {root}")
        return
    rows = []
    for record in found:
        took = f"{(record.ended - record.started).total_seconds():.1f}s" if record.ended else "-"
        params = " ".join(f"{k}={v}" for k, v in record.params.items())
        steps = str(record.steps)
        steps += f", {record.retries} retried" if record.retries else ""
        steps += f", resumes {record.resumes}" if record.resumes else ""
        rows.append(
            (
                record.id,
                record.status,
                record.pipeline,
                record.profile,
                f"{record.started:%Y-%m-%d %H:%M:%S}",
                took,
                steps,
                str(record.loaded),
                str(record.written),
                params,
            )
        )
    numbers = ("took", "steps", "rows loaded", "rows written")
    header = ("run", "status", "pipeline", "profile", "started", *numbers, "params")
    _print_table(header, rows, numbers)


@cli.command()
@click.argument("run_id", metavar="RUN_ID|last")
@click.option(
    "--project",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The project folder (default: found from the current folder).",
)
def show(run_id: str, project: Path | None) -> None:
    """Show one run (a unique prefix of its id will do; `last`: the latest) and its steps."""
    from flowc.runtime.state import StateStore

    root = _history_root(project, None)
    store = StateStore.open(root)
    try:
        ids = store.run_ids(run_id)
        detail = store.show_run(ids[0]) if len(ids) == 1 else None
    finally:
        store.close()
    if not ids:
        what = "no runs yet" if run_id == "last" else f"no run `{run_id}`"
        raise click.UsageError(f"{what} in {root}")
    if detail is None:
        listed = "\n".join(f"  {i}" for i in ids)
        raise click.UsageError(
            f"run id `{run_id}` is ambiguous: it begins the ids of {len(ids)}"
            f"{'+' if len(ids) == 10 else ''} runs; give more of it:\n{listed}"
        )
    record = detail.run
    params = " ".join(f"{k}={v}" for k, v in record.params.items())
    click.echo(f"run {record.id}: {record.status}")
    click.echo(f"pipeline {record.pipeline} ({record.spec}), profile {record.profile}")
    click.echo(f"started {record.started:%Y-%m-%d %H:%M:%S}  params {params or '-'}")
    if record.resumes:
        click.echo(f"resumes run {record.resumes}")
    retried = {step.step_id for step in detail.steps if step.attempt > 1}
    rows = []
    for step in detail.steps:
        took = "-" if step.seconds is None else f"{step.seconds:.2f}s"
        attempt = str(step.attempt) if step.step_id in retried else ""
        row = [step.step_id, step.kind, step.status, _rows_text(step.kind, step.rows) or "-"]
        rows.append([*row, took, *([attempt] if retried else [])])
    header = ("step", "kind", "status", "rows", "time", *(["attempt"] if retried else []))
    click.echo()
    _print_table(header, rows, ("rows", "time", "attempt"))
    for step in detail.steps:
        if step.error:
            attempt = f" (attempt {step.attempt})" if step.step_id in retried else ""
            click.echo(f"\n{step.step_id}{attempt}: {step.status}")
            for line in step.error.splitlines():
                click.echo(f"    {line}")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--profile", "-p", default=None, help="Profile of flow.toml (default: its default).")
@click.option("--list", "list_only", is_flag=True, help="Print the schedules and next runs; exit.")
@click.option("--once", is_flag=True, help="Start what is due now, wait for it, and exit.")
def schedule(paths: tuple[Path, ...], profile: str | None, list_only: bool, once: bool) -> None:
    """Run the pipelines of PATHS on their `schedule`, in the foreground (catch-up after a
    restart follows each pipeline's `catchup`). Stop with Ctrl-C or SIGTERM: runs going are
    interrupted and roll back."""
    import signal

    from flowc.runtime import scheduler

    jobs = scheduler.scheduled(_jobs(paths or (Path(),), profile))
    if not jobs:
        click.echo("nothing to schedule: no pipeline in these paths has a `schedule`", err=True)
        sys.exit(EXIT_ERRORS)
    if list_only:
        now = scheduler.SystemClock().now()
        for job in jobs:
            upcoming = f"{scheduler.next_slot(job.cron, now):%Y-%m-%d %H:%M} UTC"
            click.echo(f"{job.label}  {job.cron}  catchup={job.catchup}  next {upcoming}")
        return
    keeper = scheduler.Scheduler(jobs, log=_log_line)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a service manager's stop
    try:
        if once:
            keeper.start()
            keeper.tick()
            keeper.wait_for_runs()
        else:
            keeper.run_forever()
    except KeyboardInterrupt:
        keeper.stop()
        _log_line("scheduler stopped")
    finally:
        keeper.close()


def _jobs(paths: tuple[Path, ...], profile: str | None) -> list[Any]:
    from flowc.compiler.driver.check import discover
    from flowc.project import config
    from flowc.runtime import scheduler

    jobs = []
    for spec in discover(list(paths)):
        plan = _compiled(spec, profile, single=True).compiled[0].plan
        if plan.pipeline.schedule is None:
            continue
        jobs.append(
            scheduler.Job(
                spec=spec.resolve(),
                root=config.find_project_root(spec).resolve(),
                pipeline=plan.pipeline.name,
                profile=plan.profile,
                cron=plan.pipeline.schedule,
                catchup=plan.pipeline.catchup or scheduler.DEFAULT_CATCHUP,
            )
        )
    return jobs


def _log_line(text: str) -> None:
    from datetime import UTC, datetime

    click.echo(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} {text}")
    sys.stdout.flush()


def _plan_to_run(spec: Path, profile: str | None) -> tuple[Any, Any, Path]:
    """The plan `flowc run` carries out, its profile and the project root. The plan comes
    from the plan cache when nothing it depends on has changed since a clean compile
    (compiler/driver/plan_cache.py), else it is compiled (and cached); a spec or profile with errors
    ends here, as `_compiled` does."""
    from flowc.compiler import render
    from flowc.compiler.analysis import project_file
    from flowc.compiler.driver import plan_cache as plancache
    from flowc.compiler.driver.check import display
    from flowc.project import config

    if profile == "all" or not spec.is_file():
        _compiled(spec, profile, single=True)  # says what is wrong, and exits
    root = config.find_project_root(spec)
    project, profiles, problems = project_file.load_project(root, profile=profile)
    cacheable = len(profiles) == 1 and not any(d.severity == "error" for d in problems)
    try:
        text = spec.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        cacheable = False
        text = ""
    file = display(spec)
    if cacheable:
        hit = plancache.lookup(root, file, text, project.name, profiles[0])
        if hit is not None:
            plan, warnings = hit
            shown = render.render_compact(
                warnings, color=sys.stderr.isatty(), secrets=_secrets([spec])
            )
            if shown:
                click.echo(shown, err=True)
            return plan, profiles[0], root

    def compile_and_cache() -> Any:
        result = _compiled(spec, profile, single=True, compact=True)
        plan = result.compiled[0].plan
        if cacheable:
            plancache.store(root, file, text, project.name, profiles[0], plan, result.diagnostics)
        return plan

    return _aside(compile_and_cache), profiles[0], root


def _aside(make: Callable[[], Any]) -> Any:
    """The plan `make()` returns, made in a forked child process. Compiling builds parse
    trees and caches (about 140 MB for 2,000 nodes) that the C allocator keeps once they are
    freed, and a run would carry them to its end; the child takes them with it. What the
    child prints is printed; its exit status, when not 0, is this process's."""
    from flowc.compiler.plan import Plan, to_json

    if not hasattr(os, "fork"):
        return make()
    read, write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: exits here, whatever happens
        os.close(read)
        code = EXIT_INTERNAL
        try:
            with os.fdopen(write, "wb") as out:
                code = _guarded(lambda: out.write(to_json(make()).encode("utf-8")))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as source:
        data = source.read()
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code != EXIT_OK or not data:
        sys.exit(code if code > 0 else EXIT_INTERNAL)
    return Plan.model_validate_json(data)


def _compiled(
    spec: Path, profile: str | None, *, single: bool = False, compact: bool = False
) -> Any:
    """Compile `spec`; on errors print them (as `flowc check` does) and exit 1. `compact`:
    warnings alone are printed one line each (`flowc run` repeats them on every run)."""
    from flowc.compiler import render
    from flowc.compiler.driver.compile import compile_spec

    if single and profile == "all":
        raise click.UsageError("this command shows one profile; name it with --profile")
    if not spec.is_file():
        raise click.UsageError(f"no such spec file: {spec}")
    result = compile_spec(spec, profile=profile)
    color = sys.stderr.isatty()
    secrets = _secrets([spec]) if result.diagnostics else ()
    if compact and not result.has_errors:
        text = render.render_compact(result.diagnostics, color=color, secrets=secrets)
    else:
        text = render.render_text(
            result.diagnostics, render.file_lines({}), color=color, secrets=secrets
        )
    if text:
        click.echo(text, err=True)
    if result.has_errors:
        click.echo(render.summary(result.diagnostics, 1), err=True)
        click.echo("no plan written: the spec has errors", err=True)
        sys.exit(EXIT_ERRORS)
    return result


def _secrets(files: Iterable[str | Path]) -> frozenset[str]:
    """The secrets of the projects holding `files`, never to be shown (project/secrets.py)."""
    from flowc.project import config, secrets

    roots = {config.find_project_root(Path(file)) for file in files}
    return frozenset().union(*(secrets.in_project(root) for root in roots))


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the `flowc` script."""
    code = _guarded(lambda: cli.main(args=argv, prog_name="flowc", standalone_mode=False))
    # Tearing down the interpreter frees every parsed tree one by one (0.3-0.5 s on a large
    # project) for nothing: the process is ending. Flush and leave.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(ValueError, OSError):  # `flowc lsp` ends with stdout closed
            stream.flush()
    os._exit(code)


def _guarded(run: Callable[[], Any]) -> int:
    from flowc.project.errors import FlowcError, UsageError

    try:
        run()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_OK
    except click.exceptions.Abort as abort:
        if isinstance(abort.__cause__ or abort.__context__, KeyboardInterrupt):  # Ctrl-C
            click.echo("interrupted", err=True)
            return EXIT_INTERRUPTED
        click.echo("aborted", err=True)
        return EXIT_ERRORS
    except KeyboardInterrupt:  # Ctrl-C: a run has rolled back by now; no traceback
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as error:
        error.show()
        return EXIT_USAGE
    except UsageError as error:
        click.echo(f"error: {error}", err=True)
        return EXIT_USAGE
    except FlowcError as error:
        click.echo(f"error: {error}", err=True)
        return EXIT_ERRORS
    except Exception as error:  # a flowc bug: say so plainly, keep the traceback for the report
        return _internal_error(error)
    return EXIT_OK


def _internal_error(error: BaseException) -> int:
    with tempfile.NamedTemporaryFile(
        "w", prefix="flowc-crash-", suffix=".txt", delete=False
    ) as log:
        traceback.print_exception(error, file=log)
    click.echo(
        f"internal error: flowc failed unexpectedly ({type(error).__name__}).\n"
        f"This is a bug in flowc, not in your spec. Please report it at {_REPORT_URL}\n"
        f"and attach {log.name}, which holds the details.",
        err=True,
    )
    return EXIT_INTERNAL
