"""The schema pass: the columns every node produces, and every reference to a column checked.

Nodes are visited in topological order. A source produces its declared `columns` (or the
header of its local CSV file); a Python transform its declared `columns`; a sink what it
reads; a SQL transform what its query selects, worked out by `node_output` from the parsed
tree and the outputs of the nodes it reads. Then `expect` checks, `unique_key`,
`time_column`, a sink's `key` and `partition_by` are checked against those outputs.

`node_output` resolves the query's columns itself, scope by scope (sqlglot's `Scope` gives the
CTEs, derived tables, subqueries and unions): it reports every unknown, ambiguous or
duplicated column at its own position, where sqlglot's `qualify` would stop at the first one
(and rewrite the tree), at a third of its cost. Lateral aliases are accepted where the dialect
accepts them (DuckDB: in WHERE, GROUP BY, HAVING, QUALIFY, ORDER BY and later in the SELECT
list; BigQuery: GROUP BY, HAVING, QUALIFY, ORDER BY; Postgres: GROUP BY, ORDER BY), and so are
correlated references to an enclosing query.

Identifier case. Names compare as the engine compares them (`sql.identifier_key`): DuckDB and
BigQuery ignore case, quoted or not, and keep the case of the definition: a column declared
`VendorID` is found as `VendorID`, `vendorid` or `"VENDORID"`, and named `VendorID` in the
output. Postgres folds unquoted names to lower case: a declared `VendorID` is the column
`vendorid` (flowc creates tables with unquoted names), found as `VendorID` or `"vendorid"` but
not as `"VendorID"`; a SQL transform's outputs are named as Postgres names them (`AS Foo` is
`foo`, `AS "Foo"` is `Foo`).

Output names: an alias, else the referenced column's own name, else `_col_<i>` (the name
sqlglot's qualify gives it, so generated SQL that aliases outputs agrees). Types: a plain
column reference keeps its input's declared type, `CAST(x AS t)` is `t`, `COUNT(...)` is
`bigint`; anything else is `unknown`. Full type inference (`annotate_types`) costs about as
much as parsing and is not done here.

When an input's columns cannot be known (a `table(...)` source without `columns`, a Python
node without them), the transform's columns are unknown too; it gets one F0307 warning and
no column errors. `node_output` is a pure function of picklable values (query, input schemas,
dialect), so a process pool can run one topological level at a time.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flowc.compiler import ir
from flowc.compiler.analysis.arguments import argument, unwrap_dates
from flowc.compiler.analysis.dag import upstream_edges
from flowc.compiler.analysis.gc_pause import paused_gc
from flowc.compiler.analysis.identifiers import declared_key, identifier_key
from flowc.compiler.analysis.sql import SqlTrees
from flowc.compiler.analysis.sql_parse import SqlProblem, parse_query
from flowc.compiler.analysis.sql_spans import segment_span, sql_span
from flowc.compiler.diagnostics import Diagnostics, did_you_mean
from flowc.compiler.driver import reads
from flowc.compiler.driver.memo import Memo
from flowc.compiler.vocabulary import CHECKS
from flowc.project.spans import Span
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, ScopeType, traverse_scope, walk_in_scope

Columns = tuple[ir.Column, ...]
AnyNode = ir.SourceNode | ir.TransformNode | ir.SinkNode

ALIAS_CLAUSES = {
    "duckdb": {"expressions", "where", "group", "having", "qualify", "order", "windows"},
    "bigquery": {"group", "having", "qualify", "order"},
    "postgres": {"group", "order"},
}
# meta of a column that names an alias of its SELECT list: the clause that holds it
ALIAS_REFERENCE = "flowc_alias"
# meta of a column (or a USING name) resolved to a definition: the definition's spelling, which
# code generation writes, quoted, on engines that compare quoted names exactly (Postgres) or
# name a result column as the reference spells it (BigQuery)
RESOLVED = "flowc_name"
OUTER = "flowc_outer"  # meta of a column that names a column of an enclosing query
CLAUSE_WORDS = {
    "expressions": "in the SELECT list",
    "where": "in WHERE",
    "group": "in GROUP BY",
    "having": "in HAVING",
    "qualify": "in QUALIFY",
    "joins": "in a JOIN",
    "windows": "in WINDOW",
}
_ENGINES = {"duckdb": "DuckDB", "postgres": "Postgres", "bigquery": "BigQuery"}
# Columns every table has without declaring them.
_PSEUDO = {
    "duckdb": {"rowid"},
    "postgres": {"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"},
    "bigquery": {"_partitiontime", "_partitiondate", "_table_suffix", "_file_name"},
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def infer_schemas(
    spec: ir.Spec,
    trees: SqlTrees,
    diagnostics: Diagnostics,
    *,
    dialect: str,
    order: list[str],
    only: Callable[[ir.Spec], Collection[str]] | None = None,
    learned: Mapping[str, Columns] | None = None,
    memo: Memo | None = None,
) -> ir.Spec:
    """Fill in `output` of every node in `order`; report column errors and F0307 warnings.

    With `only`, just the nodes it names and every node they read, directly or not (a node's
    output depends on nothing else): for `flowc compile` when the check cache vouches that
    the spec is clean, so only the columns the plan shows are needed. `learned`: the columns
    a run found for sources and Python nodes that declare none (`resolve_at_run`).
    """
    nodes = spec.node_map()
    state = _State(spec, trees, diagnostics, dialect, dict(learned or {}), memo)
    if only is not None:
        order = _with_upstreams(spec, order, only(spec))
    with paused_gc():
        for name in order:
            if name in nodes:
                state.visit(nodes[name])
        for name in order:
            if name in state.updated:
                _check_references(state.updated[name], state, diagnostics)
    new_nodes = tuple(state.updated.get(n.name, n) for n in spec.nodes)
    return spec.model_copy(update={"nodes": new_nodes})


def _with_upstreams(spec: ir.Spec, order: list[str], wanted: Collection[str]) -> list[str]:
    """The names in `order` that are in `wanted` or read by one of them, in that order."""
    graph = upstream_edges(spec)
    keep: set[str] = set()
    stack = [name for name in wanted if name in graph]
    while stack:
        name = stack.pop()
        if name not in keep:
            keep.add(name)
            stack += [edge.upstream for edge in graph[name]]
    return [name for name in order if name in keep]


@dataclass
class _State:
    spec: ir.Spec
    trees: SqlTrees
    diagnostics: Diagnostics
    dialect: str
    learned: dict[str, Columns]
    memo: Memo | None = None
    updated: dict[str, AnyNode] = field(default_factory=dict)
    # Why a node's columns are unknown: the node to declare them on; None after an error.
    unknown: dict[str, str | None] = field(default_factory=dict)

    def visit(self, node: AnyNode) -> None:
        output = self._output(node)
        self.updated[node.name] = node.model_copy(update={"output": output})

    def _output(self, node: AnyNode) -> Columns | None:
        if node.unparsed:  # its syntax error is reported; stay quiet downstream
            self.unknown[node.name] = None
            return None
        if isinstance(node, ir.SinkNode):
            return self._read(node, node.input.parts[0] if node.input else None)
        if isinstance(node, ir.TransformNode) and node.sql is not None:
            return self._sql_output(node, node.sql)
        if node.columns is not None:
            return node.columns
        if node.name in self.learned:
            return self.learned[node.name]
        if isinstance(node, ir.SourceNode) and node.from_ is not None:
            return self._file_output(node, node.from_)
        self.unknown[node.name] = None if _acknowledged(node) else node.name
        return None

    def _read(self, sink: ir.SinkNode, upstream: str | None) -> Columns | None:
        """A sink outputs what it reads."""
        if upstream is None or upstream in self.unknown or upstream not in self.updated:
            self.unknown[sink.name] = self.unknown.get(upstream) if upstream else None
            return None
        return self.updated[upstream].output

    def _sql_output(self, node: ir.TransformNode, body: ir.SqlBody) -> Columns | None:
        tree = self.trees.get(node.name)
        upstreams = [edge.upstream for edge in node.edges]
        blocked = next((u for u in upstreams if u in self.unknown or u not in self.updated), None)
        if tree is None or blocked is not None:
            cause = self.unknown.get(blocked) if blocked is not None else None
            self.unknown[node.name] = cause
            if blocked is not None and cause is not None:
                self._warn_unknown(node, blocked, cause)
            return None
        schemas = {u: engine_columns(self.updated[u], self.dialect) for u in upstreams}
        output, problems = self._node_output(body, tree, schemas)
        for problem in problems:
            span = sql_span(body, problem.start, problem.end) if problem.start is not None else None
            self.diagnostics.report(
                problem.code, span or node.name_span, hint=problem.hint, **problem.fields
            )
        if output is None:
            self.unknown[node.name] = None
        return output

    def _node_output(
        self, body: ir.SqlBody, tree: exp.Query, schemas: dict[str, Columns]
    ) -> tuple[Columns | None, list[SqlProblem]]:
        if self.memo is None:
            return node_output(tree, schemas, self.dialect)
        # While its inputs did not change, their column tuples are the very objects of the
        # last analysis (memoized upstream): identity is the cheap test, and the entry keeps
        # them alive so that no id is reused. Else the columns themselves are compared, and
        # a hit hands back the old output object, so that nodes further down hit by identity.
        fast = (body.text, self.dialect, *((u, id(cols)) for u, cols in schemas.items()))
        found = self.memo.outputs.get(fast)
        if found is not None and all(
            a is b for a, b in zip(found[0], schemas.values(), strict=True)
        ):
            return found[1]  # type: ignore[no-any-return]
        slow = (
            body.text,
            self.dialect,
            *(
                (u, *((c.name, c.type, c.not_null, c.span) for c in cols))
                for u, cols in schemas.items()
            ),
        )
        result = self.memo.outputs.get(slow)
        if result is None:
            result = node_output(tree, schemas, self.dialect)
        self.memo.outputs[slow] = result
        self.memo.outputs[fast] = (tuple(schemas.values()), result)
        return result

    def _warn_unknown(self, node: AnyNode, upstream: str, cause: str) -> None:
        reason = f"it reads `{upstream}`, whose columns are unknown"
        if cause != upstream:
            reason += f" (they depend on `{cause}`)"
        hint = (
            f"declare `columns {{ ... }}` on `{cause}` to have these columns checked "
            "(or `columns = auto` there, to take them from the data at run time)"
        )
        self.diagnostics.report("F0307", node.name_span, hint=hint, node=node.name, reason=reason)

    def _file_output(self, node: ir.SourceNode, call: ir.Call) -> Columns | None:
        found = file_columns(call, Path(self.spec.root))
        if isinstance(found, str):
            self.unknown[node.name] = None if _acknowledged(node) else node.name
            if found and not _acknowledged(node):
                hint = "declare them: `columns { id int  name varchar }`, or `columns = auto`"
                self.diagnostics.report(
                    "F0307", node.name_span, hint=hint, node=node.name, reason=found
                )
            return None
        path = call.args[0].value if isinstance(call.args[0], ir.Str) else ""
        hint = "declare `columns { ... }` to have their types checked too"
        self.diagnostics.report("F0312", node.name_span, hint=hint, node=node.name, path=path)
        return found


def _acknowledged(node: AnyNode) -> bool:
    """`columns = auto`: the user knows the columns are unknown offline; say nothing."""
    return isinstance(node, ir.SourceNode) and node.columns_auto


def engine_columns(node: AnyNode, dialect: str) -> Columns:
    """A node's output named as the engine names it (declared names count as unquoted)."""
    output = node.output or ()
    if _is_sql(node) or dialect != "postgres":
        return output
    return tuple(c.model_copy(update={"name": declared_key(c.name, dialect)}) for c in output)


