"""The project layer (`flowc.project`): importable by both halves, importing neither, and the
`${VAR}` expansion rules it owns, pinned as properties."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import flowc.project
from flowc.compiler.analysis.project_file import load_project
from flowc.project import env as variables
from flowc.project.config import PostgresSettings
from hypothesis import assume, given
from hypothesis import strategies as st

PROJECT = Path(flowc.project.__file__).parent
# what the project layer may import: the standard library, pydantic, itself, and python-dotenv
# (read lazily, for `.env`)
ALLOWED = {"pydantic", "dotenv", "flowc"}

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
values = st.text(max_size=20)
plain = st.text(max_size=40).filter(lambda text: "${" not in text)


def test_importing_the_project_layer_imports_neither_half() -> None:
    modules = sorted(path.stem for path in PROJECT.glob("*.py") if path.stem != "__init__")
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module('flowc.project.' + name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout)
    assert "flowc.project.config" in loaded
    halves = [m for m in loaded if m.startswith(("flowc.compiler", "flowc.runtime"))]
    assert halves == []


def test_the_project_layer_imports_only_the_standard_library_and_pydantic() -> None:
    for path in PROJECT.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                tops = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                tops = [node.module]
            else:
                continue
            for name in tops:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in ALLOWED, (path.name, name)
                assert top != "flowc" or name.startswith("flowc.project"), (path.name, name)


@given(plain, st.dictionaries(names, values))
def test_a_value_without_a_variable_is_unchanged(text: str, env: dict[str, str]) -> None:
    assert variables.well_formed(text)
    assert variables.unset(text, env) == []
    assert variables.expand(text, env) == text


@given(names, values)
def test_there_is_no_escape_a_doubled_dollar_is_a_dollar_and_the_value(
    name: str, value: str
) -> None:
    assert variables.expand(f"$${{{name}}}", {name: value}) == "$" + value


@given(names, values, st.text(alphabet="abc$:-x", max_size=8))
def test_a_default_is_taken_when_unset_or_empty(name: str, value: str, default: str) -> None:
    written = f"${{{name}:-{default}}}"
    assert variables.expand(written, {}) == default
    assert variables.expand(written, {name: ""}) == default
    assert variables.expand(written, {name: value}) == (value or default)
    assert variables.unset(written, {}) == []


@given(names, names, values)
def test_values_are_expanded_once(name: str, other: str, value: str) -> None:
    """A value from the environment is taken literally, even when it holds `${...}`."""
    assume(name != other)
    env = {name: f"${{{other}}}", other: value}
    assert variables.expand(f"${{{name}}}", env) == f"${{{other}}}"


@given(names, st.dictionaries(names, values))
def test_an_unset_variable_is_reported_not_raised(name: str, env: dict[str, str]) -> None:
    env.pop(name, None)
    assert variables.unset(f"a${{{name}}}b", env) == [name]
    assert variables.expand(f"a${{{name}}}b", env) == "ab"


def test_an_unset_variable_in_flow_toml_is_f0605(tmp_path: Path) -> None:
    (tmp_path / "flow.toml").write_text(
        '[profiles.dev.w]\ntype = "postgres"\nurl = "postgresql://me:${NO_SUCH_PW}@db/x"\n',
        encoding="utf-8",
    )
    _config, [profile], diagnostics = load_project(tmp_path, profile=None, env={})
    assert [d.code for d in diagnostics] == ["F0605"]
    assert profile.connections["w"].settings is None


def test_a_set_variable_in_flow_toml_is_expanded(tmp_path: Path) -> None:
    (tmp_path / "flow.toml").write_text(
        '[profiles.dev.w]\ntype = "postgres"\nurl = "postgresql://me:${PW}@db/x"\n',
        encoding="utf-8",
    )
    _config, [profile], diagnostics = load_project(tmp_path, profile=None, env={"PW": "$${x}"})
    settings = profile.connections["w"].settings
    assert len(diagnostics) == 0
    assert isinstance(settings, PostgresSettings) and settings.url is not None
    assert settings.url.get_secret_value() == "postgresql://me:$${x}@db/x"


@given(st.text(alphabet="${}:-AB1", max_size=12), st.dictionaries(st.sampled_from("AB"), values))
def test_any_text_expands_without_raising(text: str, env: dict[str, str]) -> None:
    """Checking decides what is reported (`well_formed`, `unset`); expansion itself never
    fails, whatever it is given."""
    assert isinstance(variables.well_formed(text), bool)
    assert all(name not in env for name in variables.unset(text, env))
    assert isinstance(variables.expand(text, env), str)
