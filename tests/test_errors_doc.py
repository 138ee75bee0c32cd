"""docs/errors.md and the code registry stay in step: every code has a section, and each
section's example, checked, reports that code with the message and position the doc shows.

An example is a small project: the section's ```flow block is `specs/example.flow`; a ```toml
block is `flow.toml` (else a minimal one is written); a ```dotenv block is `.env`; a block whose
info string says `file=PATH` (and maybe `encoding=...`) is that file. The `$ flowc check ...`
line of the ```text block gives the command line (`--profile`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flowc.compiler import render
from flowc.compiler.codes import CODES
from flowc.compiler.diagnostics import Diagnostic
from flowc.compiler.driver.check import check_paths
from flowc.compiler.driver.compile import compile_spec

DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
MINIMAL_TOML = '[project]\nname = "example"\n'

_HEADING = re.compile(r"^## (?P<code>F\d{4}): (?P<title>.+)$", re.MULTILINE)
_FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
_SHOWN = re.compile(r"^((?:error|warning|note)\[F\d{4}\]: .*|\s*--> .*)$", re.MULTILINE)

# Codes whose example shows what flowc is to report, but does not yet.
_COMMANDS = ("$ flowc check ", "$ flowc compile ")

NOT_REPORTED: dict[str, str] = {}


@dataclass(frozen=True)
class Section:
    code: str
    title: str
    text: str

    def blocks(self) -> list[tuple[str, str]]:
        return [(m["info"].strip(), m["body"]) for m in _FENCE.finditer(self.text)]

    def block(self, language: str) -> str | None:
        return next((body for info, body in self.blocks() if info == language), None)


def sections() -> dict[str, Section]:
    text = DOC.read_text(encoding="utf-8")
    headings = list(_HEADING.finditer(text))
    found = {}
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        end = following.start() if following else len(text)
        found[heading["code"]] = Section(
            heading["code"], heading["title"], text[heading.end() : end]
        )
    return found


SECTIONS = sections()


def write_project(section: Section, root: Path) -> list[str]:
    """Write the section's example under `root`; return the `flowc check` arguments it shows."""
    spec = section.block("flow")
    assert spec is not None, f"{section.code}: no ```flow example"
    (root / "specs").mkdir()
    (root / "specs" / "example.flow").write_text(spec, encoding="utf-8")
    (root / "flow.toml").write_text(section.block("toml") or MINIMAL_TOML, encoding="utf-8")
    dotenv = section.block("dotenv")
    if dotenv is not None:
        (root / ".env").write_text(dotenv, encoding="utf-8")
    for info, body in section.blocks():
        options = dict(word.split("=", 1) for word in info.split()[1:] if "=" in word)
        if "file" in options:
            path = root / options["file"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body.encode(options.get("encoding", "utf-8")))
    output = section.block("text") or ""
    command = output.split("\n", 1)[0]
    assert command.startswith(_COMMANDS), f"{section.code}: no `$ flowc check` line"
    return command.removeprefix("$ flowc ").split()


def test_every_code_has_a_section_with_its_title() -> None:
    assert sorted(SECTIONS) == sorted(CODES)
    for code, section in SECTIONS.items():
        assert section.title == CODES[code].title, code


def test_the_internal_error_is_explained() -> None:
    section = SECTIONS["F0901"]
    assert "exit" in section.text and "bug" in section.text


def example_params() -> list[Any]:
    params = []
    # F0901 is a bug; F10xx are reported by `flowc run`, once a step runs (test_spec_errors)
    for code in sorted(c for c in SECTIONS if c != "F0901" and not c.startswith("F10")):
        reason = NOT_REPORTED.get(code)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(code, id=code, marks=marks))
    return params


@pytest.mark.parametrize("code", example_params())
def test_example_reports_its_code_as_shown(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = SECTIONS[code]
    command, *arguments = write_project(section, tmp_path)
    profile = arguments[arguments.index("--profile") + 1] if "--profile" in arguments else None
    monkeypatch.chdir(tmp_path)
    diagnostics = _run(command, Path(arguments[0]), profile)
    assert code in {d.code for d in diagnostics}, diagnostics
    rendered = render.render_text(diagnostics, render.file_lines({}))
    shown = _SHOWN.findall(section.block("text") or "")
    assert shown == _SHOWN.findall(rendered), "docs/errors.md shows other messages or positions"


def _run(command: str, path: Path, profile: str | None) -> list[Diagnostic]:
    """The diagnostics of `flowc check` (or `flowc compile`, for F0308) on the example."""
    if command == "compile":
        return compile_spec(path, profile=profile, env={}).diagnostics
    return check_paths([path], profile=profile, env={}, use_cache=False).diagnostics