def _is_sql(node: AnyNode) -> bool:
    return isinstance(node, ir.TransformNode) and node.sql is not None


# --- sources read from files ----------------------------------------------------------------


def file_columns(call: ir.Call, root: Path) -> Columns | str:
    """The header of the local CSV file(s) `call` reads, or why there is none ("" for: the
    source reads no file, nothing to say)."""
    if call.name == "table":
        return ""
    path = call.args[0] if call.args else None
    if call.name != "csv" or not isinstance(path, ir.Str):
        return f"it reads `{call.name}(...)`, which flowc does not open offline"
    header = call.keyword("header")
    if header is not None and isinstance(header.value, ir.Bool) and not header.value.value:
        return "the file has no header row (`header = false`)"
    delimiter = call.keyword("delimiter")
    sep = delimiter.value.value if delimiter and isinstance(delimiter.value, ir.Str) else ","
    files = _matching(root, path.value)
    if not files:
        return f"no file matches `{path.value}` under the project root"
    names = _csv_header(files[0], sep or ",")
    if not names:
        return f"`{files[0].name}` has no header row"
    return tuple(ir.Column(name=name, type="unknown") for name in names)


def _matching(root: Path, pattern: str) -> list[Path]:
    try:
        return [p for p in reads.glob(root, pattern) if p.is_file()]
    except (ValueError, OSError):
        return []


