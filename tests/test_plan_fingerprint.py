"""Fingerprints change when, and only when, something that determines a step's output changes.

Property: whitespace and comments added anywhere a person would add them (trailing spaces,
`#` comment lines between blocks, `--` comment lines and blank lines inside SQL) change no
fingerprint; a semantic edit changes the fingerprint of the step it touches and of every step
downstream of it, and of no other step.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flowc.compiler import plan
from flowc.compiler.driver.compile import compile_spec
from hypothesis import given, settings
from hypothesis import strategies as st

CASE = Path(__file__).resolve().parent / "golden" / "fusion"
BASE = (CASE / "specs" / "fusion.flow").read_text(encoding="utf-8")

# (old text, new text, the steps whose own content the edit changes)
SEMANTIC = [
    ("Amount >= :min_amount", "Amount > :min_amount", {"enriched"}),
    ("WHERE total > 100", "WHERE total > 200", {"enriched"}),
    ("materialize = view", "materialize = table", {"by_region"}),
    ("ORDER BY Region", "ORDER BY Region DESC", {"region_copy"}),
    ("unique_key  = [OrderID]", "unique_key  = [CustomerID]", {"recent_orders"}),
    ("min_amount double = 10", "min_amount int = 10", {"enriched"}),
    ("Name       varchar", "Name       text", {"customers"}),
    ("mode  = append", "mode  = replace", {"enriched_log"}),
    ("unique(CustomerID)", "unique(Name)", {"enriched.unique(Name)"}),  # a new step id
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fingerprints")
    shutil.copy(CASE / "flow.toml", root / "flow.toml")
    (root / "specs").mkdir()
    return root


def fingerprints(root: Path, text: str) -> dict[str, str]:
    spec = root / "specs" / "fusion.flow"
    spec.write_text(text, encoding="utf-8")
    result = compile_spec(spec, profile="duck", env={})
    assert not result.has_errors, result.diagnostics
    return {s.id: s.fingerprint for s in result.compiled[0].plan.steps}


def downstream(compiled: plan.Plan, changed: set[str]) -> set[str]:
    found = set(changed)
    for step in compiled.steps:  # inputs come first
        if found & set(step.inputs):
            found.add(step.id)
    return found


@st.composite
def formatting(draw: st.DrawFn, text: str) -> str:
    """`text` with whitespace and comments added where they mean nothing."""
    out = []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(("source ", "transform ", "sink ")) and draw(st.booleans()):
            out.append(f"# {draw(st.text('abc xyz', max_size=12))}")
        out.append(line + " " * draw(st.integers(0, 3)))
        if stripped == 'sql = """' and draw(st.booleans()):
            out.append(draw(st.sampled_from(["    -- a comment", "", "    /* note */"])))
    return "\n".join(out)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_formatting_changes_no_fingerprint(project: Path, data: st.DataObject) -> None:
    base = fingerprints(project, BASE)
    assert fingerprints(project, data.draw(formatting(BASE))) == base


@settings(max_examples=25, deadline=None)
@given(data=st.data(), edit=st.sampled_from(SEMANTIC))
def test_a_semantic_edit_changes_its_step_and_everything_downstream(
    project: Path, data: st.DataObject, edit: tuple[str, str, set[str]]
) -> None:
    old, new, direct = edit
    assert old in BASE
    base = fingerprints(project, BASE)
    spec = project / "specs" / "fusion.flow"
    edited_text = data.draw(formatting(BASE.replace(old, new, 1)))
    edited = fingerprints(project, edited_text)
    result = compile_spec(spec, profile="duck", env={})
    expected = downstream(result.compiled[0].plan, direct)
    changed = {step for step, digest in edited.items() if base.get(step) != digest}
    assert changed == expected
