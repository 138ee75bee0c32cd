"""`flowc compile`: golden plans and SQL for every example and profile, determinism across
processes and hash seeds, the plan's JSON Schema, the CLI, and F0308.

Goldens live in `tests/golden/<case>/<profile>/` (plan.json and the NN_<step>.sql files).
After a deliberate change, rewrite them with `pytest tests/test_compile.py --update-goldens`
and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from flowc.cli import cli
from flowc.compiler import plan
from flowc.compiler.analysis import project_file
from flowc.compiler.driver.check import cached_clean, check_paths, connection_types, display
from flowc.compiler.driver.check_cache import spec_key
from flowc.compiler.driver.compile import compile_spec, write

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
CASES = {
    "green_taxi": ROOT / "specs" / "green_taxi" / "specs" / "green_taxi.flow",
    "reference": ROOT / "specs" / "reference" / "specs" / "green_taxi.flow",
    "fusion": GOLDEN / "fusion" / "specs" / "fusion.flow",
    "checks": GOLDEN / "checks" / "specs" / "checks.flow",
    "cte_clash": GOLDEN / "cte_clash" / "specs" / "cte_clash.flow",
}
SECRET = "example-secret"  # specs/reference/.env's dummy password


def compiled_files(spec: Path, out: Path) -> dict[str, bytes]:
    """Every file `flowc compile --profile all` writes for `spec`, by path under `out`."""
    result = compile_spec(spec, profile="all", env={})
    assert not result.has_errors, result.diagnostics
    write(result, out)
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def golden_files(case: str) -> dict[str, bytes]:
    folder = GOLDEN / case
    found = {}
    for profile in sorted(p for p in folder.iterdir() if (p / "plan.json").is_file()):
        for file in profile.iterdir():
            found[f"{profile.name}/{file.name}"] = file.read_bytes()
    return found


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str, tmp_path: Path, update_goldens: bool) -> None:
    produced = compiled_files(CASES[case], tmp_path)
    pipeline = json.loads(next(v for k, v in produced.items() if k.endswith("plan.json")))
    prefix = f"{pipeline['pipeline']['name']}/"
    produced = {k.removeprefix(prefix): v for k, v in produced.items()}
    if update_goldens:
        _rewrite(case, produced)
    expected = golden_files(case)
    assert sorted(produced) == sorted(expected), "files differ: run with --update-goldens"
    for name, text in produced.items():
        assert text == expected[name], f"{case}/{name} differs: run with --update-goldens"


def _rewrite(case: str, produced: dict[str, bytes]) -> None:
    folder = GOLDEN / case
    for profile in {name.split("/")[0] for name in produced}:
        shutil.rmtree(folder / profile, ignore_errors=True)
    for name, text in produced.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(text)


_COMPILE_ALL = """
import sys
from pathlib import Path
from flowc.compiler.driver.compile import compile_spec, write
out = Path(sys.argv[1])
for index, spec in enumerate(sys.argv[2:]):
    write(compile_spec(Path(spec), profile="all", env={}), out / str(index))
"""


def test_output_is_byte_identical_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    runs = []
    for seed in ("1", "4242"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        specs = [str(CASES[case]) for case in sorted(CASES)]
        command = [sys.executable, "-c", _COMPILE_ALL, str(out), *specs]
        subprocess.run(command, check=True, env=env, cwd=tmp_path, timeout=120)
        runs.append({p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()})
    assert runs[0] and runs[0] == runs[1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_clean_check_cache_changes_nothing_in_the_plan(case: str, tmp_path: Path) -> None:
    """With a valid check cache, compile infers only the columns the plan shows: same files."""
    project = tmp_path / "project"
    spec_dir = CASES[case].parent.parent
    shutil.copytree(spec_dir, project, ignore=shutil.ignore_patterns(".flowc", "data", "out"))
    spec = project / CASES[case].relative_to(spec_dir)
    before = compiled_files(spec, tmp_path / "before")
    assert not check_paths([spec], profile="all", env={}).has_errors
    project_profiles = project_file.load_project(project, profile="all", env={})[1]
    key = spec_key(spec.read_text(), connection_types(project_profiles))
    assert cached_clean(project, display(spec), key) is not None
    assert compiled_files(spec, tmp_path / "after") == before


def test_a_clean_compile_fills_the_check_cache(tmp_path: Path) -> None:
    """Compile's full analysis of a spec it compiles cleanly is what check would find."""
    project = tmp_path / "project"
    ignored = shutil.ignore_patterns(".flowc", "data", "out")
    shutil.copytree(CASES["reference"].parent.parent, project, ignore=ignored)
    spec = project / "specs" / CASES["reference"].name
    profiles = project_file.load_project(project, profile="all", env={})[1]
    key = spec_key(spec.read_text(), connection_types(profiles))
    compiled_files(spec, tmp_path / "out")
    remembered = cached_clean(project, display(spec), key)
    assert remembered  # the example has a warning (F0307)
    shutil.rmtree(project / ".flowc")
    assert set(check_paths([spec], profile="all", env={}).diagnostics) == set(remembered)