def _csv_header(path: Path, delimiter: str) -> list[str]:
    try:
        line = _first_line(path).decode("utf-8-sig", errors="replace")
    except (OSError, EOFError):
        return []
    try:
        row = next(csv.reader([line], delimiter=delimiter[0]), [])
    except csv.Error:
        return []
    return [name.strip() for name in row]


def _first_line(path: Path) -> bytes:
    reads.stat(path)
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as compressed:
            return compressed.readline(1 << 20)
    with path.open("rb") as plain:
        return plain.readline(1 << 20)


# --- one SQL transform ------------------------------------------------------------------------


def node_output(
    query: exp.Query | str,
    upstream: Mapping[str, Sequence[ir.Column] | None],
    dialect: str,
) -> tuple[Columns | None, list[SqlProblem]]:
    """The columns `query` outputs, given the columns of the nodes it reads, and its problems.

    `query` is a parsed tree or SQL text; problems are positioned by offsets into the text.

    >>> cols = (ir.Column(name="VendorID", type="int"), ir.Column(name="fare", type="double"))
    >>> out, problems = node_output("SELECT vendorid, fair FROM trips", {"trips": cols}, "duckdb")
    >>> [c.name for c in out], [p.fields for p in problems]
    (['VendorID', 'fair'], [{'name': 'fair'}])
    """
    if isinstance(query, str):
        parsed = parse_query(query, dialect)
        if isinstance(parsed, SqlProblem):
            return None, [parsed]
        query = parsed.tree
    resolver = _Resolver(upstream, dialect)
    try:
        scopes = traverse_scope(query)
        for scope in scopes:
            resolver.scope(scope)
    except (SqlglotError, RecursionError) as error:  # what sqlglot cannot scope
        detail = str(error) if isinstance(error, SqlglotError) else "the query is nested too deeply"
        return None, [*resolver.problems, SqlProblem("F0304", None, 0, {"detail": detail})]
    output = resolver.output_of(scopes[-1].expression) if scopes else None
    if resolver.unresolved:
        output = None
    if output is not None:
        resolver.check_duplicates(output)
    columns = None if output is None else tuple(c.to_ir() for c in output.columns)
    return columns, resolver.problems


@dataclass
class _Col:
    name: str
    type: str
    key: str  # how SQL names it (see `_Resolver.key`)
    item: exp.Expr | None = None  # the select item that produced it (for positions)

    def to_ir(self) -> ir.Column:
        return ir.Column(name=self.name, type=self.type)


@dataclass
class _Table:
    """The columns of a source or of a query's output, with their lookup keys."""

    columns: list[_Col]
    keys: dict[str, _Col] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for col in self.columns:
            self.keys.setdefault(col.key, col)


@dataclass
class _Source:
    name: str
    table: _Table | None  # None: columns unknown


@dataclass
class _SelectInfo:
    node: exp.Select
    aliases: dict[str, int]  # key of each select alias -> index of its item
    using: set[str]  # keys of the columns merged by USING / NATURAL joins


def _may_hold(key: str, sources: dict[str, _Source]) -> bool:
    """Whether `key` may name a column here: a source has it, or may have it (its columns
    are unknown), or it names a source itself (a whole row, which every dialect allows)."""
    return key in sources or any(s.table is None or key in s.table.keys for s in sources.values())


