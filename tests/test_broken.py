"""The broken-spec corpus: every case under `tests/broken/` reports exactly what it says.

A case is a single file `tests/broken/<slug>.flow`, or a folder `tests/broken/<slug>/` holding a
small project (`flow.toml`, `.env`, `specs/*.flow`, `sql/`, `blocks/`). The leading `#` comment
lines of each .flow file say what `flowc check` must report for it, one line per diagnostic:

    # expect: F0301 12:11                      code, line:col in this .flow file
    # expect: F0605 flow.toml:7:1              ... or in another file of the case
    # expect: F0204 9:3 note 8:3               ... with a note (the first definition) at 8:3
    # expect: F0208 14:27 "did you mean"       ... whose message, hint or notes hold that text
    # expect: nothing                          a clean case
    # env: NAME=value                          the environment of the check (else empty)
    # profile: all                             `--profile` of the check
    # absent: hunter2                          text that no output form may contain (secrets)
    # xfail: reason                            the compiler is known to get this case wrong

The (code, file, line, column) of the diagnostics reported must be exactly the expected ones
(as a multiset: a diagnostic reported twice must be expected twice), warnings included, so each
case also proves that nothing else is reported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flowc.compiler import render
from flowc.compiler.codes import CODES
from flowc.compiler.diagnostics import Diagnostic
from flowc.compiler.driver.check import CheckResult, check_paths

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
BROKEN = TESTS / "broken"

_EXPECT = re.compile(
    r"(?P<code>F\d{4})\s+(?:(?P<file>[^\s:]+):)?(?P<line>\d+):(?P<col>\d+)"
    r"(?:\s+note\s+(?P<note_line>\d+):(?P<note_col>\d+))?"
    r'(?:\s+"(?P<text>.*)")?'
)
_DIRECTIVE = re.compile(r"#\s*(?P<key>expect|env|profile|absent|xfail):\s*(?P<value>.*?)\s*$")

Key = tuple[str, str, int, int]  # code, file (relative to the case), line, column


@dataclass(frozen=True)
class Expected:
    code: str
    file: str
    line: int
    col: int
    note: tuple[int, int] | None = None
    text: str | None = None

    @property
    def key(self) -> Key:
        return (self.code, self.file, self.line, self.col)


@dataclass
class Case:
    slug: str
    path: Path  # what `flowc check` is given: the .flow file or the case folder
    base: Path  # what the file names of expectations are relative to
    expected: list[Expected] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    profile: str | None = None
    absent: list[str] = field(default_factory=list)
    xfail: str | None = None
    declared: bool = False  # an `expect:` line was written, possibly `expect: nothing`


def header(path: Path) -> list[str]:
    """The leading comment lines of a .flow file (read leniently: some cases are not UTF-8)."""
    lines = []
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


def load_case(path: Path) -> Case:
    folder = path.is_dir()
    case = Case(slug=path.stem, path=path, base=path if folder else path.parent)
    flows = sorted(path.rglob("*.flow")) if folder else [path]
    for flow in flows:
        own = flow.relative_to(case.base).as_posix()
        for line in header(flow):
            directive = _DIRECTIVE.fullmatch(line)
            if directive:
                _apply(case, own, directive["key"], directive["value"])
    if not case.declared:
        raise ValueError(f"{path}: no `# expect:` line (write `# expect: nothing` if clean)")
    return case


def _apply(case: Case, own_file: str, key: str, value: str) -> None:
    if key == "expect":
        case.declared = True
        if value != "nothing":
            case.expected.append(_expected(value, own_file, case.path))
    elif key == "env":
        name, _, setting = value.partition("=")
        case.env[name] = setting
    elif key == "profile":
        case.profile = value
    elif key == "absent":
        case.absent.append(value)
    else:
        case.xfail = value


def _expected(text: str, own_file: str, where: Path) -> Expected:
    found = _EXPECT.fullmatch(text)
    if found is None:
        raise ValueError(f"{where}: cannot read `# expect: {text}`")
    note = None
    if found["note_line"]:
        note = (int(found["note_line"]), int(found["note_col"]))
    return Expected(
        code=found["code"],
        file=found["file"] or own_file,
        line=int(found["line"]),
        col=int(found["col"]),
        note=note,
        text=found["text"],
    )


def all_cases() -> list[Case]:
    paths = sorted(
        p
        for p in BROKEN.iterdir()
        if not p.name.startswith(".") and (p.suffix == ".flow" or p.is_dir())
    )
    return [load_case(p) for p in paths]


CASES = all_cases()


def case_params() -> list[Any]:
    params = []
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        params.append(pytest.param(case, id=case.slug, marks=marks))
    return params


def relative(file: str, base: Path) -> str:
    """A diagnostic's file (relative to the working folder, or absolute) relative to `base`."""
    path = Path(file)
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        return absolute.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return file


def run(case: Case) -> CheckResult:
    return check_paths([case.path], profile=case.profile, env=case.env, use_cache=False)


def key_of(diagnostic: Diagnostic, base: Path) -> Key:
    span = diagnostic.span
    return (diagnostic.code, relative(span.file, base), span.line, span.col)


def describe(diagnostic: Diagnostic, base: Path) -> str:
    code, file, line, col = key_of(diagnostic, base)
    hint = f" (hint: {diagnostic.hint})" if diagnostic.hint else ""
    return f"{code} {file}:{line}:{col} {diagnostic.message}{hint}"


def texts(diagnostic: Diagnostic) -> str:
    notes = " ".join(note.message for note in diagnostic.notes)
    return f"{diagnostic.message} {diagnostic.hint or ''} {notes}"


