"""Regular expressions: DuckDB's full matches, `regexp_replace` flags and `regexp_extract`.

DuckDB's `regexp_extract` is '' when nothing matches and `regexp_replace` replaces the first
match unless told `g`; the targets say so with other functions, or refuse.
"""

from __future__ import annotations

import re

from flowc.compiler.codegen.rewrites.context import Context
from flowc.compiler.codegen.rewrites.trees import (
    bottom_up,
    filled,
    literal_text,
    positive_int,
    text_literal,
)
from sqlglot import exp


def full_match(tree: exp.Query, context: Context) -> None:
    """`regexp_full_match(s, p)` and DuckDB's `s SIMILAR TO p` (a regular expression
    matching the whole string; Postgres' SIMILAR TO is SQL's own pattern language): a match
    of the anchored pattern."""
    for node in bottom_up(tree, exp.RegexpFullMatch, exp.SimilarTo):
        pattern = node.expression
        written = literal_text(pattern)
        anchored: exp.Expr
        if written is not None:
            anchored = text_literal(f"^(?:{written})$")
        else:
            anchored = exp.DPipe(
                this=exp.DPipe(this=text_literal("^(?:"), expression=pattern.copy()),
                expression=text_literal(")$"),
            )
        node.replace(exp.RegexpLike(this=node.this.copy(), expression=anchored))


def regexp_replace(tree: exp.Query, context: Context) -> None:
    """BigQuery's `REGEXP_REPLACE` replaces every match and takes no flags: DuckDB's `g`
    is its own meaning, `i` an inline `(?i)`; without `g` DuckDB replaces the first match
    only, which BigQuery has no way to say unless the pattern can match once (`^...`)."""
    if not context.bigquery:
        return
    for node in bottom_up(tree, exp.RegexpReplace):
        flags = node.args.get("modifiers")
        written = literal_text(flags) if flags is not None else ""
        pattern = literal_text(node.expression)
        if written is None or pattern is None or set(written) - {"g", "i"}:
            context.refuse(
                node,
                "`regexp_replace` with these flags or a pattern not constant",
                "use constant pattern and flags (`'g'`, `'i'`)",
            )
            continue
        if "g" not in written and not pattern.startswith("^"):
            context.refuse(
                node,
                "`regexp_replace` of the first match only",
                "replace every match (`regexp_replace(s, p, r, 'g')`), or anchor the pattern",
            )
            continue
        if "i" in written:
            node.set("expression", text_literal(f"(?i){pattern}"))
        node.set("modifiers", None)


def regexp_extract(tree: exp.Query, context: Context) -> None:
    """DuckDB's `regexp_extract(s, p[, group])` is '' when nothing matches. Postgres:
    `regexp_match` of the pattern in a group of its own; BigQuery's `REGEXP_EXTRACT` gives
    the whole match of a pattern without groups, or the group of a pattern with one."""
    for node in bottom_up(tree, exp.RegexpExtract):
        pattern = literal_text(node.expression)
        group = node.args.get("group")
        index = 0 if group is None else positive_int(group) or (0 if _is_zero(group) else None)
        if pattern is None or index is None or node.args.get("parameters"):
            context.refuse(
                node,
                "`regexp_extract` of a pattern or group not constant",
                "write the pattern and the group number as constants",
            )
            continue
        if context.postgres:
            template = (
                "COALESCE((REGEXP_MATCH(__s, __p))[__g], CASE WHEN __s IS NOT NULL THEN '' END)"
            )
            values = {
                "s": node.this,
                "p": text_literal(f"({pattern})"),
                "g": exp.Literal.number(index),
            }
            node.replace(filled(template, "postgres", **values))
            continue
        groups = _groups(pattern)
        if (index, groups) not in ((0, 0), (1, 1)):
            context.refuse(
                node,
                "`regexp_extract` of this group",
                "extract the whole match of a pattern without groups, or its one group",
            )
            continue
        template = "IF(__s IS NULL, NULL, COALESCE(REGEXP_EXTRACT(__s, __p), ''))"
        node.replace(filled(template, "bigquery", s=node.this, p=text_literal(pattern)))


def _is_zero(node: exp.Expr | None) -> bool:
    return isinstance(node, exp.Literal) and node.is_int and int(node.this) == 0


def _groups(pattern: str) -> int:
    """The capturing groups of a regular expression: `(` not escaped nor `(?`."""
    return len(re.findall(r"(?<!\\)\((?!\?)", pattern))
