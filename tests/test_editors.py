"""The VS Code extension folder: a manifest that wires the grammar and `flowc lsp`, and a
TextMate grammar whose rules match what the shipped examples hold."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VSCODE = REPO / "editors" / "vscode"
EXAMPLES = sorted([*REPO.glob("specs/*/specs/*.flow"), REPO / "tests/jaffle_shop/jaffle_shop.flow"])


def grammar() -> dict[str, Any]:
    found: dict[str, Any] = json.loads((VSCODE / "syntaxes" / "flow.tmLanguage.json").read_text())
    return found


def rule(name: str) -> re.Pattern[str]:
    found = grammar()["repository"][name]
    return re.compile(found.get("match") or found["begin"], re.MULTILINE)


def test_manifest_wires_language_grammar_and_server() -> None:
    manifest = json.loads((VSCODE / "package.json").read_text())
    [language] = manifest["contributes"]["languages"]
    [syntax] = manifest["contributes"]["grammars"]
    assert language["extensions"] == [".flow"]
    assert syntax["language"] == language["id"] == "flow"
    assert (VSCODE / syntax["path"]).is_file()
    assert syntax["scopeName"] == grammar()["scopeName"]
    assert syntax["embeddedLanguages"] == {"meta.embedded.block.sql": "sql"}
    assert (VSCODE / manifest["main"]).is_file()
    assert 'args: ["lsp"]' in (VSCODE / "extension.js").read_text()
    assert "vscode-languageclient" in manifest["dependencies"]


def test_every_grammar_pattern_compiles() -> None:
    def patterns(node: object) -> list[str]:
        if isinstance(node, dict):
            own = [node[k] for k in ("match", "begin", "end") if k in node]
            return own + [p for v in node.values() for p in patterns(v)]
        if isinstance(node, list):
            return [p for v in node for p in patterns(v)]
        return []

    found = patterns(grammar())
    assert len(found) > 10
    for pattern in found:
        re.compile(pattern)


def test_rules_match_the_examples() -> None:
    for path in EXAMPLES:
        text = path.read_text()
        kinds = "pipeline|schema|source|transform|sink|test"
        headers = re.findall(rf"^({kinds}) (\w+) \{{", text, re.MULTILINE)
        matched = [m.groups() for m in rule("block").finditer(text)]
        assert matched == headers, path
        sql = len(re.findall(r'^\s*sql\s*=\s*"""', text, re.MULTILINE))
        assert len(rule("sql").findall(text)) == sql, path
    assert rule("comment").search("  target = x  # where").group() == "# where"  # type: ignore[union-attr]