class _Resolver:
    """Resolves the columns of one query, scope by scope, innermost first."""

    def __init__(self, upstream: Mapping[str, Sequence[ir.Column] | None], dialect: str) -> None:
        self.dialect = dialect
        self.postgres = dialect == "postgres"
        self.pseudo = _PSEUDO.get(dialect, set())
        self.upstream = {name: self._table(cols) for name, cols in upstream.items()}
        self.upstream_keys = {declared_key(n, dialect, table=True): n for n in upstream}
        self.outputs: dict[int, _Table | None] = {}
        self.sources: dict[int, dict[str, _Source]] = {}
        self.types: dict[int, str] = {}  # id(column) -> the type of what it resolved to
        self.names: dict[int, str] = {}  # id(column) -> the name of what it resolved to
        self.problems: list[SqlProblem] = []
        self.unresolved = False  # a table name that is no node: the output is not to be trusted
        self._reported: set[tuple[int | None, str]] = set()

    def _table(self, columns: Sequence[ir.Column] | None) -> _Table | None:
        if columns is None:
            return None
        return _Table([_Col(c.name, c.type, self.engine_key(c.name)) for c in columns])

    def engine_key(self, name: str) -> str:
        """The key of a name the engine gave a column (an output, a loaded file's header)."""
        return name if self.postgres else name.lower()

    def key(self, ident: exp.Identifier) -> str:
        """The key of a name written in the SQL (`sql.identifier_key`, inlined: it is hot)."""
        name: str = ident.this
        return name if self.postgres and ident.args.get("quoted") else name.lower()

    # --- scopes

    def scope(self, scope: Scope) -> None:
        expression = scope.expression
        if isinstance(expression, exp.Select):
            self.outputs[id(expression)] = self._select(scope, expression)
        elif isinstance(expression, exp.SetOperation):
            left = scope.set_operation_scopes[0].expression if scope.set_operation_scopes else None
            output = self.output_of(left) if left is not None else None
            self.outputs[id(expression)] = output
            names = output.keys if output else {}
            for column in columns_in(scope):  # ORDER BY of the union: its output names
                ident = column.this
                named = isinstance(ident, exp.Identifier) and not column.table
                if named and self.key(ident) in names:
                    column.meta[RESOLVED] = names[self.key(ident)].name
                else:
                    self._resolve(column, scope, {}, None)
        elif isinstance(expression, exp.Subquery):
            self.outputs[id(expression)] = self.output_of(expression)
        else:
            self.outputs[id(expression)] = self._udtf(scope, expression)

    def output_of(self, expression: exp.Expr) -> _Table | None:
        if isinstance(expression, exp.Subquery):
            expression = expression.unnest()
        return self.outputs.get(id(expression))

    def _udtf(self, scope: Scope, expression: exp.Expr) -> _Table | None:
        for column in columns_in(scope):
            self._resolve(column, scope, self._sources(scope), None)
        if isinstance(expression, exp.Lateral) and isinstance(expression.this, exp.Query):
            return self.output_of(expression.this)
        names = [n for n in getattr(expression, "named_selects", []) if n]
        if not names and isinstance(expression, exp.Unnest) and self.dialect == "duckdb":
            names = [expression.alias] if expression.alias else []
        if not names:
            return None
        return _Table([_Col(n, "unknown", self.engine_key(n)) for n in names])

    def _sources(self, scope: Scope) -> dict[str, _Source]:
        """The tables a scope reads, by lookup key (its FROM and JOINs, or lateral sources)."""
        if id(scope) not in self.sources:
            found: dict[str, _Source] = {}
            if _duplicate_alias(scope.expression, self._report_alias):
                self.sources[id(scope)] = {"": _Source("", None)}  # lenient: stop here
                return self.sources[id(scope)]
            for name, (node, source) in scope.selected_sources.items():
                found[self._source_key(name, node)] = _Source(name, self._source(node, source))
            for name, source in scope.lateral_sources.items():
                key = self._source_key(name, source if isinstance(source, exp.Table) else None)
                found.setdefault(key, _Source(name, self._source(None, source)))
            self.sources[id(scope)] = found
        return self.sources[id(scope)]

    def _report_alias(self, ident: exp.Expr, name: str) -> None:
        hint = f"give one of them another alias: `JOIN {name} AS {name}_2`"
        detail = f"the table name or alias `{name}` is used twice in one FROM clause"
        self._report("F0304", ident, hint, detail=detail)
        self.unresolved = True

    def _source_key(self, name: str, node: exp.Expr | None) -> str:
        """The lookup key of a source: its alias (or table name) as the dialect compares it."""
        holder = node.parent if isinstance(node, exp.Select) else node
        alias = holder.args.get("alias") if holder is not None else None
        ident = alias.this if isinstance(alias, exp.TableAlias) else None
        if ident is None and isinstance(holder, exp.Table):
            ident = holder.this
        quoted = isinstance(ident, exp.Identifier) and ident.quoted
        return identifier_key(name, quoted=quoted, dialect=self.dialect)

    def _source(self, node: exp.Expr | None, source: exp.Table | Scope) -> _Table | None:
        if isinstance(source, Scope):
            table = self.output_of(source.expression)
            holder = source.expression.parent
            while isinstance(holder, exp.SetOperation):  # a recursive CTE's anchor
                holder = holder.parent
            aliases = _alias_names(node) if isinstance(node, exp.Table) else []
            if not aliases and isinstance(holder, (exp.CTE, exp.Subquery)):
                aliases = _alias_names(holder)
        else:
            table = self._node_table(source)
            aliases = _alias_names(source)
        return self._renamed(table, aliases) if aliases else table

    def _node_table(self, table: exp.Table) -> _Table | None:
        ident = table.this
        if not isinstance(ident, exp.Identifier):
            return None  # a table function
        if table.db:
            self.unresolved = True  # an external table, reported by the SQL pass (F0303)
            return None
        if self.dialect == "duckdb" and not _NAME.match(ident.name):
            return None  # `FROM 'data/*.csv'`: DuckDB reads the file
        key = identifier_key(ident.name, quoted=ident.quoted, dialect=self.dialect, table=True)
        name = self.upstream_keys.get(key)
        if name is None:
            self.unresolved = True  # reported by the SQL pass (F0303 or F0309)
            return None
        return self.upstream.get(name)

    def _renamed(self, table: _Table | None, aliases: list[str]) -> _Table:
        """`table` with its first columns renamed by a column list: `AS t(a, b)`."""
        old = table.columns if table else []
        types = [c.type for c in old] + ["unknown"] * len(aliases)
        new = [_Col(n, types[i], self.engine_key(n)) for i, n in enumerate(aliases)]
        return _Table(new + old[len(aliases) :])

    # --- SELECT

    def _select(self, scope: Scope, select: exp.Select) -> _Table | None:
        sources = self._sources(scope)
        aliases = {
            self.key(item.args["alias"]): index
            for index, item in enumerate(select.expressions)
            if isinstance(item, exp.Alias) and isinstance(item.args.get("alias"), exp.Identifier)
        }
        info = _SelectInfo(select, aliases, self._using(select, sources))
        for column in columns_in(scope):
            if not _in_star(column) and not _comprehension_variable(column):
                self._resolve(column, scope, sources, info)
        return self._select_output(select, sources, info.using)

    def _using(self, select: exp.Select, sources: dict[str, _Source]) -> set[str]:
        """Keys of the columns that USING or NATURAL joins merge into one."""
        merged: set[str] = set()
        from_ = select.args.get("from_")
        left = [self._joined(from_.this, sources)] if isinstance(from_, exp.From) else []
        for join in select.args.get("joins") or []:
            right = self._joined(join.this, sources)
            for item in join.args.get("using") or []:
                ident = item.this if isinstance(item, exp.Column) else item
                if isinstance(ident, exp.Identifier):
                    merged.add(self.key(ident))
                    self._check_using(ident, [s for s in left if s], right)
            if join.method == "NATURAL" and right and right.table:
                left_keys = {k for s in left if s and s.table for k in s.table.keys}
                merged |= left_keys & set(right.table.keys)
            left.append(right)
        return merged

    def _joined(self, node: exp.Expr, sources: dict[str, _Source]) -> _Source | None:
        return sources.get(self._source_key(node.alias_or_name, node))

    def _check_using(
        self, ident: exp.Identifier, left: list[_Source], right: _Source | None
    ) -> None:
        """A USING column must be in the tables on both sides of the join."""
        key = self.key(ident)
        spelled = next(
            (s.table.keys[key].name for s in left if s.table and key in s.table.keys), None
        )
        if spelled is not None:
            ident.meta[RESOLVED] = spelled
        for side in (left, [right] if right else []):
            if side and not any(s.table is None or key in s.table.keys for s in side):
                names = [c.name for s in side if s.table for c in s.table.columns]
                self._report("F0301", ident, did_you_mean(ident.name, names), name=ident.name)
                return

    def _select_output(
        self, select: exp.Select, sources: dict[str, _Source], using: set[str]
    ) -> _Table | None:
        out: list[_Col] = []
        for index, item in enumerate(select.expressions):
            produced = self._item(item, index, sources, using)
            if produced is None:
                return None
            out += produced
        return _Table(out)

    def _item(
        self, item: exp.Expr, index: int, sources: dict[str, _Source], using: set[str]
    ) -> list[_Col] | None:
        if isinstance(item, exp.Star):
            return self._star(item, list(sources.values()), using)
        if isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
            qualifier = item.args.get("table")
            if not isinstance(qualifier, exp.Identifier):
                return None
            source = sources.get(self.key(qualifier))
            if source is None:
                self._unknown_qualifier(item, qualifier, sources)
                return []
            return self._star(item.this, [source], set())
        if (isinstance(item, exp.Dot) and item.is_star) or isinstance(item, exp.Columns):
            return None
        name, key = self._item_name(item, index)
        return [_Col(name, self._type(item), key, item)]

    def _item_name(self, item: exp.Expr, index: int) -> tuple[str, str]:
        alias = item.args.get("alias") if isinstance(item, exp.Alias) else None
        if isinstance(alias, exp.Identifier):
            return self._engine_name(alias), self.key(alias)
        if isinstance(item, exp.Column) and isinstance(item.this, exp.Identifier):
            resolved = self.names.get(id(item))
            if resolved is not None:
                return resolved, self.engine_key(resolved)
            return self._engine_name(item.this), self.key(item.this)
        name = f"_col_{index}"
        return name, self.engine_key(name)

    def _engine_name(self, ident: exp.Identifier) -> str:
        if self.dialect == "postgres" and not ident.quoted:
            return ident.name.lower()
        return ident.name

    def _type(self, item: exp.Expr) -> str:
        expression = item.this if isinstance(item, exp.Alias) else item
        while isinstance(expression, exp.Paren):
            expression = expression.this
        if isinstance(expression, exp.Column):
            return self.types.get(id(expression), "unknown")
        if isinstance(expression, exp.Cast) and isinstance(expression.to, exp.DataType):
            return expression.to.sql(dialect=self.dialect).lower()
        if isinstance(expression, exp.Count):
            return "bigint"
        return "unknown"

    def _star(self, star: exp.Star, sources: list[_Source], using: set[str]) -> list[_Col] | None:
        if star.args.get("ilike") or any(s.table is None for s in sources):
            return None
        out: list[_Col] = []
        taken: set[str] = set()
        for source in sources:
            for col in source.table.columns if source.table else ():
                if col.key not in using or col.key not in taken:
                    taken.add(col.key)
                    out.append(_Col(col.name, col.type, col.key, star))
        return self._star_modifiers(star, out)

    def _star_modifiers(self, star: exp.Star, cols: list[_Col]) -> list[_Col]:
        """`* EXCLUDE (a)` (BigQuery: `EXCEPT`), `* RENAME (a AS b)`, `* REPLACE (x AS a)`."""
        names = {c.key: c.name for c in cols}
        dropped = {self._star_column(item, names) for item in star.args.get("except_") or []}
        renamed = {
            self._star_column(alias.this, names): alias.alias
            for alias in star.args.get("rename") or []
            if isinstance(alias, exp.Alias)
        }
        replaced = {
            self.key(alias.args["alias"])
            for alias in star.args.get("replace") or []
            if isinstance(alias, exp.Alias) and isinstance(alias.args.get("alias"), exp.Identifier)
        }
        return [self._modified(c, renamed, replaced) for c in cols if c.key not in dropped]

    def _star_column(self, item: exp.Expr, names: dict[str, str]) -> str:
        """The key of a column named in a star modifier, reported when the star lacks it."""
        ident = item.this if isinstance(item, exp.Column) else item
        if not isinstance(ident, exp.Identifier):
            return ""
        key = self.key(ident)
        if key not in names:
            hint = did_you_mean(ident.name, names.values())
            self._report("F0301", ident, hint, name=ident.name)
        return key

    def _modified(self, col: _Col, renamed: dict[str, str], replaced: set[str]) -> _Col:
        name = renamed.get(col.key, col.name)
        kind = "unknown" if col.key in replaced else col.type
        if name == col.name and kind == col.type:
            return col
        return _Col(name, kind, self.engine_key(name), col.item)

    def check_duplicates(self, output: _Table) -> None:
        seen: set[str] = set()
        for col in output.columns:
            if col.key in seen:
                position = _first_position(col.item) if col.item is not None else None
                self._report_at("F0311", position, None, name=col.name)
            seen.add(col.key)

    # --- column references

    def _resolve(
        self,
        column: exp.Column,
        scope: Scope,
        sources: dict[str, _Source],
        select: _SelectInfo | None,
    ) -> None:
        ident = column.this
        if not isinstance(ident, exp.Identifier):
            return
        table = column.args.get("table")
        if not table:
            self._unqualified(column, ident, scope, sources, select)
            return
        if isinstance(table, exp.Identifier) and not column.args.get("db"):
            source = sources.get(self.key(table))  # the common case, `alias.column`, first
            found = source.table.keys.get(self.key(ident)) if source and source.table else None
            if found is not None:
                self.types[id(column)] = found.type
                self.names[id(column)] = column.meta[RESOLVED] = found.name
                return
        parts = [p for p in column.parts if isinstance(p, exp.Identifier)]
        self._qualified(column, parts, scope, sources)

    def _unqualified(
        self,
        column: exp.Column,
        ident: exp.Identifier,
        scope: Scope,
        sources: dict[str, _Source],
        select: _SelectInfo | None,
    ) -> None:
        key = self.key(ident)
        hits = [s for s in sources.values() if s.table is not None and key in s.table.keys]
        if len(hits) == 1 or (hits and select is not None and key in select.using):
            self._record(column, hits[0], key)
            return
        if len(hits) > 1:
            tables = " and ".join(f"`{s.name}`" for s in hits)
            hint: str | None = f"qualify it: `{hits[0].name}.{ident.name}`"
            self._report("F0302", ident, hint, name=ident.name, tables=tables)
            return
        if key in self.pseudo or _may_hold(key, sources):
            return
        if select and self._alias_ok(column, key, select):
            return
        if self._correlated(column, key, scope):
            return
        hint = (
            _alias_hint(ident.name, _clause(column, select.node)[0], self.dialect)
            if select is not None and key in select.aliases
            else did_you_mean(ident.name, self._names_in_scope(sources, select))
        )
        self._report("F0301", ident, hint, name=ident.name)

    def _correlated(self, column: exp.Column, key: str, scope: Scope) -> bool:
        """Whether an unqualified `column` names a column of an enclosing query (marked
        OUTER, and resolved when that query's sources are known)."""
        for outer in self._outer(scope):
            if _may_hold(key, outer):
                hits = [s for s in outer.values() if s.table is not None and key in s.table.keys]
                if hits:
                    self._record(column, hits[0], key)
                column.meta[OUTER] = True
                return True
        return False

    def _qualified(
        self,
        column: exp.Column,
        parts: list[exp.Identifier],
        scope: Scope,
        sources: dict[str, _Source],
    ) -> None:
        for start in range(min(2, len(parts) - 1)):
            qualifier = self.key(parts[start])
            found = sources.get(qualifier)
            if found is None:
                found = next(
                    (outer[qualifier] for outer in self._outer(scope) if qualifier in outer), None
                )
                if found is not None:
                    column.meta[OUTER] = True
            if found is not None:
                self._member(column, found, parts[start + 1], at_end=start + 2 == len(parts))
                return
        key = self.key(parts[0])  # else a struct field: `col.field`
        if _may_hold(key, sources) or any(_may_hold(key, o) for o in self._outer(scope)):
            return
        self._unknown_qualifier(column, parts[0], sources)

    def _member(
        self, column: exp.Column, source: _Source, ident: exp.Identifier, *, at_end: bool
    ) -> None:
        if source.table is None:
            return
        key = self.key(ident)
        if key in self.pseudo:
            return
        if key in source.table.keys:
            if at_end:
                self._record(column, source, key)
            return
        names = [c.name for c in source.table.columns]
        self._report("F0301", ident, did_you_mean(ident.name, names), name=ident.name)

    def _unknown_qualifier(
        self, column: exp.Expr, ident: exp.Identifier, sources: dict[str, _Source]
    ) -> None:
        names = [s.name for s in sources.values() if s.name]
        hint = did_you_mean(ident.name, names) or (
            f"`{ident.name}` is not a table of this query"
            + (f"; it reads {', '.join(f'`{n}`' for n in names)}" if names else "")
        )
        self._report("F0301", ident, hint, name=column.sql(dialect=self.dialect))

    def _record(self, column: exp.Column, source: _Source, key: str) -> None:
        assert source.table is not None
        col = source.table.keys[key]
        self.types[id(column)] = col.type
        self.names[id(column)] = column.meta[RESOLVED] = col.name

    def _outer(self, scope: Scope) -> Iterator[dict[str, _Source]]:
        """The sources of the enclosing queries a correlated subquery can see, inner first."""
        current = scope
        while current.parent is not None and _can_see_parent(current):
            current = current.parent
            yield self._sources(current)

    def _alias_ok(self, column: exp.Column, key: str, select: _SelectInfo) -> bool:
        if key not in select.aliases:
            return False
        clause, index = _clause(column, select.node)
        if clause not in ALIAS_CLAUSES.get(self.dialect, set()):
            return False
        if clause == "expressions" and select.aliases[key] >= index:
            return False
        column.meta[ALIAS_REFERENCE] = clause  # code generation checks the target allows it
        column.meta[RESOLVED] = self._engine_name(
            select.node.expressions[select.aliases[key]].args["alias"]
        )
        return True

    def _names_in_scope(self, sources: dict[str, _Source], select: _SelectInfo | None) -> list[str]:
        names = [c.name for s in sources.values() if s.table for c in s.table.columns]
        if select is not None:
            names += [item.alias for item in select.node.expressions if isinstance(item, exp.Alias)]
        return names

    # --- problems

    def _report(self, code: str, ident: exp.Expr, hint: str | None, **fields: str) -> None:
        self._report_at(code, _position(ident), hint, **fields)

    def _report_at(
        self, code: str, position: tuple[int, int] | None, hint: str | None, **fields: str
    ) -> None:
        start, end = position if position else (None, 0)
        marker = (start, f"{code}:{fields}")
        if marker in self._reported:
            return
        self._reported.add(marker)
        self.problems.append(SqlProblem(code, start, end, dict(fields), hint))


