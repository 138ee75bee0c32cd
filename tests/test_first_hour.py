"""The first hour of a new user (issue 13): the scaffold, the example project, the habits of
the command line and the shape of its output, as a newcomer meets them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from flowc_cli import flowc

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "specs" / "green_taxi"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLE, tmp_path / "green_taxi", ignore=shutil.ignore_patterns(".flowc"))
    return tmp_path / "green_taxi"


# --- item 10: the scaffold and the project


def test_init_dot_in_a_fresh_git_repository(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    created = flowc("init", ".", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "specs" / "example.flow").is_file()
    assert "cd ." not in created.stdout
    checked = flowc("check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout


def test_the_scaffold_ignores_env_and_shows_a_complete_postgres_profile(tmp_path: Path) -> None:
    assert flowc("init", "shop", cwd=tmp_path).returncode == 0
    ignored = (tmp_path / "shop" / ".gitignore").read_text().split()
    assert ".env" in ignored
    toml = (tmp_path / "shop" / "flow.toml").read_text()
    template = "\n".join(line.removeprefix("# ") for line in toml.splitlines() if "= " in line)
    for key in ("host", "port", "dbname", "user", "password", "schema"):
        assert re.search(rf"^{key}\s*=", template, re.MULTILINE), key
    # uncommented, the template is a Postgres profile that checks (with its variables set)
    (tmp_path / "shop" / "flow.toml").write_text(
        "\n".join(
            line.removeprefix("# ") if line.startswith("# ") and "=" in line else line
            for line in toml.splitlines()
        ).replace("# [profiles.prod.local]", "[profiles.prod.local]")
    )
    env = {"POSTGRES_DBNAME": "shop", "POSTGRES_USER": "me", "POSTGRES_PASSWORD": "pw"}
    checked = flowc("check", "--profile", "prod", cwd=tmp_path / "shop", env=env)
    assert checked.returncode == 0, checked.stdout


def test_the_repository_root_checks_clean_with_its_excludes() -> None:
    result = flowc("check", cwd=ROOT)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "tests/broken" not in result.stdout


def test_exclude_in_flow_toml_and_on_the_command_line(project: Path) -> None:
    broken = project / "tests" / "broken" / "bad.flow"
    broken.parent.mkdir(parents=True)
    broken.write_text("pipeline bad { target = nowhere }\n")
    assert flowc("check", cwd=project).returncode == 1
    assert flowc("check", "--exclude", "tests/broken", cwd=project).returncode == 0
    assert flowc("check", "--exclude", "tests/*", cwd=project).returncode == 0
    toml = project / "flow.toml"
    toml.write_text(
        toml.read_text().replace(
            'default_profile = "dev"', 'default_profile = "dev"\nexclude = ["tests"]'
        )
    )
    result = flowc("check", cwd=project)
    assert (result.returncode, result.stdout.strip()) == (0, "checked 1 file: no problems found")
    named = flowc("check", "tests/broken/bad.flow", cwd=project)  # a file named is checked
    assert named.returncode == 1


def test_a_spec_with_a_byte_order_mark_checks_and_runs(tmp_path: Path) -> None:
    assert flowc("init", "shop", cwd=tmp_path).returncode == 0
    spec = tmp_path / "shop" / "specs" / "example.flow"
    spec.write_bytes(b"\xef\xbb\xbf" + spec.read_bytes())
    toml = tmp_path / "shop" / "flow.toml"
    toml.write_bytes(b"\xef\xbb\xbf" + toml.read_bytes())
    checked = flowc("check", cwd=tmp_path / "shop")
    assert (checked.returncode, checked.stdout.strip()) == (0, "checked 1 file: no problems found")
    ran = flowc("run", "specs/example.flow", cwd=tmp_path / "shop")
    assert ran.returncode == 0, ran.stderr
    spec.write_bytes(spec.read_bytes().replace(b"FROM orders", b"FROM order"))
    broken = flowc("check", cwd=tmp_path / "shop")
    assert "specs/example.flow:24:10" in broken.stdout, broken.stdout  # columns as seen


# --- item 11: the example project and `make demo`


def test_the_example_says_which_months_the_generator_writes() -> None:
    header = (EXAMPLE / "specs" / "green_taxi.flow").read_text().splitlines()[0]
    generator = (EXAMPLE / "generate_data.py").read_text()
    months = re.findall(r"\(2020, (\d+), \d+\)", generator.split("MONTHS = ")[1].split("\n")[0])
    names = {"10": "Oct", "11": "Nov", "12": "Dec"}
    assert months == ["10", "11"]
    for month in ("10", "11", "12"):
        assert (names[month] in header) == (month in months), header


def test_pyproject_license_is_an_spdx_string() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # a table (`{ text = ... }`) makes setuptools print a deprecation warning on each install
    assert project["project"]["license"] == "Apache-2.0"
    assert "setuptools>=77" in project["build-system"]["requires"]


def _make_demo_commands(folder: Path) -> str:
    result = subprocess.run(
        ["make", "-n", "demo"], cwd=folder, capture_output=True, text=True, check=True
    )
    return result.stdout


def test_make_demo_installs_only_when_pyproject_changed(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").touch()
    assert "pip install" in _make_demo_commands(tmp_path)  # never installed
    (tmp_path / ".venv" / ".installed").touch()
    os.utime(tmp_path / "pyproject.toml", (1_000_000, 1_000_000))
    assert "pip install" not in _make_demo_commands(tmp_path)
    (tmp_path / "pyproject.toml").touch()  # edited after the install
    assert "pip install" in _make_demo_commands(tmp_path)


# --- item 9: the habits of the command line


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    assert flowc("init", "shop", cwd=tmp_path).returncode == 0
    return tmp_path / "shop"


def test_run_without_spec_runs_the_projects_only_spec(shop: Path) -> None:
    ran = flowc("run", cwd=shop)
    assert ran.returncode == 0, ran.stderr
    assert "succeeded: 11 steps" in ran.stdout
    assert flowc("run", ".", cwd=shop).returncode == 0
    assert flowc("run", "specs/example", cwd=shop).returncode == 0  # no `.flow`
    assert flowc("run", "specs", cwd=shop).returncode == 0
    assert flowc("run", cwd=shop / "specs").returncode == 0


def test_run_without_spec_names_the_specs_to_choose_from(shop: Path) -> None:
    shutil.copy(shop / "specs" / "example.flow", shop / "specs" / "second.flow")
    result = flowc("run", cwd=shop)
    assert result.returncode == 2
    assert "holds 2 specs; say which to run" in result.stderr
    assert "flowc run specs/example.flow" in result.stderr
    assert "flowc run specs/second.flow" in result.stderr
    missing = flowc("run", "specs/nothing", cwd=shop)
    assert (missing.returncode, "Traceback" in missing.stderr) == (2, False)
    assert "no such spec file or folder: specs/nothing" in missing.stderr


def test_show_last_and_an_ambiguous_prefix(shop: Path) -> None:
    for _ in range(2):
        assert flowc("run", cwd=shop).returncode == 0
    runs = flowc("runs", cwd=shop).stdout.splitlines()[1:]
    newest, older = runs[0].split()[0], runs[1].split()[0]
    last = flowc("show", "last", cwd=shop)
    assert last.returncode == 0, last.stderr
    assert last.stdout.splitlines()[0] == f"run {newest}: succeeded"
    common = next(newest[:i] for i in range(len(newest)) if newest[i] != older[i])
    ambiguous = flowc("show", common, cwd=shop)
    assert ambiguous.returncode == 2
    assert f"run id `{common}` is ambiguous" in ambiguous.stderr
    assert newest in ambiguous.stderr and older in ambiguous.stderr
    unknown = flowc("show", "19990101", cwd=shop)
    assert "no run `19990101`" in unknown.stderr and "ambiguous" not in unknown.stderr


def test_runs_outside_a_project_says_so(tmp_path: Path) -> None:
    for command in (("runs",), ("show", "last")):
        result = flowc(*command, cwd=tmp_path)
        assert result.returncode == 2, command
        assert "not in a flowc project: no flow.toml" in result.stderr
        assert "no runs yet" not in result.stdout + result.stderr
    assert not (tmp_path / ".flowc").exists()


def test_a_select_typo_gets_did_you_mean(shop: Path) -> None:
    result = flowc("run", "--select", "paid_ordrs+", cwd=shop)
    assert result.returncode == 2
    assert "no node `paid_ordrs`; did you mean `paid_orders`?" in result.stderr


# --- item 8: output


CHECKS = [
    "paid_orders.not_null(order_id, order_date)",
    "paid_orders.unique(order_id)",
    'paid_orders.check("amount > 0")',
]


def test_check_steps_are_named_after_their_expectation(shop: Path) -> None:
    ran = flowc("run", cwd=shop)
    assert ran.returncode == 0, ran.stderr
    names = [re.split(r"\s{2,}", line)[0] for line in ran.stdout.splitlines()[:-1]]
    assert [n for n in names if n in CHECKS] == CHECKS
    assert not any(".check." in n for n in names)


def test_run_lines_label_their_rows_and_stay_aligned(shop: Path) -> None:
    ran = flowc("run", cwd=shop)
    lines = ran.stdout.splitlines()[:-1]
    by_step = {re.split(r"\s{2,}", line)[0]: line for line in lines}
    assert re.search(r"\b40 loaded\b", by_step["orders"])
    assert re.search(r"\b0 failing\b", by_step["paid_orders.unique(order_id)"])
    assert re.search(r"\b7 written\b", by_step["daily_file"])
    assert re.search(r"\b24 copied\b", by_step["paid_orders.into.labelled_orders"])
    # the longest step name does not push its line's columns out of line with the others'
    status_columns = {line.index("succeeded") for line in lines}
    assert len(status_columns) == 1, lines


def test_runs_has_a_header_and_counts_rows_once(shop: Path) -> None:
    assert flowc("run", cwd=shop).returncode == 0
    listed = flowc("runs", cwd=shop).stdout.splitlines()
    assert listed[0].split() == [
        "run", "status", "pipeline", "profile", "started", "took", "steps",
        "rows", "loaded", "rows", "written", "params",
    ]  # fmt: skip
    header, row = listed[0], listed[1]
    loaded = row[: header.index("rows loaded") + len("rows loaded")].split()[-1]
    written = row[: header.index("rows written") + len("rows written")].split()[-1]
    # 40 orders loaded (not the sum over every step and check); 24 rows + 7 days written
    assert (loaded, written) == ("40", "31")


def test_show_prints_aligned_columns(shop: Path) -> None:
    assert flowc("run", cwd=shop).returncode == 0
    shown = flowc("show", "last", cwd=shop).stdout.splitlines()
    table = shown[shown.index("") + 1 :]
    assert table[0].split() == ["step", "kind", "status", "rows", "time"]
    at = table[0].index("kind")
    kinds = {"load", "sql", "python", "check", "transfer", "export"}
    assert all(line[at - 2 : at] == "  " and line[at:].split()[0] in kinds for line in table[1:])
    assert any(line.split()[0] == 'paid_orders.check("amount' for line in table)


def test_a_run_that_skipped_everything_says_so(shop: Path) -> None:
    assert flowc("run", cwd=shop).returncode == 0
    again = flowc("run", "--skip-unchanged", cwd=shop)
    assert again.returncode == 0, again.stderr
    last = again.stdout.splitlines()[-1]
    assert last.endswith(
        "succeeded: nothing to do: all 11 steps unchanged since their last successful run"
    )


# --- item 10: F0307 can be acknowledged, and a run repeats it in one line

UNDECLARED = """\
pipeline p { }

