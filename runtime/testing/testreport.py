"""How `flowc test` reports: text for people, JSON, GitHub annotations, JUnit XML for CI.

Text shows one line per test, then for each failure its row diff:

    FAIL specs/green_taxi.flow::clean_keeps_real_trips (clean_trips)
      expected 2 row(s), got 2: 1 changed
        columns: VendorID, lpep_pickup_date
        ~ [1, 2020-10-01]  lpep_pickup_date: expected 2020-10-01, got 2020-10-02
        - [2, 2020-10-03]  missing
        + [2, 2020-10-04]  unexpected
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence

from flowc.compiler import render
from flowc.compiler.diagnostics import Diagnostic
from flowc.runtime.testing.testrun import Outcome, Report, Row, RowDiff, cell_text

_SHOWN = 20  # rows of each kind a text diff shows
_WORDS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}


def summary(report: Report) -> str:
    tests = len(report.outcomes)
    text = (
        f"{tests} test{'s' if tests != 1 else ''}: {report.count('passed')} passed, "
        f"{report.count('failed')} failed, {report.count('error')} errors "
        f"({report.seconds:.2f}s)"
    )
    errors = sum(1 for d in report.diagnostics if d.severity == "error")
    if errors:
        text += f"; {errors} spec error{'s' if errors != 1 else ''}: those specs' tests did not run"
    return text


# --- text -------------------------------------------------------------------------------------


def render_text(report: Report, *, color: bool = False) -> str:
    lines: list[str] = []
    if report.diagnostics:
        lines.append(render.render_text(report.diagnostics, render.file_lines({}), color=color))
    for outcome in report.outcomes:
        lines += _text_one(outcome)
    lines.append(summary(report))
    return "\n".join(lines)


def _text_one(outcome: Outcome) -> list[str]:
    took = f"{outcome.seconds * 1000:.0f} ms"
    head = f"{_WORDS[outcome.status]} {outcome.label} ({outcome.node}, {took})"
    lines = [head]
    lines += [f"  note: {note}" for note in outcome.notes]
    if outcome.status == "passed":
        return lines
    lines += [f"  {line}" for line in outcome.message.splitlines()]
    if outcome.diff is not None and not outcome.diff.empty:
        lines += ["    " + line for line in diff_lines(outcome.diff)]
    return lines


def diff_lines(diff: RowDiff) -> list[str]:
    """The row diff, one line per row: `~` changed, `-` missing, `+` unexpected."""
    lines = ["columns: " + ", ".join(diff.columns)]
    for changed in diff.changed[:_SHOWN]:
        cells = "; ".join(
            f"{c}: expected {cell_text(e)}, got {cell_text(a)}"
            for c, e, a in zip(diff.columns, changed.expected, changed.actual, strict=True)
            if e != a
        )
        lines.append(f"~ {_row(changed.expected)}  {cells}")
    lines += [f"- {_row(r)}  missing" for r in diff.missing[:_SHOWN]]
    lines += [f"+ {_row(r)}  unexpected" for r in diff.unexpected[:_SHOWN]]
    hidden = sum(max(0, len(k) - _SHOWN) for k in (diff.changed, diff.missing, diff.unexpected))
    if hidden:
        lines.append(f"... and {hidden} more")
    return lines


def _row(row: Row) -> str:
    return "[" + ", ".join(cell_text(v) for v in row) + "]"


# --- json -------------------------------------------------------------------------------------


def render_json(report: Report) -> str:
    document = {
        "tests": [_json_one(o) for o in report.outcomes],
        "diagnostics": json.loads(render.render_json(report.diagnostics, report.files))[
            "diagnostics"
        ],
        "summary": {
            "files": report.files,
            "tests": len(report.outcomes),
            "passed": report.count("passed"),
            "failed": report.count("failed"),
            "errors": report.count("error"),
            "seconds": round(report.seconds, 3),
        },
    }
    return json.dumps(document, indent=2, sort_keys=True, default=str)


def _json_one(outcome: Outcome) -> dict[str, object]:
    diff = outcome.diff
    return {
        "file": outcome.file,
        "test": outcome.test,
        "node": outcome.node,
        "line": outcome.span.line,
        "col": outcome.span.col,
        "status": outcome.status,
        "seconds": round(outcome.seconds, 4),
        "engine": outcome.engine,
        "message": outcome.message,
        "notes": outcome.notes,
        "diff": None
        if diff is None or diff.empty
        else {
            "columns": diff.columns,
            "expected_rows": diff.expected_rows,
            "actual_rows": diff.actual_rows,
            "missing": [list(r) for r in diff.missing],
            "unexpected": [list(r) for r in diff.unexpected],
            "changed": [
                {"expected": list(c.expected), "actual": list(c.actual), "columns": c.cells}
                for c in diff.changed
            ],
        },
    }


# --- github -----------------------------------------------------------------------------------


def render_github(report: Report) -> str:
    """One `::error` workflow command per failed test (at its `test` block) and per spec
    error, then the summary."""
    lines = [render.render_github(report.diagnostics)] if report.diagnostics else []
    for outcome in report.outcomes:
        if outcome.status == "passed":
            continue
        body = [outcome.message]
        if outcome.diff is not None and not outcome.diff.empty:
            body += diff_lines(outcome.diff)
        lines.append(_annotation(outcome, "\n".join(body)))
    lines.append(summary(report))
    return "\n".join(lines)


def _annotation(outcome: Outcome, message: str) -> str:
    properties = {
        "file": outcome.file,
        "line": str(outcome.span.line),
        "col": str(outcome.span.col),
        "title": f"flowc test {outcome.test} {outcome.status}",
    }
    joined = ",".join(f"{k}={_escape_property(v)}" for k, v in properties.items())
    return f"::error {joined}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


# --- junit ------------------------------------------------------------------------------------


def render_junit(report: Report) -> str:
    """JUnit XML: a `testsuite` per spec file, a `testcase` per test (classname: the file,
    name: the test); a spec with errors is one `testcase` named `flowc check` in error."""
    root = ElementTree.Element("testsuites", _counts(report.outcomes, report.seconds))
    suites: dict[str, ElementTree.Element] = {}
    by_file: dict[str, list[Outcome]] = {}
    for outcome in report.outcomes:
        by_file.setdefault(outcome.file, []).append(outcome)
    for file, outcomes in by_file.items():
        seconds = sum(o.seconds for o in outcomes)
        suites[file] = ElementTree.SubElement(
            root, "testsuite", {"name": file, **_counts(outcomes, seconds)}
        )
        for outcome in outcomes:
            _junit_case(suites[file], outcome)
    _junit_spec_errors(root, report.diagnostics)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)


def _counts(outcomes: Sequence[Outcome], seconds: float) -> dict[str, str]:
    return {
        "tests": str(len(outcomes)),
        "failures": str(sum(o.status == "failed" for o in outcomes)),
        "errors": str(sum(o.status == "error" for o in outcomes)),
        "time": f"{seconds:.3f}",
    }


def _junit_case(suite: ElementTree.Element, outcome: Outcome) -> None:
    case = ElementTree.SubElement(
        suite,
        "testcase",
        {
            "classname": outcome.file,
            "name": outcome.test,
            "file": outcome.file,
            "line": str(outcome.span.line),
            "time": f"{outcome.seconds:.3f}",
        },
    )
    if outcome.status == "passed":
        return
    tag = "failure" if outcome.status == "failed" else "error"
    detail = ElementTree.SubElement(case, tag, {"message": outcome.message.split("\n")[0]})
    body = [outcome.message]
    if outcome.diff is not None and not outcome.diff.empty:
        body += diff_lines(outcome.diff)
    detail.text = "\n".join(body)


def _junit_spec_errors(root: ElementTree.Element, diagnostics: Sequence[Diagnostic]) -> None:
    errors = [d for d in diagnostics if d.severity == "error"]
    files = sorted({d.span.file for d in errors})
    for file in files:
        suite = ElementTree.SubElement(
            root, "testsuite", {"name": file, "tests": "1", "failures": "0", "errors": "1"}
        )
        case = ElementTree.SubElement(suite, "testcase", {"classname": file, "name": "flowc check"})
        found = [d for d in errors if d.span.file == file]
        detail = ElementTree.SubElement(case, "error", {"message": found[0].message})
        detail.text = "\n".join(
            f"{d.span.file}:{d.span.line}:{d.span.col}: {d.code} {d.message}" for d in found
        )
    if files:
        total = int(root.get("errors", "0")) + len(files)
        root.set("errors", str(total))
        root.set("tests", str(int(root.get("tests", "0")) + len(files)))