def columns_in(scope: Scope) -> list[exp.Column]:
    """The column references of a scope, stars excepted.

    sqlglot collects them while it builds the scope (`Scope._raw_columns`); reading that list
    saves walking every query again. It is not public API, so without it we walk.
    """
    scope.tables  # noqa: B018 - makes sure the scope has collected its nodes
    raw = getattr(scope, "_raw_columns", None)
    if isinstance(raw, list):
        return raw
    return [
        node
        for node in walk_in_scope(scope.expression)
        if type(node) is exp.Column and not isinstance(node.this, exp.Star)
    ]


def _comprehension_variable(column: exp.Column) -> bool:
    """`x` in DuckDB's `[x * 2 FOR x IN list]`: the loop's variable, not a column."""
    if column.args.get("table"):
        return False
    child: exp.Expr = column
    parent = column.parent
    while parent is not None:
        if (
            isinstance(parent, exp.Comprehension)
            and child.arg_key != "iterator"
            and parent.expression is not None
            and parent.expression.name.lower() == column.name.lower()
        ):
            return True
        child, parent = parent, parent.parent
    return False


def _in_star(column: exp.Column) -> bool:
    parent = column.parent
    return isinstance(parent, exp.Star) or (
        isinstance(parent, exp.Alias)
        and isinstance(parent.parent, exp.Star)
        and parent.arg_key == "rename"
    )


