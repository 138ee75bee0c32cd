"""`flowc fmt`: the canonical layout, its command line, and its properties.

Properties (hypothesis): for generated specs (tests/test_fuzz.py's structured blocks and
plausible specs, then the same token streams re-laid with random whitespace and comments) and
for every example in the repository, formatting is idempotent, keeps the syntax IR (spans
aside) and keeps every comment, in order.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import test_fuzz
from flowc.compiler.syntax import fmt, fmt_comments, fmt_sql
from flowc.compiler.syntax.parser import _lark, parse
from flowc_cli import flowc
from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ["specs", "tests/jaffle_shop", "tests/golden", "tests/differential"]


def parsed_examples() -> list[Path]:
    found = []
    for path in sorted([*REPO.glob("specs/**/*.flow"), *REPO.glob("tests/**/*.flow")]):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if not parse(text, path.name)[1].has_errors:
            found.append(path)
    return found


def assert_formats_faithfully(text: str) -> str:
    """Format `text` twice and check the properties; the formatted text."""
    document, diagnostics = parse(text, "p.flow")
    assert not diagnostics.has_errors
    out = fmt.format_text(text, "p.flow").text
    again, errors = parse(out, "p.flow")
    assert not errors.has_errors, out
    assert fmt.semantic_view(again) == fmt.semantic_view(document)
    assert [c.text for c in fmt_comments.comments_of(out)] == [
        c.text for c in fmt_comments.comments_of(text)
    ]
    assert fmt.format_text(out, "p.flow").text == out
    return out


# --- layout ---------------------------------------------------------------------------------

MESSY = """# the header
pipeline p{target=warehouse # where
dialect="duckdb"
  retries=2


  params{run_date date="2020-10-01"
  n int not null}}
source trips {
  from = csv("data/a_very_long_file_name_for_the_trips.csv.gz", header = true, delimiter = ",",
    q = "'")
  columns { id int not null
    # money
    amount decimal(10,2)
  }
}
transform t { sql = \"\"\"
        SELECT *
          FROM trips
\"\"\"
  expect { not_null(id,) }
} # after t
"""

CANONICAL = """# the header
pipeline p {
  target  = warehouse  # where
  dialect = "duckdb"
  retries = 2

  params {
    run_date date = "2020-10-01"
    n        int  not null
  }
}

source trips {
  from = csv(
    "data/a_very_long_file_name_for_the_trips.csv.gz",
    header = true,
    delimiter = ",",
    q = "'",
  )
  columns {
    id     int not null
    # money
    amount decimal(10, 2)
  }
}

transform t {
  sql = \"\"\"
    SELECT *
      FROM trips
  \"\"\"
  expect {
    not_null(id)
  }
}  # after t
"""


def test_layout_is_canonical() -> None:
    assert fmt.format_text(MESSY, "p.flow").text == CANONICAL
    assert_formats_faithfully(MESSY)


def test_fixture_rows_are_laid_out_as_a_table() -> None:
    text = (
        "test t {\n  node = n\n  expected = rows(\n    [id, name, fare_amount, note],\n"
        '    [1, "a", 2.5, null], [22, "bbbb", 10.25, "x"], [3, "the longest name", 0, "y"])\n}\n'
    )
    assert fmt.format_text(text, "p.flow").text == (
        "test t {\n"
        "  node     = n\n"
        "  expected = rows(\n"
        "    [id, name,               fare_amount, note],\n"
        '    [1,  "a",                2.5,         null],\n'
        '    [22, "bbbb",             10.25,       "x"],\n'
        '    [3,  "the longest name", 0,           "y"],\n'
        "  )\n"
        "}\n"
    )
    assert_formats_faithfully(text)


def test_declarations_written_on_one_line_stay_on_it() -> None:
    text = (
        'source s {\n  from = csv("a.csv")\n  columns {\n'
        "    id int   name  varchar not null\n    fare decimal(10, 2)  # money\n"
        "    at timestamp\n  }\n}\n"
    )
    assert fmt.format_text(text, "p.flow").text == (
        "source s {\n"
        '  from = csv("a.csv")\n'
        "  columns {\n"
        "    id int  name varchar not null\n"
        "    fare decimal(10, 2)  # money\n"
        "    at   timestamp\n"
        "  }\n"
        "}\n"
    )
    assert_formats_faithfully(text)


def test_a_value_with_a_comment_inside_is_kept_as_written() -> None:
    text = 'source s {\n  from = csv(\n      "a.csv",  # the file\n      header = true)\n}\n'
    assert fmt.format_text(text, "p.flow").text == text


def test_a_file_with_syntax_errors_comes_back_unchanged() -> None:
    text = "pipeline p {\n  target: warehouse\n}\n"
    result = fmt.format_text(text, "p.flow")
    assert result.text == text
    assert [d.code for d in result.diagnostics] == ["F0106"]


# --- SQL, when the project asks for it ------------------------------------------------------

SQL_SPEC = """pipeline p {
  target = local
}

