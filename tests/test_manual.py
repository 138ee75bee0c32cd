"""The manual stands alone and says what the code does: docs/ never points outside the
repository, and every Python block example of docs/language.md runs as written, as a node of
a real project, doing what the text next to it says."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from flowc_cli import flowc

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE = ROOT / "docs" / "language.md"
USER_DOCS = [
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "README.md",
    *sorted((ROOT / "specs").rglob("*.md")),
]


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_docs_refer_to_nothing_outside_the_repository(doc: Path) -> None:
    text = doc.read_text()
    assert "LANGUAGE.md" not in text
    assert "shared/" not in text
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if not target.startswith(("http://", "https://")):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def python_examples() -> list[tuple[str, str, str]]:
    """(file, node declaration, code) of each example: its first line reads
    `# blocks/x.py -- source s { ... }`."""
    text = LANGUAGE.read_text()
    found = []
    for code in re.findall(r"```python\n(.*?)```", text, re.DOTALL):
        header = code.splitlines()[0]
        match = re.fullmatch(r"# (blocks/\w+\.py) -- (.+)", header)
        assert match, f"a Python example without its node: {header}"
        found.append((match.group(1), match.group(2), code))
    return found


# the project each example runs in: `trips` to read, the run_date parameter, a sink per node
PIPELINE = """\
pipeline manual {
  PARAMS
}

source trips {
  from = csv("data/trips.csv", header = true)
  columns { id int  fare double  tip double }
}

transform clean_trips {
  sql = "SELECT * FROM trips WHERE fare > 0"
}
"""
TRIPS = "id,fare,tip\n1,12.5,2\n2,8,1\n3,30,5\n"

# what each example's node holds after the run (as CSV), or the error it fails with
EXPECTED = {
    "rates": "day,rate\n2024-03-01,1.25\n2024-03-02,1.5\n2024-03-03,1.75\n",
    "snake_trips": "id,fare,tip\n1,12.5,2.0\n2,8.0,1.0\n3,30.0,5.0\n",
    "with_total": "id,fare,tip,total\n1,12.5,2.0,14.5\n2,8.0,1.0,9.0\n3,30.0,5.0,35.0\n",
    "big_fares": "id,fare,tip\n1,12.5,2.0\n3,30.0,5.0\n",
    "vendors": "id,name\n1,Creative Mobile\n2,VeriFone\n",
}


@pytest.mark.parametrize("example", python_examples(), ids=lambda e: e[0])
def test_each_python_example_runs_as_documented(
    example: tuple[str, str, str], tmp_path: Path
) -> None:
    file, node, code = example
    name = node.split()[1]
    (tmp_path / "blocks").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / file).write_text(code)
    (tmp_path / "data" / "trips.csv").write_text(TRIPS)
    sink = f'sink {name}_csv {{\n  input = {name}\n  to    = csv("out/{name}.csv")\n}}\n'
    # a parameter no SQL uses is a warning (F0505): declared only for the block that takes it
    params = 'params { run_date date = "2024-03-01" }' if "run_date" in code else ""
    assert ("run_date" in code) == (name == "rates")
    (tmp_path / "manual.flow").write_text(f"{PIPELINE.replace('PARAMS', params)}\n{node}\n\n{sink}")
    checked = flowc("check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout
    # a parameter only a Python source takes is used: no F0505
    assert checked.stdout.strip() == "checked 1 file: no problems found"
    ran = flowc("run", cwd=tmp_path)
    if name == "checked":  # the example that raises
        (tmp_path / "data" / "trips.csv").write_text(TRIPS + "4,-3,0\n")
        ran = flowc("run", cwd=tmp_path)
        assert ran.returncode == 1
        said = "checked: `blocks/strict.py:no_negative` raised ValueError: negative fares"
        assert said in ran.stderr, ran.stderr
        assert code.count(said) == 1  # what the comment in the example says
        return
    assert ran.returncode == 0, ran.stderr
    assert _values((tmp_path / "out" / f"{name}.csv").read_text()) == _values(EXPECTED[name])


def _values(text: str) -> list[list[object]]:
    """CSV rows with numbers compared as numbers (`2` and `2.0` are one value)."""

    def value(cell: str) -> object:
        try:
            return float(cell)
        except ValueError:
            return cell

    return [[value(cell) for cell in row] for row in csv.reader(io.StringIO(text))]
