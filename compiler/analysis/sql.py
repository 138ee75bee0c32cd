"""The SQL pass: parse every SQL transform with sqlglot, infer its edges and its parameters.

Each body is parsed once (`sql_parse.parse_query`), in the pipeline's dialect, and must be
exactly one query. Its table references become the node's edges: a name in `FROM`/`JOIN` that
is not a CTE, a subquery alias or a table function must be a source or a transform of the
file, looked up as the engine looks up a table name (`identifiers`). Its `:name` placeholders
(and `@name` in BigQuery) must be pipeline parameters. Each is reported at its place in the
file (`sql_spans`). The parsed trees are handed on to the schema pass, so no SQL is parsed
twice.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator

from flowc.compiler import ir
from flowc.compiler.analysis.gc_pause import paused_gc
from flowc.compiler.analysis.identifiers import declared_key, identifier_key
from flowc.compiler.analysis.sql_parse import ParsedQuery, SqlProblem, parse_query
from flowc.compiler.analysis.sql_spans import sql_span
from flowc.compiler.diagnostics import Diagnostics, did_you_mean
from flowc.compiler.driver.memo import Memo
from flowc.project.engines import ENGINES
from flowc.project.spans import Span
from sqlglot import exp
from sqlglot.tokenizer_core import TokenType

SqlTrees = dict[str, exp.Query]  # transform name -> its parsed query, for the schema pass


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def analyze_sql(
    spec: ir.Spec, diagnostics: Diagnostics, *, dialect: str, memo: Memo | None = None
) -> tuple[ir.Spec, SqlTrees]:
    """Parse every SQL transform of `spec`; fill in its `edges` and `parameters`.

    >>> from flowc.project.spans import point
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
    engine = ENGINES.get(nodes.dialect)
    files = engine is not None and engine.reads_files_in_from
    for table in parsed.tables:
        if files and not table.db and not _NAME.match(table.name):
            continue  # `FROM 'data/*.csv'` reads a file
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


def _table_extent(table: exp.Table) -> tuple[int, int]:
    parts = [p for p in table.parts if isinstance(p, exp.Identifier) and "start" in p.meta]
    if not parts:
        return 0, 0
    return int(parts[0].meta["start"]), int(parts[-1].meta["end"]) + 1


def placeholders(parsed: ParsedQuery, dialect: str) -> Iterator[tuple[str, int, int]]:
    """(name, start, end) of each `:name` parameter (and `@name` where the engine takes it,
    `Engine.at_sign_parameters`), first first."""
    if not parsed.placeholders:
        return
    seen: set[str] = set()
    engine = ENGINES.get(dialect)
    at_sign = engine is not None and engine.at_sign_parameters
    for before, token in itertools.pairwise(parsed.tokens):
        is_mark = before.token_type == TokenType.COLON or (at_sign and before.text == "@")
        if not is_mark or token.start != before.end + 1 or not _NAME.match(token.text):
            continue
        if token.text in parsed.placeholders and token.text not in seen:
            seen.add(token.text)
            yield token.text, before.start, token.end + 1
