"""The SQL pass: parse every SQL transform with sqlglot, infer its edges and its parameters.

Each body is tokenized and parsed once, in the pipeline's dialect, and must be exactly one
query. Its table references become the node's edges: a name in `FROM`/`JOIN` that is not a
CTE, a subquery alias or a table function must be a source or a transform of the file. Its
`:name` placeholders (and `@name` in BigQuery) must be pipeline parameters. The parsed trees
are handed on to the schema pass, so no SQL is parsed twice.

Positions: sqlglot reports character offsets into the SQL *value*; `sql_span` maps them
through the value's segments to a line and column of the file that holds the text (the .flow
file for an inline string, the .sql file for `file(...)`).

Names compare as the engine compares them (`identifier_key`): DuckDB and BigQuery columns
ignore case, quoted or not; Postgres folds unquoted names to lower case and keeps quoted ones;
BigQuery table names keep their case. A name declared in a .flow file counts as unquoted.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from flowc.compiler import ir
from flowc.compiler.diagnostics import Diagnostics, did_you_mean
from flowc.compiler.driver.memo import Memo
from flowc.project.spans import Span
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.parser import Parser
from sqlglot.tokenizer_core import Token, TokenType

SqlTrees = dict[str, exp.Query]  # transform name -> its parsed query, for the schema pass

_CONTEXT = 1 << 30  # sqlglot's error context: whole text, so `start_context` gives an offset
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MISSING = re.compile(r"Missing (.+) from \d+:(\d+)")


def analyze_sql(
    spec: ir.Spec, diagnostics: Diagnostics, *, dialect: str, memo: Memo | None = None
) -> tuple[ir.Spec, SqlTrees]:
    """Parse every SQL transform of `spec`; fill in its `edges` and `parameters`.

    >>> from flowc.compiler.diagnostics import point
    >>> body = ir.SqlBody(text="SELECT * FROM t", file="f", segments=(), span=point("f"))
    >>> node = ir.TransformNode(name="x", span=point("f"), name_span=point("f"), sql=body)
    >>> spec = ir.Spec(file="f", root=".", pipeline=None, nodes=(node,))
    >>> _, trees = analyze_sql(spec, Diagnostics(), dialect="duckdb")
    >>> trees["x"].sql()
    'SELECT * FROM t'
    """
    nodes = NodeIndex(spec.nodes, dialect)
    pipeline = spec.pipeline
    params = None if not pipeline or pipeline.unparsed else [p.name for p in pipeline.params]
    trees: SqlTrees = {}
    updated: list[ir.SourceNode | ir.TransformNode | ir.SinkNode] = []
    with paused_gc():
        for node in spec.nodes:
            if isinstance(node, ir.TransformNode) and node.sql is not None:
                tree, node = _analyze_memoized(
                    node, node.sql, nodes, params, diagnostics, dialect, memo
                )
                if tree is not None:
                    trees[node.name] = tree
            updated.append(node)
    return spec.model_copy(update={"nodes": tuple(updated)}), trees


def _analyze_memoized(
    node: ir.TransformNode,
    body: ir.SqlBody,
    nodes: NodeIndex,
    params: list[str] | None,
    diagnostics: Diagnostics,
    dialect: str,
    memo: Memo | None,
) -> tuple[exp.Query | None, ir.TransformNode]:
    """`_analyze_node`, or what it gave for the same body (text and place) when the node
    names it resolves against and the parameters are the same."""
    if memo is None:
        return _analyze_node(node, body, nodes, params, diagnostics, dialect)
    # Plain tuples: hashing the pydantic models field by field costs more than the work.
    span = body.span
    place = (
        body.text,
        body.file,
        body.from_file,
        (span.line, span.col, span.end_line, span.end_col),
        *((s.offset, s.line, s.col) for s in body.segments),
    )
    key = (place, nodes.signature, tuple(params) if params is not None else None, dialect)
    found = memo.outputs.get(key)
    if found is None:
        reported = Diagnostics()
        tree, done = _analyze_node(node, body, nodes, params, reported, dialect, memo)
        found = (tree, done.edges, done.parameters, tuple(reported))
    memo.outputs[key] = found
    tree, edges, parameters, reported_before = found
    diagnostics.extend(reported_before)
    return tree, node.model_copy(update={"edges": edges, "parameters": parameters})


def _analyze_node(
    node: ir.TransformNode,
    body: ir.SqlBody,
    nodes: NodeIndex,
    params: list[str] | None,
    diagnostics: Diagnostics,
    dialect: str,
    memo: Memo | None = None,
) -> tuple[exp.Query | None, ir.TransformNode]:
    if memo is None:
        parsed = parse_query(body.text, dialect)
    else:
        key = (body.text, dialect)
        found = memo.queries.get(key)
        parsed = found if found is not None else parse_query(body.text, dialect)
        memo.queries[key] = parsed
    if isinstance(parsed, SqlProblem):
        diagnostics.report(
            parsed.code,
            _problem_span(body, parsed),
            hint=parsed.hint,
            **parsed.fields,
        )
        return None, node
    edges = [
        ir.Edge(upstream=name, span=sql_span(body, start, end))
        for name, start, end in table_references(parsed, nodes, diagnostics, body)
    ]
    parameters = [
        ir.Ref(parts=(name,), span=sql_span(body, start, end))
        for name, start, end in placeholders(parsed, dialect)
    ]
    if params is not None:
        for ref in parameters:
            if ref.parts[0] not in params:
                hint = did_you_mean(ref.parts[0], params) or _param_hint(ref.parts[0])
                diagnostics.report("F0501", ref.span, hint=hint, name=ref.parts[0])
    update = {"edges": tuple(edges), "parameters": tuple(parameters)}
    return parsed.tree, node.model_copy(update=update)


def _param_hint(name: str) -> str:
    return f"declare it: `pipeline {{ params {{ {name} <type> = <default> }} }}`"


def _problem_span(body: ir.SqlBody, problem: SqlProblem) -> Span:
    if problem.start is None:
        return body.span
    return sql_span(body, problem.start, problem.end)


# --- parsing ------------------------------------------------------------------------------


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
        elif node.this and (isinstance(node, exp.Placeholder) or dialect == "bigquery"):
            names.add(node.name)
    reads = [t for t in tables if t.db or not _is_cte(t, ctes, dialect)]
    aliases = {t.alias.lower() for t in tables if t.alias} | {c.name.lower() for c in ctes.values()}
    tree.meta[ALIASES] = frozenset(aliases)
    return sorted(reads, key=_start), frozenset(names)


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


# --- table references and parameters ------------------------------------------------------


class NodeIndex:
    """Node names, looked up the way the dialect looks up a table name written in SQL."""

    def __init__(
        self, nodes: Iterable[ir.SourceNode | ir.TransformNode | ir.SinkNode], dialect: str
    ) -> None:
        self.dialect = dialect
        self.nodes = {n.name: n for n in nodes}
        self.by_key: dict[str, str] = {}
        for name in self.nodes:
            self.by_key.setdefault(declared_key(name, dialect, table=True), name)
        # What a lookup depends on: the names, and which are sinks (for memo keys).
        self.signature = hash(
            (dialect, *((n, isinstance(v, ir.SinkNode)) for n, v in self.nodes.items()))
        )

    def find(self, name: str, *, quoted: bool) -> str | None:
        key = identifier_key(name, quoted=quoted, dialect=self.dialect, table=True)
        if name in self.nodes and declared_key(name, self.dialect, table=True) == key:
            return name  # nodes whose names differ only in case: the exact one
        return self.by_key.get(key)


def table_references(
    parsed: ParsedQuery, nodes: NodeIndex, diagnostics: Diagnostics, body: ir.SqlBody
) -> Iterator[tuple[str, int, int]]:
    """(node name, start, end) of each node the query reads, first mention first."""
    seen: set[str] = set()
    for table in parsed.tables:
        if nodes.dialect == "duckdb" and not table.db and not _NAME.match(table.name):
            continue  # DuckDB reads `FROM 'data/*.csv'` as a file
        start, end = _table_extent(table)
        name = _reference(table, nodes, diagnostics, sql_span(body, start, end))
        if name is not None and name not in seen:
            seen.add(name)
            yield name, start, end


def _reference(
    table: exp.Table, nodes: NodeIndex, diagnostics: Diagnostics, span: Span
) -> str | None:
    written = ".".join(p.name for p in table.parts)
    if table.db:
        hint = (
            f"`{written}` is outside the pipeline: declare a source for it, "
            f'`source {table.name} {{ from = table(connection, "{written}") }}`, '
            f"and read it as `{table.name}`"
        )
        diagnostics.report("F0303", span, hint=hint, name=written)
        return None
    name = nodes.find(table.name, quoted=table.this.quoted)
    if name is None:
        diagnostics.report(
            "F0303", span, hint=did_you_mean(table.name, nodes.nodes), name=table.name
        )
        return None
    if isinstance(nodes.nodes[name], ir.SinkNode):
        hint = "read the node the sink writes instead"
        diagnostics.report("F0309", span, hint=hint, name=name)
        return None
    return name


def _start(node: exp.Table) -> int:
    meta = node.this.meta
    return int(meta.get("start", 0))


def _table_extent(table: exp.Table) -> tuple[int, int]:
    parts = [p for p in table.parts if isinstance(p, exp.Identifier) and "start" in p.meta]
    if not parts:
        return 0, 0
    return int(parts[0].meta["start"]), int(parts[-1].meta["end"]) + 1


def placeholders(parsed: ParsedQuery, dialect: str) -> Iterator[tuple[str, int, int]]:
    """(name, start, end) of each `:name` parameter (and `@name` in BigQuery), first first."""
    if not parsed.placeholders:
        return
    seen: set[str] = set()
    for before, token in itertools.pairwise(parsed.tokens):
        is_mark = before.token_type == TokenType.COLON or (
            dialect == "bigquery" and before.text == "@"
        )
        if not is_mark or token.start != before.end + 1 or not _NAME.match(token.text):
            continue
        if token.text in parsed.placeholders and token.text not in seen:
            seen.add(token.text)
            yield token.text, before.start, token.end + 1


# --- identifiers and positions ------------------------------------------------------------


def identifier_key(name: str, *, quoted: bool, dialect: str, table: bool = False) -> str:
    """The form under which the engine compares `name` written in SQL (see module docs).

    >>> identifier_key("VendorID", quoted=True, dialect="duckdb")
    'vendorid'
    >>> identifier_key("VendorID", quoted=True, dialect="postgres")
    'VendorID'
    """
    if dialect == "postgres" and quoted:
        return name
    if dialect == "bigquery" and table:
        return name
    return name.lower()


def declared_key(name: str, dialect: str, *, table: bool = False) -> str:
    """The key of a name declared in a .flow file: it counts as written unquoted."""
    return identifier_key(name, quoted=False, dialect=dialect, table=table)


def sql_span(body: ir.SqlBody, start: int, end: int) -> Span:
    """The span in `body.file` of the SQL text `body.text[start:end]`.

    >>> from flowc.compiler.diagnostics import point
    >>> seg = (ir.Segment(offset=0, line=3, col=5), ir.Segment(offset=9, line=4, col=5))
    >>> body = ir.SqlBody(text="SELECT a\\nFROM t", file="f", segments=seg, span=point("f"))
    >>> sql_span(body, 14, 15).start_text()
    '4:10'
    """
    return segment_span(body.segments, body.file, start, end, fallback=body.span)


def segment_span(
    segments: Sequence[ir.Segment], file: str, start: int, end: int, *, fallback: Span
) -> Span:
    """The span of value offsets `start`..`end` (exclusive) of a string with `segments`."""
    if not segments:
        return fallback
    line, col = _locate(segments, start)
    end_line, end_col = _locate(segments, max(start, end - 1))
    return Span(file=file, line=line, col=col, end_line=end_line, end_col=end_col + 1)


def _locate(segments: Sequence[ir.Segment], offset: int) -> tuple[int, int]:
    index = max(bisect.bisect_right(segments, offset, key=_offset) - 1, 0)
    segment = segments[index]
    return segment.line, segment.col + offset - segment.offset


def _offset(segment: ir.Segment) -> int:
    return segment.offset


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a pass builds many long-lived trees.

    sqlglot trees hold parent links, so the collector tracks every node; left running, it
    spends more time than the parser itself in collections that free nothing. On the way
    out, everything allocated meanwhile is moved to the oldest generation (`freeze` then
    `unfreeze`, both O(1)) instead of being scanned at once by the next young collection;
    the next full collection frees whatever of it is garbage. (When the caller has frozen
    objects itself, a CLI that will exit soon, what the pass made stays frozen with them.)
    Reference counting still frees everything acyclic meanwhile.
    """
    enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if not frozen:  # a caller who froze objects on purpose keeps them frozen
            gc.unfreeze()
        if enabled:
            gc.enable()