def _duplicate_alias(expression: exp.Expr, report: Callable[[exp.Expr, str], None]) -> bool:
    """Report a FROM clause naming two tables alike (sqlglot's scope refuses it)."""
    if not isinstance(expression, exp.Select):
        return False
    from_ = expression.args.get("from_")
    items = [from_.this] if isinstance(from_, exp.From) else []
    items += [join.this for join in expression.args.get("joins") or []]
    seen: set[str] = set()
    for item in items:
        name = item.alias_or_name
        if name and name in seen:
            alias = item.args.get("alias")
            report(alias if isinstance(alias, exp.Expr) else item, name)
            return True
        seen.add(name)
    return False


def _alias_hint(name: str, clause: str, dialect: str) -> str:
    where = CLAUSE_WORDS.get(clause, "here")
    if clause == "expressions" and dialect == "duckdb":
        return f"`{name}` is a SELECT alias defined later in the list; move it before this use"
    engine = _ENGINES.get(dialect, dialect)
    return (
        f"`{name}` is a SELECT alias, which {engine} does not accept {where}; repeat the expression"
    )


def _alias_names(node: exp.Expr | None) -> list[str]:
    if node is None:
        return []
    alias = node.args.get("alias")
    if isinstance(alias, exp.TableAlias):
        return [c.name for c in alias.columns]
    return []