source api {
  from = http("http://127.0.0.1:9/trips.csv", format = "csv")
}

transform t {
  sql = "SELECT * FROM api"
}

sink s {
  input = t
  to    = csv("out/t.csv")
}
"""


def test_columns_auto_acknowledges_unknown_http_columns(tmp_path: Path) -> None:
    spec = tmp_path / "p.flow"
    spec.write_text(UNDECLARED)
    warned = flowc("check", cwd=tmp_path)
    assert warned.stdout.count("warning[F0307]") == 2
    assert "or `columns = auto`" in warned.stdout
    spec.write_text(UNDECLARED.replace('format = "csv")', 'format = "csv")\n  columns = auto'))
    quiet = flowc("check", cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout.strip()) == (0, "checked 1 file: no problems found")
    spec.write_text(UNDECLARED.replace('format = "csv")', 'format = "csv")\n  columns = autom'))
    wrong = flowc("check", cwd=tmp_path)
    assert wrong.returncode == 1 and "did you mean `auto`?" in wrong.stdout
    both = 'format = "csv")\n  columns = auto\n  columns { id int }'
    spec.write_text(UNDECLARED.replace('format = "csv")', both))
    twice = flowc("check", cwd=tmp_path)
    assert twice.returncode == 1
    assert "`columns` is set more than once in `source api`" in twice.stdout


def test_a_run_repeats_warnings_in_one_line_each(tmp_path: Path) -> None:
    # nothing listens there: the download fails, quickly (its retries 1 ms apart)
    quick = 'format = "csv")\n  retry_delay = "1ms"'
    (tmp_path / "p.flow").write_text(UNDECLARED.replace('format = "csv")', quick))
    for _ in range(2):  # compiled, then from the plan cache
        ran = flowc("run", cwd=tmp_path)
        warnings = [line for line in ran.stderr.splitlines() if "F0307" in line]
        assert len(warnings) == 2, ran.stderr
        assert warnings[0].startswith("warning[F0307] p.flow:3:8: the columns of `api`")
        assert "-->" not in ran.stderr


# --- item 3: the README's install story


def test_the_readme_says_how_to_get_flowc_and_start_a_project() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "source .venv/bin/activate" in readme
    assert "pipx install ./flowc" in readme and "pip install ./flowc" in readme
    assert "flowc init ." in readme
    assert re.search(r"`make test` runs the whole suite \(about [\d,]+ tests", readme)
    assert "minutes" in readme.split("`make test` runs the whole suite", 1)[1].split("\n\n")[0]


def test_pip_install_of_the_repository_provides_the_flowc_command(tmp_path: Path) -> None:
    """What `pip install ./flowc` does, without fetching the dependencies again: the wheel
    of this repository, installed on its own, gives a `flowc` that runs."""
    pip = [str(ROOT / ".venv" / "bin" / "python"), "-m", "pip"]
    quiet = ["--quiet", "--no-deps", "--no-index", "--find-links", str(tmp_path / "wheel")]
    built = subprocess.run(
        [*pip, "wheel", "--quiet", "--no-deps", "-w", str(tmp_path / "wheel"), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    target = tmp_path / "site"
    installed = subprocess.run(
        [*pip, "install", *quiet, "--target", str(target), "flowc"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    script = target / "bin" / "flowc"
    assert script.is_file()
    assert "build/__editable__" not in script.read_text()
    env = {**os.environ, "PYTHONPATH": str(target)}
    helped = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), str(script), "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert helped.returncode == 0, helped.stderr
    assert "flowc: compile declarative .flow pipelines" in helped.stdout
    where = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", "import flowc; print(flowc.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert where.stdout.startswith(str(target)), where.stdout  # the installed copy ran
    python = str(ROOT / ".venv" / "bin" / "python")
    for command, folder in ((["init", "shop"], tmp_path), (["check"], tmp_path / "shop")):
        done = subprocess.run(
            [python, str(script), *command], capture_output=True, text=True, env=env, cwd=folder
        )
        assert done.returncode == 0, done.stdout + done.stderr  # the grammar is in the wheel


def test_the_live_table_keeps_every_column_in_a_narrow_terminal() -> None:
    import io

    from flowc import cli
    from rich.console import Console

    long = "clean_trips.accepted_values(payment_type, [1, 2, 3, 4, 5, 6])"
    progress = cli._Progress(as_json=False, live=False, width=len(long))
    for step, kind in ((long, "check"), ("trips", "load")):
        progress.rows[step] = (step, "succeeded", cli._rows_text(kind, 7), "0.50s")
    screen = io.StringIO()
    Console(file=screen, width=60, color_system=None).print(progress._table())
    lines = screen.getvalue().splitlines()
    assert all(len(line) <= 60 for line in lines), lines
    body = [line for line in lines if line.startswith("│")]
    assert all(line.count("│") == 5 for line in body), lines  # four columns on every line
    assert any("0.50s" in line and "7 failing" in line for line in body)