# --- the cases ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", case_params())
def test_broken_case(case: Case) -> None:
    result = run(case)
    got = Counter(key_of(d, case.base) for d in result.diagnostics)
    want = Counter(e.key for e in case.expected)
    missing = sorted((want - got).elements())
    extra = got - want
    unexpected = [describe(d, case.base) for d in result.diagnostics if extra[key_of(d, case.base)]]
    assert not missing and not unexpected, (
        f"missing: {missing}\nunexpected: {unexpected}\n"
        f"all reported: {[describe(d, case.base) for d in result.diagnostics]}"
    )
    for expected in case.expected:
        _check_details(
            expected, [d for d in result.diagnostics if key_of(d, case.base) == expected.key], case
        )


def _check_details(expected: Expected, matching: list[Diagnostic], case: Case) -> None:
    if expected.text is not None:
        assert any(expected.text in texts(d) for d in matching), (
            f"{expected.key}: no diagnostic says {expected.text!r}: "
            f"{[describe(d, case.base) for d in matching]}"
        )
    if expected.note is not None:
        notes = {
            (relative(n.span.file, case.base), n.span.line, n.span.col)
            for d in matching
            for n in d.notes
        }
        assert (expected.file, *expected.note) in notes, f"{expected.key}: notes are {notes}"


@pytest.mark.parametrize("case", [c for c in CASES if c.absent], ids=lambda c: c.slug)
def test_secrets_never_shown(case: Case) -> None:
    result = run(case)
    shown = [
        render.render_text(result.diagnostics, render.file_lines({})),
        render.render_json(result.diagnostics, len(result.files)),
        render.render_github(result.diagnostics),
        *(texts(d) for d in result.diagnostics),
    ]
    for secret in case.absent:
        assert not [form for form in shown if secret in form], f"{secret!r} is shown"


def test_every_code_is_covered() -> None:
    covered = {e.code for case in CASES for e in case.expected}
    # F0901 is the internal error, F10xx are reported by runs (tests/test_spec_errors.py)
    run_time = {code for code in CODES if code.startswith("F10")}
    assert sorted(set(CODES) - {"F0901"} - run_time - covered) == []


def test_corpus_is_large_and_its_expectations_are_sound() -> None:
    assert len(CASES) >= 40
    for case in CASES:
        for expected in case.expected:
            assert expected.code in CODES, f"{case.slug}: {expected.code} is not a code"
            assert (case.base / expected.file).is_file(), f"{case.slug}: {expected.file}"


# --- the command line -----------------------------------------------------------------------

CLI_CASE = "sql_unknown_column"


def cli_case(slug: str) -> Case:
    return next(case for case in CASES if case.slug == slug)


def flowc(case: Case, folder: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """`flowc check` on a copy of `case` in `folder` (so no cache lands in the repository),
    run from `folder`; also returns the path given on the command line."""
    target = folder / case.path.name
    if case.path.is_dir():
        shutil.copytree(case.path, target)
    else:
        shutil.copy2(case.path, target)
    environment = {"PATH": os.environ.get("PATH", ""), **case.env}
    if "PYTHONPATH" in os.environ:
        environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
    done = subprocess.run(
        [sys.executable, "-m", "flowc", "check", case.path.name, *args],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, case.path.name


def test_cli_text_output_has_the_shape_of_language_section_6(tmp_path: Path) -> None:
    case = cli_case(CLI_CASE)
    [expected] = case.expected
    done, path = flowc(case, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    source = case.path.read_text(encoding="utf-8").split("\n")[expected.line - 1]
    word = re.match(r"\w+", source[expected.col - 1 :])
    assert word is not None
    gutter = " " * len(str(expected.line))
    underline = " " * (expected.col - 1) + "^" * len(word[0])
    shape = [
        f"error[{expected.code}]: unknown column `{word[0]}`",
        f"{gutter}--> {path}:{expected.line}:{expected.col}",
        f"{gutter} |",
        f"{expected.line} | {source}",
        f"{gutter} | {underline} did you mean `passenger_count`?",
    ]
    lines = done.stdout.split("\n")
    assert shape[0] in lines, done.stdout
    start = lines.index(shape[0])
    assert lines[start : start + len(shape)] == shape
    assert "checked 1 file: 1 error, 0 warnings" in lines


def test_cli_json_output(tmp_path: Path) -> None:
    case = cli_case(CLI_CASE)
    [expected] = case.expected
    done, path = flowc(case, tmp_path, "--format", "json")
    assert done.returncode == 1, done.stdout + done.stderr
    document = json.loads(done.stdout)
    [diagnostic] = document["diagnostics"]
    assert (diagnostic["code"], diagnostic["file"], diagnostic["line"], diagnostic["col"]) == (
        expected.code,
        path,
        expected.line,
        expected.col,
    )
    assert diagnostic["severity"] == "error"
    assert document["summary"] == {"files": 1, "errors": 1, "warnings": 0, "notes": 0}


def test_cli_github_output(tmp_path: Path) -> None:
    case = cli_case(CLI_CASE)
    [expected] = case.expected
    done, path = flowc(case, tmp_path, "--format", "github")
    assert done.returncode == 1, done.stdout + done.stderr
    annotations = [line for line in done.stdout.splitlines() if line.startswith("::")]
    assert len(annotations) == 1
    assert annotations[0].startswith(
        f"::error file={path},line={expected.line},col={expected.col},"
    )


def test_cli_clean_case_exits_0(tmp_path: Path) -> None:
    done, _ = flowc(cli_case("env_from_dotenv"), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no problems found" in done.stdout


@pytest.mark.parametrize("output", ["text", "json", "github"])
def test_cli_never_prints_a_secret(tmp_path: Path, output: str) -> None:
    case = cli_case("secret_not_printed")
    done, _ = flowc(case, tmp_path, "--format", output)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "F0605" in done.stdout
    for secret in case.absent:
        assert secret not in done.stdout + done.stderr
