"""The command line: parse arguments, call the compiler (and later the runtime), print.

Exit codes: 0 clean (warnings allowed), 1 errors in the specs, 2 usage, 3 internal error.
Nothing a user types may end in a Python traceback: a flowc bug is reported as an internal
error, with the traceback saved to a file to attach to a bug report.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
_REPORT_URL = "https://github.com/flowc/flowc/issues"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flowc")
def cli() -> None:
    """flowc: compile declarative .flow pipelines into SQL for DuckDB, Postgres and BigQuery."""


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
def check(
    paths: tuple[Path, ...], profile: str | None, output_format: str, max_diagnostics: int
) -> None:
    """Parse and validate .flow specs offline: files, or folders searched for *.flow."""
    from flowc.compiler import render
    from flowc.compiler.check import check_paths

    # sqlglot logs a warning when it falls back to a raw command; flowc reports those itself.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)

    result = check_paths(list(paths) or [Path()], profile=profile)
    if output_format == "json":
        click.echo(render.render_json(result.diagnostics, len(result.files)))
    elif output_format == "github":
        if result.diagnostics:
            click.echo(render.render_github(result.diagnostics))
        click.echo(render.summary(result.diagnostics, len(result.files)))
    else:
        color = sys.stdout.isatty()
        text = render.render_text(
            result.diagnostics, render.file_lines({}), limit=max_diagnostics, color=color
        )
        if text:
            click.echo(text)
        click.echo(render.summary(result.diagnostics, len(result.files)))
    sys.exit(EXIT_ERRORS if result.has_errors else EXIT_OK)


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
    from flowc.compiler.compile import output_folder, write

    result = _compiled(spec, profile)
    write(result, output)
    for compiled in result.compiled:
        folder = output_folder(result, output, compiled)
        sql_steps = sum(1 for s in compiled.plan.steps if s.sql)
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
    from flowc.compiler.graph import render_graph

    result = _compiled(spec, profile, single=True)
    assert result.spec_ir is not None
    click.echo(render_graph(result.spec_ir, result.compiled[0].plan, output_format), nl=False)


@cli.command()
@click.argument("spec", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--profile", "-p", default=None, help="Profile of flow.toml, or `all`.")
def explain(spec: Path, profile: str | None) -> None:
    """Explain the plan of SPEC: steps, placement, materialization, fused CTEs."""
    from flowc.compiler.explain import explain as explain_plan

    result = _compiled(spec, profile)
    click.echo("\n".join(explain_plan(c.plan) for c in result.compiled), nl=False)


def _compiled(spec: Path, profile: str | None, *, single: bool = False) -> Any:
    """Compile `spec`; on errors print them (as `flowc check` does) and exit 1."""
    from flowc.compiler import render
    from flowc.compiler.compile import compile_spec

    if single and profile == "all":
        raise click.UsageError("this command shows one profile; name it with --profile")
    if not spec.is_file():
        raise click.UsageError(f"no such spec file: {spec}")
    result = compile_spec(spec, profile=profile)
    text = render.render_text(result.diagnostics, render.file_lines({}), color=sys.stderr.isatty())
    if text:
        click.echo(text, err=True)
    if result.has_errors:
        click.echo(render.summary(result.diagnostics, 1), err=True)
        click.echo("no plan written: the spec has errors", err=True)
        sys.exit(EXIT_ERRORS)
    return result


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the `flowc` script."""
    code = _guarded(lambda: cli.main(args=argv, prog_name="flowc", standalone_mode=False))
    # Tearing down the interpreter frees every parsed tree one by one (0.3-0.5 s on a large
    # project) for nothing: the process is ending. Flush and leave.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _guarded(run: Callable[[], Any]) -> int:
    from flowc.compiler.errors import FlowcError, UsageError

    try:
        run()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_OK
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_ERRORS
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


def _internal_error(error: Exception) -> int:
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