transform t {
  sql = \"\"\"
    select a, count(*) as n from trips where a > :x group by a
  \"\"\"
}
"""


def test_sql_is_formatted_only_when_asked() -> None:
    assert fmt.format_text(SQL_SPEC, "p.flow").text == SQL_SPEC
    out = fmt.format_text(SQL_SPEC, "p.flow", format_sql=True).text
    assert "SELECT\n      a,\n      COUNT(*) AS n\n    FROM trips" in out
    assert "WHERE\n      a > :x" in out
    assert fmt.format_text(out, "p.flow", format_sql=True).text == out


def test_sql_that_sqlglot_cannot_reprint_faithfully_is_kept() -> None:
    assert fmt_sql.pretty_sql("SELECT FROM WHERE", "duckdb") is None
    assert fmt_sql.pretty_sql("SELECT 1; SELECT 2", "duckdb") is None
    text = SQL_SPEC.replace("select a,", "select (a,")
    assert fmt.format_text(text, "p.flow", format_sql=True).text == text


# --- the command line -----------------------------------------------------------------------


def test_the_shipped_examples_are_formatted() -> None:
    result = flowc("fmt", "--check", *SHIPPED, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 of" in result.stdout


def test_check_and_diff_write_nothing_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "a.flow").write_text(MESSY)
    (tmp_path / "b.flow").write_text(CANONICAL)
    checked = flowc("fmt", "--check", ".", cwd=tmp_path)
    assert checked.returncode == 1
    assert checked.stdout.splitlines() == [
        "would reformat a.flow",
        "1 of 2 files would be reformatted",
    ]
    diffed = flowc("fmt", "--diff", "a.flow", cwd=tmp_path)
    assert diffed.returncode == 1
    assert diffed.stdout.startswith("--- a.flow\n+++ a.flow\n@@")
    assert "+  target  = warehouse  # where\n" in diffed.stdout
    assert (tmp_path / "a.flow").read_text() == MESSY


def test_fmt_rewrites_files_and_reports_syntax_errors(tmp_path: Path) -> None:
    (tmp_path / "a.flow").write_text(MESSY)
    (tmp_path / "bad.flow").write_text("pipeline p {\n  target: warehouse\n}\n")
    result = flowc("fmt", cwd=tmp_path)
    assert result.returncode == 1
    assert "reformatted a.flow" in result.stdout
    assert "F0106" in result.stderr and "bad.flow:2:9" in result.stderr
    assert (tmp_path / "a.flow").read_text() == CANONICAL
    assert (tmp_path / "bad.flow").read_text() == "pipeline p {\n  target: warehouse\n}\n"
    assert flowc("fmt", "--check", "a.flow", cwd=tmp_path).returncode == 0


def test_format_sql_setting_in_flow_toml(tmp_path: Path) -> None:
    (tmp_path / "flow.toml").write_text("[project]\nformat_sql = true\n")
    (tmp_path / "p.flow").write_text(SQL_SPEC)
    assert flowc("fmt", "p.flow", cwd=tmp_path).returncode == 0
    assert "SELECT\n      a," in (tmp_path / "p.flow").read_text()
    (tmp_path / "flow.toml").write_text('[project]\nformat_sql = "yes"\n')
    checked = flowc("check", "p.flow", cwd=tmp_path)
    assert checked.returncode == 1
    assert "`format_sql` in `[project]` must be `true` or `false`" in checked.stdout


def test_fmt_formats_a_copy_of_the_green_taxi_project(tmp_path: Path) -> None:
    root = tmp_path / "g"
    shutil.copytree(REPO / "specs" / "green_taxi", root, ignore=shutil.ignore_patterns("data"))
    spec = root / "specs" / "green_taxi.flow"
    spec.write_text(spec.read_text().replace("  target      =", "target=", 1))
    assert flowc("fmt", "--check", ".", cwd=root).returncode == 1
    assert flowc("fmt", ".", cwd=root).returncode == 0
    assert (
        spec.read_text()
        == (REPO / "specs" / "green_taxi" / "specs" / "green_taxi.flow").read_text()
    )


# --- properties -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", parsed_examples(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_example_formats_faithfully(path: Path) -> None:
    assert_formats_faithfully(path.read_text(encoding="utf-8"))


def _parses(text: str) -> bool:
    return not parse(text, "p.flow")[1].has_errors


parseable_blocks = test_fuzz.block_texts.filter(_parses)
plausible_specs = test_fuzz.plausible_specs.filter(_parses)
FEWER = settings(max_examples=100)  # each example formats and parses twice


@FEWER
@given(text=parseable_blocks)
def test_generated_blocks_format_faithfully(text: str) -> None:
    assert_formats_faithfully(text)


@FEWER
@given(text=plausible_specs)
def test_plausible_specs_format_faithfully(text: str) -> None:
    assert_formats_faithfully(text)


separators = st.sampled_from(
    [" ", "  ", "\n", "\n\n\n", "\t", " # trailing\n", "\n# own line\n", "\n  ## two\n\n"]
)


@st.composite
def relaid(draw: st.DrawFn) -> str:
    """A generated spec's tokens with random whitespace and comments between them."""
    text = draw(st.one_of(parseable_blocks, plausible_specs))
    tokens = [str(t) for t in _lark().lex(text)]
    gaps = draw(st.lists(separators, min_size=len(tokens), max_size=len(tokens)))
    return "".join(token + gap for token, gap in zip(tokens, gaps, strict=True))


@FEWER
@given(text=relaid())
def test_relaid_specs_format_faithfully(text: str) -> None:
    out = assert_formats_faithfully(text)
    raw = set()  # lines inside raw strings: trailing blanks there are part of the value
    for token in _lark().lex(out):
        if token.type == "RAW_STRING":
            raw |= set(range(token.line or 0, (token.end_line or 0) + 1))
    lines = out.split("\n")
    assert all(line == line.rstrip() for n, line in enumerate(lines, 1) if n not in raw)


def test_flowc_init_writes_a_formatted_spec(tmp_path: Path) -> None:
    assert flowc("init", "p", cwd=tmp_path).returncode == 0
    checked = flowc("fmt", "--check", ".", cwd=tmp_path / "p")
    assert checked.returncode == 0, checked.stdout