def _can_see_parent(scope: Scope) -> bool:
    return bool(scope.can_be_correlated) or scope.scope_type in (
        ScopeType.SUBQUERY,
        ScopeType.UDTF,
    )


def _clause(column: exp.Expr, select: exp.Select) -> tuple[str, int]:
    """The clause of `select` that holds `column` (`where`, `order`, ...) and its index there."""
    node = column
    while node.parent is not None and node.parent is not select:
        node = node.parent
    return node.arg_key or "", node.index or 0


def _position(node: exp.Expr) -> tuple[int, int] | None:
    meta = node.meta
    if "start" in meta:
        return int(meta["start"]), int(meta["end"]) + 1
    return _first_position(node)


def _first_position(node: exp.Expr) -> tuple[int, int] | None:
    if isinstance(node, exp.Alias) and isinstance(node.args.get("alias"), exp.Identifier):
        node = node.args["alias"]
    for inner in node.walk():
        if "start" in inner.meta:
            return int(inner.meta["start"]), int(inner.meta["end"]) + 1
    return None


# --- references to columns outside SQL: expect, keys, partitions ----------------------------


def _check_references(node: AnyNode, state: _State, diagnostics: Diagnostics) -> None:
    if node.output is None:
        return
    check = _ColumnCheck(node, state, diagnostics)
    for expectation in node.expectations:
        check.expectation(expectation)
    if isinstance(node, ir.TransformNode):
        check.refs("unique_key", node.unique_key)
        check.refs("time_column", (node.time_column,) if node.time_column else ())
    if isinstance(node, ir.SinkNode):
        check.refs("key", node.key)
        for keyword in ("partition_by", "cluster_by"):
            given = node.to.keyword(keyword) if node.to else None
            if given is not None and isinstance(given.value, ir.ListValue):
                check.refs(keyword, unwrap_dates(given.value.items))


