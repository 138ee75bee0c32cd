"""DuckDB's resources as a flowc user sets them, driven as a user does (`flowc` in a folder):

- the default buffer pool is a share of the machine's memory, so a modest wide self-join runs;
- `memory_limit`, `threads` and `temp_directory` are connection settings in flow.toml, checked;
- running out of memory is a step failure (exit 1, recorded failed) that names the flow.toml
  setting, not DuckDB's `SET` advice.
"""

from __future__ import annotations

import re
from pathlib import Path

from flowc_cli import flowc, runs_listed

TOML = """\
[project]
name = "p"
default_profile = "dev"

[profiles.dev.local]
type = "duckdb"
path = ".flowc/local.duckdb"
"""


def project(root: Path, spec: str, settings: str = "") -> Path:
    (root / "flow.toml").write_text(TOML + settings)
    (root / "p.flow").write_text(spec)
    return root


def test_a_wide_self_join_runs_with_the_default_memory_limit(tmp_path: Path) -> None:
    columns = ", ".join(f"range * {i} AS c{i}" for i in range(500))
    both = ", ".join([f"a.c{i}" for i in range(500)] + [f"b.c{i} AS d{i}" for i in range(500)])
    spec = f'''\
pipeline p {{
}}

transform wide {{
  sql = """SELECT range AS id, {columns} FROM range(20000)"""
}}

transform joined {{
  sql = """SELECT {both} FROM wide AS a JOIN wide AS b ON a.id = b.id"""
}}
'''
    result = flowc("run", "p.flow", cwd=project(tmp_path, spec))
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"joined +succeeded +20000", result.stdout), result.stdout


BIG = '''\
pipeline p {
}

transform big {
  sql = """
    SELECT string_agg(repeat('x', 1000) || CAST(range AS VARCHAR), ',') AS s FROM range(200000)
  """
}
'''


def test_out_of_memory_fails_the_step_and_names_the_setting(tmp_path: Path) -> None:
    root = project(tmp_path, BIG, 'memory_limit = "32MB"\nthreads = 1\n')
    result = flowc("run", "p.flow", cwd=root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "big: DuckDB ran out of memory: Out of Memory Error" in result.stderr
    assert "`memory_limit` of the DuckDB connection in flow.toml" in result.stderr
    assert "SET memory_limit" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [row] = runs_listed(flowc("runs", "p.flow", cwd=root).stdout)
    assert row[1] == "failed"


def test_threads_and_temp_directory_are_accepted_and_checked(tmp_path: Path) -> None:
    spec = 'pipeline p {\n}\n\ntransform t {\n  sql = "SELECT 1 AS one"\n}\n'
    good = project(tmp_path, spec, 'threads = 2\ntemp_directory = "spill"\nmemory_limit = "1GB"\n')
    assert flowc("check", "p.flow", cwd=good).returncode == 0
    for bad, shown in (("threads = 0", "threads"), ('threads = "many"', "threads")):
        (tmp_path / "flow.toml").write_text(TOML + bad + "\n")
        result = flowc("check", "p.flow", cwd=tmp_path)
        assert result.returncode == 1
        assert "F0606" in result.stdout and f"`{shown}` of connection" in result.stdout
    (tmp_path / "flow.toml").write_text(TOML + 'temp_directory = ""\n')
    assert "`temp_directory` of connection" in flowc("check", "p.flow", cwd=tmp_path).stdout
