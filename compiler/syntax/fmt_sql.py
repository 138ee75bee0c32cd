"""Embedded SQL as sqlglot lays it out, kept only when it reads back as the same query."""

from __future__ import annotations

from typing import Any


def pretty_sql(sql: str, dialect: str) -> str | None:
    """sqlglot's layout of one query, or None unless flowc reads it back as the same query:
    the same tree, the same `:name` parameters, the same comments."""
    import sqlglot
    from flowc.compiler.analysis.sql_parse import ParsedQuery, parse_query
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    before = parse_query(sql, dialect)
    if not isinstance(before, ParsedQuery):
        return None
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
        # sqlglot prints a `:name` parameter as the dialect's own (`$name`): keep flowc's form.
        tree = tree.transform(
            lambda node: exp.var(f":{node.name}") if isinstance(node, exp.Placeholder) else node
        )
        pretty = tree.sql(dialect=dialect, pretty=True)
    except SqlglotError:
        return None
    after = parse_query(pretty, dialect)
    if not isinstance(after, ParsedQuery) or after.tree != before.tree:
        return None
    if after.placeholders != before.placeholders:
        return None
    if _sql_comments(before.tree) != _sql_comments(after.tree):
        return None
    return pretty


def _sql_comments(tree: Any) -> list[str]:
    return sorted(c for node in tree.walk() for c in (node.comments or []))