class _ColumnCheck:
    """Checks names of a node's columns written in the .flow file (they count as unquoted)."""

    def __init__(self, node: AnyNode, state: _State, diagnostics: Diagnostics) -> None:
        self.node = node
        self.state = state
        self.dialect = state.dialect
        self.diagnostics = diagnostics

    def keys(self, node: AnyNode) -> dict[str, str]:
        columns = engine_columns(node, self.dialect)
        engine = (lambda n: n) if self.dialect == "postgres" else str.lower
        return {engine(c.name): c.name for c in columns}

    def refs(self, check: str, refs: Iterable[ir.Value], node: AnyNode | None = None) -> None:
        target = node or self.node
        if target.output is None:
            return
        keys = self.keys(target)
        for ref in refs:
            if isinstance(ref, ir.Ref) and len(ref.parts) == 1:
                self.name(check, ref.parts[0], ref.span, keys, target)

    def name(
        self, check: str, name: str, span: Span, keys: dict[str, str], target: AnyNode
    ) -> None:
        if declared_key(name, self.dialect) in keys:
            return
        hint = did_you_mean(name, keys.values())
        self.diagnostics.report("F0306", span, hint=hint, check=check, name=name, node=target.name)

    def expectation(self, expectation: ir.Expectation) -> None:
        call = expectation.call
        signature = CHECKS.get(expectation.check)
        if signature is None:
            return
        if expectation.check in ("not_null", "unique"):
            self.refs(expectation.check, call.args)
        elif expectation.check in ("accepted_values", "relationship"):
            column = argument(call, signature, "column")
            self.refs(expectation.check, [column] if column is not None else [])
        if expectation.check == "relationship":
            self.relationship(argument(call, signature, "other"))
        elif expectation.check == "check":
            condition = argument(call, signature, "condition")
            if isinstance(condition, ir.Str):
                self.condition(condition)

    def relationship(self, other: ir.Value | None) -> None:
        if not isinstance(other, ir.Ref) or len(other.parts) != 2:
            return
        node = self.state.updated.get(other.parts[0])
        if node is not None:
            span = other.span
            if span.line == span.end_line:  # point at the column, after `node.`
                span = span.model_copy(update={"col": span.col + len(other.parts[0]) + 1})
            self.refs("relationship", [ir.Ref(parts=other.parts[1:], span=span)], node)

    def condition(self, text: ir.Str) -> None:
        found = parse_condition(text.value, self.dialect)
        spans = _StrSpans(text)
        if isinstance(found, SqlProblem):
            self.diagnostics.report(
                "F0310", spans(found.start, found.end), hint=found.hint, **found.fields
            )
            return
        keys = self.keys(self.node)
        for column in found.find_all(exp.Column):
            if column.table or column.find_ancestor(exp.Query) is not None:
                continue
            position = _position(column.this)
            span = spans(*position) if position else text.span
            self.name("check", column.name, span, keys, self.node)


@dataclass(frozen=True)
class _StrSpans:
    text: ir.Str

    def __call__(self, start: int | None, end: int) -> Span:
        if start is None:
            return self.text.span
        return segment_span(
            self.text.segments, self.text.span.file, start, end, fallback=self.text.span
        )


def parse_condition(text: str, dialect: str) -> exp.Expr | SqlProblem:
    """The boolean expression of a `check("...")`, or why it is not one."""
    wrapped = f"SELECT 1 WHERE {text}"
    shift = len("SELECT 1 WHERE ")
    parsed = parse_query(wrapped, dialect)
    if isinstance(parsed, SqlProblem):
        start = None if parsed.start is None else max(parsed.start - shift, 0)
        detail = parsed.fields.get("detail") or "expected one boolean expression"
        return SqlProblem("F0310", start, max(parsed.end - shift, 1), {"detail": detail})
    where = parsed.tree.args.get("where")
    if not isinstance(parsed.tree, exp.Select) or not isinstance(where, exp.Where):
        return SqlProblem("F0310", 0, len(text), {"detail": "expected one boolean expression"})
    for ident in where.find_all(exp.Identifier):
        if "start" in ident.meta:
            ident.meta["start"] -= shift
            ident.meta["end"] -= shift
    condition: exp.Expr = where.this.pop()
    return condition