def test_plan_json_has_sorted_keys_and_a_trailing_newline(tmp_path: Path) -> None:
    for name, text in compiled_files(CASES["fusion"], tmp_path).items():
        if name.endswith("plan.json"):
            data = json.loads(text)
            assert text.decode() == json.dumps(data, sort_keys=True, indent=2) + "\n"
            assert plan.Plan.model_validate(data).plan_version == plan.PLAN_VERSION


def test_plans_hold_no_secret(tmp_path: Path) -> None:
    produced = compiled_files(CASES["reference"], tmp_path)
    assert produced
    assert not [name for name, text in produced.items() if SECRET.encode() in text]


def test_json_schema_is_up_to_date(update_goldens: bool) -> None:
    path = ROOT / "docs" / "plan.schema.json"
    if update_goldens:
        path.write_text(plan.json_schema(), encoding="utf-8")
    assert path.read_text(encoding="utf-8") == plan.json_schema(), (
        "docs/plan.schema.json is stale: run pytest tests/test_compile.py --update-goldens"
    )


def test_every_step_waits_for_its_inputs_and_error_checks() -> None:
    result = compile_spec(CASES["green_taxi"], profile="dev", env={})
    steps = result.compiled[0].plan.steps
    seen: set[str] = set()
    for step in steps:
        assert set(step.inputs) <= seen, step.id
        seen.add(step.id)
    transfer = next(s for s in steps if s.id == "clean_trips.into.snake_trips")
    checks = {
        "clean_trips.not_null(VendorID, lpep_pickup_date)",
        "clean_trips.accepted_values(VendorID, [1, 2])",
        "clean_trips.row_count(min = 1)",
        'clean_trips.check("passenger_count > 0")',
    }
    assert checks <= set(transfer.inputs)


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_compile_writes_the_plan_and_sql(tmp_path: Path) -> None:
    out = tmp_path / "build"
    result = CliRunner().invoke(cli, ["compile", str(CASES["green_taxi"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "compiled" in result.output and "14 steps" in result.output
    folder = out / "green_taxi"
    assert (folder / "plan.json").read_text().endswith("}\n")
    assert (folder / "02_clean_trips.sql").read_text().startswith("-- clean_trips: sql step")


def test_cli_compile_writes_nothing_when_the_spec_has_errors(tmp_path: Path) -> None:
    spec = tmp_path / "bad.flow"
    spec.write_text('pipeline p {}\ntransform t { sql = "SELECT nope FROM missing" }\n')
    out = tmp_path / "build"
    result = CliRunner().invoke(cli, ["compile", str(spec), "-o", str(out)])
    assert result.exit_code == 1
    assert "F0303" in result.output and "no plan written" in result.output
    assert not out.exists()


UNSUPPORTED = """\
pipeline p {
  target = warehouse
}

source trips {
  from = csv("trips.csv")
  columns { id int  amount double }
}

transform slim {
  sql = \"\"\"
    SELECT * EXCLUDE (amount)
    FROM trips
  \"\"\"
}
"""

TWO_PROFILES = """\
[project]
name = "p"
default_profile = "duck"

[profiles.duck.warehouse]
type = "duckdb"
path = "w.duckdb"

[profiles.pg.warehouse]
type = "postgres"
host = "localhost"
dbname = "d"
user = "u"
"""


def test_what_a_target_cannot_express_is_f0801_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "flow.toml").write_text(TWO_PROFILES)
    spec = tmp_path / "p.flow"
    spec.write_text(UNSUPPORTED)
    assert not compile_spec(spec, profile="duck", env={}).has_errors
    result = compile_spec(spec, profile="all", env={})
    [error] = [d for d in result.diagnostics if d.code == "F0308"]
    assert (error.span.line, error.span.col) == (12, 12)  # the `*`
    assert error.message == "`SELECT * EXCLUDE (...)` has no Postgres equivalent (profile `pg`)"
    assert result.compiled == []


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_cli_graph(fmt: str) -> None:
    result = CliRunner().invoke(cli, ["graph", str(CASES["fusion"]), "--format", fmt])
    assert result.exit_code == 0, result.output
    edge = "valid_orders -.-> order_totals" if fmt == "mermaid" else '"orders" -> "valid_orders"'
    assert edge in result.output


def test_cli_explain() -> None:
    result = CliRunner().invoke(cli, ["explain", str(CASES["fusion"])])
    assert result.exit_code == 0, result.output
    assert "fuses valid_orders, order_totals" in result.output
    assert "valid_orders -> enriched" in result.output
