"""One SQL body parsed into one query, or the problem that keeps it from being one.

Each body is tokenized and parsed once, in the pipeline's dialect. sqlglot's errors become
`SqlProblem`s positioned by offsets into the text (the SQL pass maps them into the file).
The walk that finds the tables a query reads also links each reference to a CTE with its
definition, as the engine does, and names the select items that have no name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from flowc.compiler.analysis.identifiers import identifier_key
from flowc.project.engines import ENGINES
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.parser import Parser
from sqlglot.tokenizer_core import Token, TokenType

_CONTEXT = 1 << 30  # sqlglot's error context: whole text, so `start_context` gives an offset


_MISSING = re.compile(r"Missing (.+) from \d+:(\d+)")


@dataclass(frozen=True)
class SqlProblem:
    """A diagnostic about SQL text, positioned by offsets into that text (end exclusive)."""

    code: str
    start: int | None
    end: int
    fields: dict[str, Any]
    hint: str | None = None


@dataclass(frozen=True)
class ParsedQuery:
    """A parsed SQL body: the query, its tokens, the tables it names that are not CTEs
    (first mention first) and the names of its placeholders."""

    tree: exp.Query
    tokens: list[Token]
    tables: list[exp.Table]
    placeholders: frozenset[str]


def parse_query(text: str, dialect: str) -> ParsedQuery | SqlProblem:
    """The one query in `text`, or the problem that keeps it from being one.

    >>> parse_query("SELECT 1; SELECT 2", "duckdb").fields
    {'got': '2 statements'}
    """
    try:
        tokens = _dialect(dialect).tokenize(text)
    except TokenError as error:
        return _token_problem(error, text)
    try:
        statements = _parser(dialect).parse(tokens, text)
    except ParseError as error:
        return _parse_problem(error, text)
    except (SqlglotError, RecursionError) as error:
        detail = str(error) if isinstance(error, SqlglotError) else "the query is nested too deeply"
        return SqlProblem("F0304", None, 0, {"detail": detail})
    query = _one_query(statements, tokens, text)
    if isinstance(query, SqlProblem):
        return query
    tables, names = _references(query, dialect)
    return ParsedQuery(query, tokens, tables, names)


def _references(tree: exp.Query, dialect: str) -> tuple[list[exp.Table], frozenset[str]]:
    """One walk: table references that are not CTEs, and placeholder names.

    A reference to a CTE is respelled as the CTE's definition spells it, so that sqlglot's
    scopes (which compare names exactly) link the two as the engine does. A select item that
    is neither a column nor aliased is named `_col_<i>` (`name_unnamed`).
    """
    ctes: dict[str, exp.Identifier] = {}
    tables: list[exp.Table] = []
    names: set[str] = set()
    engine = ENGINES.get(dialect)  # another sqlglot dialect (`flowc fmt`): `@x` is no parameter
    at_sign = engine is not None and engine.at_sign_parameters
    for node in tree.find_all(exp.Table, exp.CTE, exp.Placeholder, exp.Parameter, exp.Select):
        if isinstance(node, exp.Select):
            name_unnamed(node)
        elif isinstance(node, exp.Table):
            if isinstance(node.this, exp.Identifier):
                tables.append(node)
        elif isinstance(node, exp.CTE):
            ident = node.args["alias"].this if node.args.get("alias") else None
            if isinstance(ident, exp.Identifier):
                ctes.setdefault(_key(ident, dialect), ident)
        elif node.this and (isinstance(node, exp.Placeholder) or at_sign):
            names.add(node.name)
    reads = [t for t in tables if t.db or not _is_cte(t, ctes, dialect)]
    aliases = {t.alias.lower() for t in tables if t.alias} | {c.name.lower() for c in ctes.values()}
    tree.meta[ALIASES] = frozenset(aliases)
    return sorted(reads, key=_start), frozenset(names)


def _start(node: exp.Table) -> int:
    meta = node.this.meta
    return int(meta.get("start", 0))


ALIASES = "flowc_aliases"  # meta of a parsed query: the names it gives CTEs and tables


def name_unnamed(select: exp.Select) -> None:
    """Alias each item of `select` that has no name of its own `_col_<i>` (its 0-based index).

    Every engine names such a result column its own way (DuckDB `count_star()`, Postgres
    `count`, BigQuery `f0_`); flowc gives it one name on all of them, the name the schema pass
    shows.

    >>> select = exp.select("count(*)", "a", "b + 1 AS c")
    >>> name_unnamed(select)
    >>> select.sql()
    'SELECT COUNT(*) AS _col_0, a, b + 1 AS c'
    """
    items = select.expressions
    if all(_has_name(item) for item in items):
        return
    named = [
        item if _has_name(item) else exp.Alias(this=item, alias=exp.to_identifier(f"_col_{i}"))
        for i, item in enumerate(items)
    ]
    select.set("expressions", named)


def _has_name(item: exp.Expr) -> bool:
    if isinstance(item, exp.Alias | exp.Star | exp.Columns):
        return True
    if isinstance(item, exp.Column):
        return isinstance(item.this, exp.Identifier | exp.Star)
    return isinstance(item, exp.Dot) and item.is_star


CTE_REFERENCE = "flowc_cte"  # meta of a table reference that names a CTE, not a node


def _is_cte(table: exp.Table, ctes: dict[str, exp.Identifier], dialect: str) -> bool:
    key = _key(table.this, dialect)
    defined = ctes.get(key)
    if defined is None or not _cte_in_scope(table, key, dialect):
        return False
    if table.this.name != defined.name:
        table.this.set("this", defined.name)
    table.meta[CTE_REFERENCE] = True
    return True


def _cte_in_scope(table: exp.Table, key: str, dialect: str) -> bool:
    """Whether a CTE named `key` is visible where `table` is: one of an enclosing query's
    WITH list, defined before the CTE whose body holds `table` (a CTE does not see itself nor
    later ones, unless RECURSIVE). So `WITH trips AS (SELECT * FROM trips)` reads the node
    `trips`, as the engines read it."""
    child: exp.Expr = table
    came_from: exp.CTE | None = None
    node = table.parent
    while node is not None:
        if isinstance(node, exp.CTE):
            came_from = node
        with_ = node.args.get("with_")
        if isinstance(with_, exp.With) and with_ is not child:
            visible = with_.expressions  # from the query's body: every CTE of its WITH
        elif isinstance(with_, exp.With):
            index = next((i for i, c in enumerate(with_.expressions) if c is came_from), 0)
            visible = (
                with_.expressions if with_.args.get("recursive") else with_.expressions[:index]
            )
        else:
            visible = []
        if any(_key(cte.args["alias"].this, dialect) == key for cte in visible if cte.alias):
            return True
        child, node = node, node.parent
    return False


def _key(ident: exp.Identifier, dialect: str) -> str:
    return identifier_key(ident.name, quoted=ident.quoted, dialect=dialect)


@cache
def _dialect(name: str) -> Dialect:
    return Dialect.get_or_raise(name)


def _parser(dialect: str) -> Parser:
    return _dialect(dialect).parser(error_message_context=_CONTEXT)


def _one_query(
    statements: Sequence[exp.Expr | None], tokens: list[Token], text: str
) -> exp.Query | SqlProblem:
    present = [s for s in statements if s is not None]
    if not present:
        return SqlProblem("F0305", None, 0, {"got": "empty"}, "write one SELECT query")
    if len(present) > 1:
        start, end = _second_statement(tokens, text)
        hint = "a transform holds one query; split the others into transforms of their own"
        return SqlProblem("F0305", start, end, {"got": f"{len(present)} statements"}, hint)
    query = present[0]
    if isinstance(query, exp.Query):
        return query
    hint = "write only the SELECT: flowc creates and fills the table itself (see `materialize`)"
    got = f"a{'n' if query.key[:1] in 'aeiou' else ''} {query.key.upper()} statement"
    first = tokens[0]  # a statement was parsed, so there are tokens
    return SqlProblem("F0305", first.start, first.end + 1, {"got": got}, hint)


def _second_statement(tokens: list[Token], text: str) -> tuple[int, int]:
    semicolons = [i for i, t in enumerate(tokens) if t.token_type == TokenType.SEMICOLON]
    for index in semicolons:
        if index + 1 < len(tokens) and tokens[index + 1].token_type != TokenType.SEMICOLON:
            return tokens[index + 1].start, tokens[-1].end + 1
    return 0, len(text)


def _token_problem(error: TokenError, text: str) -> SqlProblem:
    cause = str(error.__cause__ or error.__context__ or "")
    missing = _MISSING.search(cause)
    if missing:
        start = min(int(missing.group(2)), max(len(text) - 1, 0))
        detail = f"unterminated quoted text: missing closing `{missing.group(1)}`"
        return SqlProblem("F0304", start, start + 1, {"detail": detail})
    start = min((error.start or -50) + 50, len(text))
    return SqlProblem("F0304", start, start + 1, {"detail": cause or "cannot read the SQL text"})


def _parse_problem(error: ParseError, text: str) -> SqlProblem:
    info = error.errors[0] if error.errors else {}
    start = len(info.get("start_context") or "")
    found = info.get("highlight") or ""
    end = start + max(len(found), 1)
    at_end = not text[start + len(found) :].strip()
    return SqlProblem("F0304", start, end, {"detail": _describe(info, found, at_end)})


def _describe(info: dict[str, object], found: str, at_end: bool) -> str:
    description = str(info.get("description") or "invalid SQL")
    if description.startswith("Expecting "):
        return f"expected `{description.removeprefix('Expecting ')}` after `{found}`"
    if description.startswith("Required keyword"):
        where = "at the end" if at_end else f"at `{found}`"
        return f"incomplete expression {where}"
    if description.startswith("Invalid expression"):
        return f"unexpected `{found}`"
    return f"{description[:1].lower()}{description[1:]} (at `{found}`)"
