"""The renderers: text as in LANGUAGE.md §6, JSON, GitHub annotations, secrets hidden."""

from __future__ import annotations

import json

from flowc.compiler import render
from flowc.compiler.diagnostics import Note, make
from flowc.project.spans import Span

LINES = {
    "specs/green_taxi.flow": ["", "    WHERE pasenger_count > 0"],
    "flow.toml": ['password = "hunter2"', 'password = "${PGPASSWORD}"'],
}


def lookup(file: str) -> list[str] | None:
    return LINES.get(file)


def span(file: str, line: int, col: int, end_col: int) -> Span:
    return Span(file=file, line=line, col=col, end_line=line, end_col=end_col)


UNKNOWN = make(
    "F0301",
    span("specs/green_taxi.flow", 2, 11, 25),
    hint="did you mean `passenger_count`?",
    name="pasenger_count",
)


def test_text_matches_the_language_reference_shape() -> None:
    assert render.render_text([UNKNOWN], lookup) == (
        "error[F0301]: unknown column `pasenger_count`\n"
        " --> specs/green_taxi.flow:2:11\n"
        "  |\n"
        "2 |     WHERE pasenger_count > 0\n"
        "  |           ^^^^^^^^^^^^^^ did you mean `passenger_count`?\n"
    )


def test_text_shows_notes_and_hints_without_a_source_line() -> None:
    first = Note(span=span("gone.flow", 3, 1, 2), message="first defined here")
    diagnostic = make("F0203", span("gone.flow", 9, 8, 13), notes=[first], hint="rename", name="x")
    assert render.render_text([diagnostic], lookup).splitlines() == [
        "error[F0203]: `x` is defined more than once",
        " --> gone.flow:9:8",
        "  = note: first defined here at gone.flow:3:1",
        "  = hint: rename",
    ]


def test_text_is_capped_with_a_count_of_the_rest() -> None:
    text = render.render_text([UNKNOWN] * 5, lookup, limit=2)
    assert text.count("error[F0301]") == 2
    assert text.endswith("... and 3 more")


def test_secret_values_in_flow_toml_lines_are_hidden() -> None:
    diagnostic = make("F0606", span("flow.toml", 1, 1, 9), detail="bad")
    text = render.render_text([diagnostic], lookup)
    assert "hunter2" not in text
    assert 'password = "****"' in text
    reference = make("F0606", span("flow.toml", 2, 1, 9), detail="bad")
    assert "${PGPASSWORD}" in render.render_text([reference], lookup)


def test_json_holds_every_field() -> None:
    document = json.loads(render.render_json([UNKNOWN], files=1))
    assert document["summary"] == {"files": 1, "errors": 1, "warnings": 0, "notes": 0}
    (item,) = document["diagnostics"]
    assert (item["code"], item["line"], item["col"], item["end_col"]) == ("F0301", 2, 11, 25)
    assert item["hint"] == "did you mean `passenger_count`?"


def test_github_annotations_escape_properties_and_data() -> None:
    diagnostic = make("F0104", span("a,b.flow", 3, 1, 2), block="source s", opened="1:1")
    line = render.render_github([diagnostic])
    assert line.startswith("::error file=a%2Cb.flow,line=3,col=1,endLine=3,endColumn=2,")
    assert "title=flowc F0104::expected `}` to close `source s` opened at 1:1" in line


def test_summary_counts() -> None:
    assert render.summary([], 2) == "checked 2 files: no problems found"
    assert render.summary([UNKNOWN], 1) == "checked 1 file: 1 error, 0 warnings"
