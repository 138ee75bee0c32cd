"""Planning: a checked spec becomes the steps of a `Plan`, for one profile.

The passes, in order:

1. `place`: every node gets a connection of the profile: its own `target`, else the
   pipeline's, else `local`; a `table(conn, ...)` source lives on `conn`, a table sink writes
   to its `conn`, a file sink reads its input where the input lives.
2. `materialize` (LANGUAGE §4.2): a Python transform, a loaded source and a SQL transform
   without a `materialize` are tables, except that a SQL transform read by exactly one SQL
   transform on the same connection, by nothing else, and without `expect` is ephemeral.
3. `_Steps` walks the nodes in topological order and emits the steps: `load` for file
   sources, `python` for Python nodes, `sql` for SQL transforms that are not ephemeral,
   `check` for every `expect` entry, `export` for sinks, and a `transfer` wherever rows
   cross connections or enter or leave Python. An ephemeral transform is no step: its
   query is fused into each query that reads it, as a CTE. SQL comes from `codegen`.
4. `fingerprint` hashes each step with its upstreams' hashes.

Steps that read a node wait for the node's step and for its `on_fail = error` checks, so a
failing check stops everything downstream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowc.compiler import ir, plan, vocabulary
from flowc.compiler.analysis import dag, extract, schema
from flowc.compiler.analysis.arguments import unwrap_dates
from flowc.compiler.analysis.identifiers import declared_key
from flowc.compiler.analysis.schedule import parse_duration
from flowc.compiler.analysis.sql_parse import ALIASES
from flowc.compiler.codegen import annotate
from flowc.compiler.codegen.generate import PLACEHOLDERS, Parts, Problem, Renderer
from flowc.compiler.planning import expectations as checks
from flowc.compiler.planning.fingerprint import fingerprint_steps
from flowc.compiler.planning.numbers import rounding_notes
from flowc.project import config
from sqlglot import exp

AnyNode = ir.SourceNode | ir.TransformNode | ir.SinkNode
DEFAULT_CONNECTION = "local"


@dataclass(frozen=True)
class Planned:
    plan: plan.Plan
    problems: list[Problem]


def plan_spec(
    spec: ir.Spec,
    trees: Mapping[str, exp.Query],
    order: Sequence[str],
    *,
    project: str,
    profile: config.Profile,
    consume: bool = False,
    known: set[str] | None = None,
) -> Planned:
    """The plan of a checked, error-free `spec` for `profile`.

    `trees` are the analysis' parsed queries. With `consume`, they are rewritten in place
    (the caller will not read them again); otherwise each is copied first. `known`: the
    nodes whose columns were inferred, when not all were (see `columns_needed`).
    """
    pipeline = spec.pipeline
    assert pipeline is not None, "a spec without errors has a pipeline"
    graph = dag.upstream_edges(spec)
    nodes = spec.node_map()
    homes = place(spec, pipeline, graph)
    kinds = materialize(spec, graph, homes)
    builder = _Steps(spec, pipeline, trees, list(order), graph, homes, kinds, profile, consume)
    builder.known = known
    for name in order:
        builder.node(nodes[name])
    steps = fingerprint_steps(builder.steps)
    result = plan.Plan(
        plan_version=plan.PLAN_VERSION,
        project=project,
        profile=profile.name,
        pipeline=_pipeline_info(spec, pipeline),
        params=[_param(p) for p in pipeline.params],
        connections=builder.connections(),
        nodes=builder.node_infos(nodes),
        steps=steps,
    )
    problems = [p for r in builder.renderers.values() for p in r.problems]
    return Planned(result, builder.problems + problems)


def columns_needed(spec: ir.Spec) -> set[str]:
    """The nodes whose columns a plan of `spec` may show, on any profile: what is not a SQL
    transform (loads, Python steps, sinks), what one of those reads, what a query reads from
    another connection (a transfer) and what a check names. The planner asks for no other
    node's columns, so `flowc compile` infers only these when the check cache vouches that
    the spec is clean (`infer_schemas(only=...)`)."""
    if spec.pipeline is None:
        return {node.name for node in spec.nodes}
    graph = dag.upstream_edges(spec)
    homes = place(spec, spec.pipeline, graph)
    names = {node.name for node in spec.nodes}
    needed: set[str] = set()
    for node in spec.nodes:
        if not _is_sql(node):
            needed.add(node.name)
        for edge in graph[node.name]:
            if not _is_sql(node) or homes[node.name] != homes[edge.upstream]:
                needed.add(edge.upstream)
        for expectation in node.expectations:
            values = [*expectation.call.args, *(k.value for k in expectation.call.keywords)]
            needed |= {v.dotted for v in values if isinstance(v, ir.Ref) and v.dotted in names}
    return needed


# --- pass 1: placement ------------------------------------------------------------------------


def place(spec: ir.Spec, pipeline: ir.Pipeline, graph: dag.Graph) -> dict[str, str]:
    """The connection of every node (for a file sink: where it reads its input)."""
    default = pipeline.target.dotted if pipeline.target else DEFAULT_CONNECTION
    homes: dict[str, str] = {}
    for node in spec.nodes:
        homes[node.name] = node.target.dotted if node.target else default
        call = node.from_ if isinstance(node, ir.SourceNode) else None
        if isinstance(node, ir.SinkNode):
            call = node.to
        if call is not None and call.name == "table" and isinstance(call.args[0], ir.Ref):
            homes[node.name] = call.args[0].dotted
    for node in spec.nodes:
        if isinstance(node, ir.SinkNode) and node.to is not None and node.to.name != "table":
            upstream = graph[node.name]
            homes[node.name] = homes[upstream[0].upstream] if upstream else default
    return homes


# --- pass 2: materialization ------------------------------------------------------------------


def materialize(
    spec: ir.Spec, graph: dag.Graph, homes: Mapping[str, str]
) -> dict[str, plan.Materialization | None]:
    """Each node's materialization; None for what flowc does not create (an external
    `table(...)` source, a sink)."""
    readers: dict[str, list[str]] = {n.name: [] for n in spec.nodes}
    for name, edges in graph.items():
        for edge in edges:
            readers[edge.upstream].append(name)
    nodes = spec.node_map()
    kinds: dict[str, plan.Materialization | None] = {}
    for node in spec.nodes:
        kinds[node.name] = _materialization(node, readers[node.name], nodes, homes)
    return kinds


def _materialization(
    node: AnyNode, readers: list[str], nodes: Mapping[str, AnyNode], homes: Mapping[str, str]
) -> plan.Materialization | None:
    if isinstance(node, ir.SinkNode):
        return None
    if isinstance(node, ir.SourceNode):
        return None if node.from_ is not None and node.from_.name == "table" else "table"
    if node.sql is None:
        return "table"
    if node.materialize is not None:
        word = node.materialize.dotted
        return word if word in ("view", "table", "incremental", "ephemeral") else "table"  # type: ignore[return-value]
    if len(readers) == 1 and not node.expectations:
        reader = nodes[readers[0]]
        if _is_sql(reader) and homes[reader.name] == homes[node.name]:
            return "ephemeral"
    return "table"


def _is_sql(node: AnyNode) -> bool:
    return isinstance(node, ir.TransformNode) and node.sql is not None


# --- pass 3: steps ----------------------------------------------------------------------------


@dataclass
class Read:
    """How a query on some connection reads a node: the name to write, the ephemeral
    transforms to fuse in front of it, and the steps to wait for."""

    parts: Parts
    fused: list[str]
    deps: list[str]


@dataclass
class _Query:
    tree: exp.Query
    fused: list[str]
    deps: list[str]
    owners: dict[int, str] = field(default_factory=dict)


class _Steps:
    def __init__(
        self,
        spec: ir.Spec,
        pipeline: ir.Pipeline,
        trees: Mapping[str, exp.Query],
        order: list[str],
        graph: dag.Graph,
        homes: dict[str, str],
        kinds: dict[str, plan.Materialization | None],
        profile: config.Profile,
        consume: bool,
    ) -> None:
        self.spec, self.pipeline, self.trees, self.graph = spec, pipeline, trees, graph
        self.homes, self.kinds, self.profile, self.consume = homes, kinds, profile, consume
        self.nodes = spec.node_map()
        self.position = {name: i for i, name in enumerate(order)}
        self.params = {p.name: p.type for p in pipeline.params}
        self.renderers: dict[str, Renderer] = {}
        self.steps: list[dict[str, Any]] = []
        self.ready: dict[str, list[str]] = {}  # node -> steps after which it can be read
        self.main: dict[str, str] = {}  # node -> the step that makes it
        self.transfers: dict[tuple[str, str], str] = {}
        self.inlined: dict[str, list[str]] = {}
        self.problems: list[Problem] = []
        self.used_connections: set[str] = set()
        self.taken: set[str] = set()
        self.known: set[str] | None = None  # None: every node's columns were inferred
        self.types: dict[str, list[tuple[str, str]]] = {}  # node -> its columns' types
        self.typing = pipeline.dialect == "duckdb" and any(
            c.type != pipeline.dialect for c in profile.connections.values()
        )

    # --- connections and renderers

    def renderer(self, connection: str) -> Renderer:
        found = self.profile.connections[connection]
        fold = isinstance(found.settings, config.PostgresSettings) and found.settings.fold_names
        key = f"{found.type}:fold" if fold else found.type
        self.used_connections.add(connection)
        if key not in self.renderers:
            self.renderers[key] = Renderer(
                self.pipeline.dialect, found.type, self.params, fold_names=fold
            )
        return self.renderers[key]

    def connections(self) -> list[plan.Connection]:
        found = []
        for name in sorted(self.used_connections):
            kind = self.profile.connections[name].type
            found.append(
                plan.Connection(name=name, type=kind, dialect=kind, placeholder=PLACEHOLDERS[kind])
            )
        return found

    # --- reading nodes

    def read(self, name: str, connection: str) -> Read:
        """How a query on `connection` reads node `name` (adding a transfer when needed)."""
        home = self.homes[name]
        if home == connection and self.kinds[name] == "ephemeral":
            inner = [self.read(e.upstream, connection) for e in self.graph[name]]
            fused = self._merged([*(f for r in inner for f in r.fused), name])
            deps = [d for r in inner for d in r.deps] + self.ready.get(name, [])
            return Read((self.renderer(connection).name(name),), fused, _unique(deps))
        if home == connection:
            return Read(self.relation_parts(name, connection), [], list(self.ready.get(name, [])))
        return Read((self.renderer(connection).name(name),), [], [self.transfer(name, connection)])

    def relation_parts(self, name: str, connection: str) -> Parts:
        node = self.nodes[name]
        renderer = self.renderer(connection)
        if (
            isinstance(node, ir.SourceNode)
            and node.from_ is not None
            and node.from_.name == "table"
        ):
            written = node.from_.args[1]
            assert isinstance(written, ir.Str)
            return renderer.parts(written.value)
        return (renderer.name(name),)

    def _merged(self, names: Sequence[str]) -> list[str]:
        return sorted(dict.fromkeys(names), key=self.position.__getitem__)

    def has_params(self, name: str) -> bool:
        node = self.nodes[name]
        return isinstance(node, ir.TransformNode) and bool(node.parameters)

    def reading_query(
        self,
        tree: exp.Query,
        reads: Sequence[str],
        connection: str,
        node: str = "",
        *,
        binds: bool = False,
    ) -> _Query:
        """`tree` (naming nodes by their names) prepared to run on `connection`: node names
        resolved, the ephemeral transforms it reads fused in front as CTEs; `binds`: the tree
        has placeholders of its own (a check's bound values)."""
        renderer = self.renderer(connection)
        found = {name: self.read(name, connection) for name in reads}
        fused = self._merged([f for r in found.values() for f in r.fused])
        deps = _unique([d for r in found.values() for d in r.deps])
        named = self.cte_names(tree, fused, renderer)
        refs = {name: named.get(name) or r.parts for name, r in found.items()}
        ctes: list[tuple[str, exp.Query]] = []
        owners: dict[int, str] = {}
        for name in fused:
            inner = {
                e.upstream: named.get(e.upstream) or self.read(e.upstream, connection).parts
                for e in self.graph[name]
            }
            prepared = renderer.prepare(
                self.tree(name),
                inner,
                name,
                has_params=self.has_params(name),
                schemas=self.schemas([e.upstream for e in self.graph[name]], renderer),
            )
            ctes.append((named[name][0], prepared))
        has_params = binds or (self.has_params(node) if node else False)
        schemas = self.schemas(reads, renderer)
        prepared = renderer.prepare(tree, refs, node, has_params=has_params, schemas=schemas)
        query = renderer.fuse(prepared, ctes)
        with_ = query.args.get("with_")
        for (name, _), cte in zip(ctes, with_.expressions if with_ else [], strict=False):
            owners[id(cte)] = name
        return _Query(query, fused, deps, owners)

    def cte_names(
        self, tree: exp.Query, fused: Sequence[str], renderer: Renderer
    ) -> dict[str, Parts]:
        """The CTE name of each fused node: its own, unless the query or a fused one already
        names a CTE (or a table) so; then `<name>_ephemeral` (`_2`, ... if taken too). The
        query keeps its own CTE under its name, and every reference to the node follows."""
        if not fused:
            return {}
        taken = _aliases(tree)
        for name in fused:
            taken |= _aliases(self.trees[name])
        named: dict[str, Parts] = {}
        for name in fused:
            cte = renderer.name(name)
            if cte.lower() in taken:
                base, suffix = f"{cte}_ephemeral", 1
                cte = base
                while cte.lower() in taken:
                    suffix += 1
                    cte = f"{base}_{suffix}"
            taken.add(cte.lower())
            named[name] = (cte,)
        return named

    def tree(self, name: str) -> exp.Query:
        """`name`'s query to rewrite: the analysis' own tree the first time when consuming
        (its columns typed first, while it is as written, when readers may need them)."""
        tree = self.trees[name]
        if self.consume and name not in self.taken:
            if self.typing:
                self.output_types(name)
            self.taken.add(name)
            return tree
        return tree.copy()

    # --- types, for the dialect rewrites

    def schemas(self, names: Sequence[str], renderer: Renderer) -> annotate.Schemas:
        """The typed columns of the nodes a query on `renderer`'s engine reads (none where
        the query needs no rewrite: it runs in the spec's own dialect)."""
        if renderer.target == self.pipeline.dialect:
            return {}
        return {name: self.output_types(name) for name in names}

    def output_types(self, name: str) -> list[tuple[str, str]]:
        """(name, type) of node `name`'s columns: a query's worked out from its tree (as
        written) and its inputs' types; any other node's as declared or loaded."""
        if name not in self.types:
            node = self.nodes[name]
            if _is_sql(node) and name in self.trees and name not in self.taken:
                upstream = {e.upstream: self.output_types(e.upstream) for e in self.graph[name]}
                found = annotate.output_types(self.trees[name], upstream, self.pipeline.dialect)
            else:
                found = [(c.name, c.type) for c in node.output or ()]
            self.types[name] = found
        return self.types[name]

    def transfer(self, name: str, connection: str | None, reader: str | None = None) -> str:
        """A step copying node `name` to `connection` (None: into Python step `reader`)."""
        key = (name, connection or f"python:{reader}")
        if key in self.transfers:
            return self.transfers[key]
        step_id = f"{name}.to.{connection}" if connection else f"{name}.into.{reader}"
        home = self.homes[name]
        node = self.nodes[name]
        sql: list[str] | None = None
        deps = list(self.ready.get(name, []))
        fused: list[str] = []
        source: str | None = home
        if self.main.get(name, "").endswith(".py"):
            source = None  # rows come out of the node's Python step
        if source is not None:
            query = self.reading_query(self.renderer(home).select_all((name,)), [name], home)
            sql = [self.render(name, query, home)]
            deps, fused = query.deps, query.fused
        table = self.renderer(connection).name(name) if connection else None
        self.add(
            step_id,
            "transfer",
            node,
            connection=source or connection,  # where its SQL reads (else where it writes)
            inputs=deps,
            outputs=[self.relation(name, connection, table)],
            sql=sql,
            fused=fused,
            transfer=plan.Transfer(
                node=name, from_connection=source, to_connection=connection, table=table
            ),
        )
        self.transfers[key] = step_id
        return step_id

    def render(self, name: str, query: _Query, connection: str) -> str:
        """The text of `query` on `connection`; problems are positioned in `name`'s SQL."""
        return self.renderer(connection).query(name, query.tree, query.owners)

    # --- nodes

    def node(self, node: AnyNode) -> None:
        if node.unparsed:
            return
        if isinstance(node, ir.SourceNode):
            self.source(node)
        elif isinstance(node, ir.TransformNode):
            self.transform(node)
        else:
            self.sink(node)
        if not isinstance(node, ir.SinkNode):
            self.checks(node, node.name, self.homes[node.name])

    def source(self, node: ir.SourceNode) -> None:
        home = self.homes[node.name]
        if node.python is not None:
            self.python(node, node.python, [])
            return
        call = node.from_
        if call is None or call.name == "table":
            self.ready[node.name] = []
            self.renderer(home)
            return
        renderer = self.renderer(home)
        columns = self.columns(node, home)
        sql = None
        if node.columns is not None and columns is not None:
            triples = [
                (c.name, d.type, d.not_null) for c, d in zip(columns, node.columns, strict=True)
            ]
            sql = renderer.create_columns((renderer.name(node.name),), triples)
        self.add(
            node.name,
            "load",
            node,
            connection=home,
            inputs=[],
            outputs=[self.relation(node.name, home, renderer.name(node.name))],
            sql=sql,
            materialization="table",
            source=_source(call, node.columns),
        )
        self.finish(node.name, node.name)

    def transform(self, node: ir.TransformNode) -> None:
        if node.python is not None:
            self.python(node, node.python, [e.upstream for e in self.graph[node.name]])
            return
        kind = self.kinds[node.name]
        if node.name not in self.trees or kind == "ephemeral":
            self.inlined.setdefault(node.name, [])
            return
        home = self.homes[node.name]
        renderer = self.renderer(home)
        reads = [e.upstream for e in self.graph[node.name]]
        query = self.reading_query(self.tree(node.name), reads, home, node.name)
        text = self.render(node.name, query, home)
        parts = (renderer.name(node.name),)
        sql = renderer.create(parts, text, view=kind == "view")
        for name in query.fused:
            self.inlined.setdefault(name, []).append(node.name)
        self.add(
            node.name,
            "sql",
            node,
            connection=home,
            inputs=query.deps,
            outputs=[plan.Relation(node=node.name, connection=home, name=parts[0])],
            sql=sql,
            materialization=kind,
            fused=query.fused,
            parameters=self.parameters([node.name, *query.fused]),
            incremental=(
                _incremental(node, renderer, parts, text, self.speller(node.name, home))
                if kind == "incremental"
                else None
            ),
            resolve_at_run=self.late(reads),
        )
        self.finish(node.name, node.name)

    def python(self, node: AnyNode, entry: ir.PythonEntry, inputs: list[str]) -> None:
        deps = [self.transfer(name, None, node.name) for name in inputs]
        step_id = f"{node.name}.py"
        self.add(
            step_id,
            "python",
            node,
            connection=None,
            inputs=deps,
            outputs=[self.relation(node.name, None, None)],
            python=plan.PythonEntry(
                path=entry.path,
                function=entry.function,
                sha256=file_digest(Path(self.spec.root) / entry.path),
            ),
            isolate=self.pipeline.isolate if node.isolate is None else node.isolate,
        )
        self.main[node.name] = step_id
        self.ready[node.name] = [step_id]
        home = self.homes[node.name]
        landed = self.transfer(node.name, home)
        self.steps[-1]["materialization"] = "table"
        self.finish(node.name, landed)

    def sink(self, node: ir.SinkNode) -> None:
        call = node.to
        upstream = self.graph[node.name]
        if call is None or not upstream:
            return
        connection = self.homes[node.name]
        renderer = self.renderer(connection)
        name = upstream[0].upstream
        check_deps = self.checks(node, name, connection)
        query = self.reading_query(renderer.select_all((name,)), [name], connection)
        text = self.render(name, query, connection)
        sink = _sink(node, call, self.speller(name, connection))
        sql = [text]
        if sink.table is not None:
            parts = renderer.parts(sink.table)
            if len(parts) == 1:
                parts = self.own_schema(connection) + parts
            sql = self.export_sql(node, sink, text, renderer, parts)
            # for the runtime, as the engine names it, parts plain: `ny_taxi.trips`, `main.a b`
            sink = sink.model_copy(update={"table": ".".join(parts)})
        else:
            spellings = self.spellings(self.nodes[name], renderer)
            if spellings:
                sql = [_renamed(text, spellings, renderer)]
                partition_by = [spellings.get(c, c) for c in sink.partition_by]
                sink = sink.model_copy(update={"partition_by": partition_by})
        self.add(
            node.name,
            "export",
            node,
            connection=connection,
            inputs=[*query.deps, *check_deps],
            outputs=[],
            sql=sql,
            fused=query.fused,
            sink=sink,
            resolve_at_run=(self.late([name]) if _names_columns(sink, renderer) else []),
        )
        self.main[node.name] = node.name

    def spellings(self, node: AnyNode, renderer: Renderer) -> dict[str, str]:
        """Engine name -> the spec's spelling of `node`'s columns, where the engine folds
        them (Postgres: `vendorid` is `VendorID`); empty when every name is the spec's. A
        file users read gets the spec's names, whatever engine wrote it."""
        if node.output is None or not renderer.fold_quoted:
            return {}
        spell = renderer.output_name if _is_sql(node) else renderer.name
        named = schema.engine_columns(node, self.pipeline.dialect)
        found = {spell(c.name): c.name for c in named}
        return found if any(k != v for k, v in found.items()) else {}

    def own_schema(self, connection: str) -> Parts:
        """The schema an unqualified sink table goes to, named: the connection's own (DuckDB
        `main`, Postgres its `schema`), not the internal schema first on the search path
        where the run's last transaction creates unqualified names. BigQuery: its dataset,
        by the job's default (nothing to name)."""
        settings = self.profile.connections[connection].settings
        if isinstance(settings, config.PostgresSettings):
            return (settings.db_schema.lower() if settings.fold_names else settings.db_schema,)
        if isinstance(settings, config.DuckDBSettings):
            return ("main",)
        return ()

    def export_sql(
        self, node: ir.SinkNode, sink: plan.Sink, text: str, renderer: Renderer, parts: Parts
    ) -> list[str]:
        own = self.own_schema(self.homes[node.name])
        # the connection's own schema exists (and creating it may be refused even so)
        statements = [] if own and parts[:-1] == own else renderer.create_schema(parts)
        columns = self.columns(node, self.homes[node.name])
        types = {c.name: c.type for c in columns or []}
        layout = renderer.layout(sink.partition_by, sink.cluster_by, types)
        if layout.problem:
            self.problems.append(Problem(node.name, layout.problem))
        if sink.mode == "replace":
            return statements + renderer.create(parts, text, layout=layout.sql)
        statements += renderer.append(parts, text, layout=layout.sql)
        if sink.mode == "append":
            return statements
        if columns is None:
            detail = "a `merge` sink needs the columns of its input; declare them upstream"
            self.problems.append(Problem(node.name, detail))
            return statements[:-1]
        names = [c.name for c in columns]
        return [*statements[:-1], renderer.merge(parts, text, sink.key, names)]

    def checks(self, node: AnyNode, relation: str, connection: str) -> list[str]:
        """Steps testing `node`'s expectations on `relation`; the ids of the blocking ones."""
        blocking: list[str] = []
        named: dict[str, int] = {}
        for expectation in node.expectations:
            built = checks.check_query(expectation, relation, self.pipeline.dialect)
            if built is None:
                continue
            tree, others, values = built
            self.resolve(tree, [relation, *others], connection)
            query = self.reading_query(tree, [relation, *others], connection, binds=bool(values))
            step_id = _check_id(node.name, expectation.call, named)
            self.add(
                step_id,
                "check",
                node,
                connection=connection,
                inputs=query.deps,
                outputs=[],
                sql=[self.render(relation, query, connection)],
                fused=query.fused,
                check=plan.Check(
                    node=node.name,
                    check=expectation.check,
                    columns=[a.parts[0] for a in expectation.call.args if isinstance(a, ir.Ref)][
                        : 1 if expectation.check in _FIRST_COLUMN_ONLY else None
                    ],
                    description=checks.describe(expectation.call),
                    line=expectation.call.span.line,
                    on_fail=expectation.on_fail,
                ),
                resolve_at_run=self.late([relation, *others]),
                values=[plan.BoundValue(name=n, value=v) for n, v in values],
            )
            if expectation.on_fail == "error":
                blocking.append(step_id)
        if not isinstance(node, ir.SinkNode):
            self.ready[node.name] = [*self.ready.get(node.name, []), *blocking]
        return blocking

    def finish(self, name: str, step_id: str) -> None:
        self.main[name] = step_id
        self.ready[name] = [step_id]

    # --- pieces of steps

    def columns(self, node: AnyNode, connection: str) -> list[plan.Column] | None:
        renderer = self.renderer(connection)
        assert self.known is None or node.name in self.known, f"columns of {node.name} unknown"
        if node.output is None:
            return None
        if isinstance(node, ir.SinkNode):
            upstream = self.graph[node.name]
            return self.columns(self.nodes[upstream[0].upstream], connection) if upstream else None
        named = schema.engine_columns(node, self.pipeline.dialect)
        spell = renderer.output_name if _is_sql(node) else renderer.name
        return [plan.Column(name=spell(c.name), type=c.type, not_null=c.not_null) for c in named]

    def late(self, reads: Sequence[str]) -> list[str]:
        """The nodes whose columns only the run will know, among those a step reads
        (directly or through SQL transforms): once it knows them, the step is planned again
        (`resolve_at_run`), so that every name is resolved — spelled as defined on engines
        that need it, reported at its line when it is not there — as if they were declared."""
        found: set[str] = set()
        seen: set[str] = set()
        todo = list(reads)
        while todo:
            name = todo.pop()
            node = self.nodes[name]
            if name in seen or node.output is not None:
                continue
            seen.add(name)
            if _is_sql(node):
                todo += [edge.upstream for edge in self.graph[name]]
            else:
                found.add(name)
        return sorted(found)

    def resolve(self, tree: exp.Query, reads: Sequence[str], connection: str) -> None:
        """Mark the column references of a query flowc wrote (a check) with the columns they
        name, as the schema pass marks a user's query, where the target respells them."""
        if not self.renderer(connection).respell:
            return
        upstream = {
            name: schema.engine_columns(self.nodes[name], self.pipeline.dialect)
            if self.nodes[name].output is not None
            else None
            for name in reads
        }
        schema.node_output(tree, upstream, self.pipeline.dialect)

    def speller(self, name: str, connection: str) -> Callable[[str], str]:
        """How the engine names a column of node `name` that the spec names as written
        (`partition_by = [Vendorid]` is the column `VendorID`)."""
        renderer = self.renderer(connection)
        node = self.nodes[name]
        fallback = renderer.output_name if _is_sql(node) else renderer.name
        if node.output is None:
            return fallback
        columns = self.columns(node, connection) or []
        dialect = self.pipeline.dialect
        spelled = {declared_key(c.name, dialect): c.name for c in columns}
        return lambda written: spelled.get(declared_key(written, dialect)) or fallback(written)

    def relation(self, name: str, connection: str | None, table: str | None) -> plan.Relation:
        columns = self.columns(self.nodes[name], connection or self.homes[name])
        if connection is None and columns is not None:  # into Python: the spec's spelling
            named = schema.engine_columns(self.nodes[name], self.pipeline.dialect)
            if len(named) == len(columns):
                pairs = zip(columns, named, strict=True)
                columns = [c.model_copy(update={"name": n.name}) for c, n in pairs]
        return plan.Relation(node=name, connection=connection, name=table, columns=columns)

    def parameters(self, names: Sequence[str]) -> list[plan.Parameter]:
        used: set[str] = set()
        for name in names:
            node = self.nodes[name]
            if isinstance(node, ir.TransformNode):
                used |= {ref.parts[0] for ref in node.parameters}
        return [
            plan.Parameter(name=p.name, type=p.type) for p in self.pipeline.params if p.name in used
        ]

    def add(self, step_id: str, kind: plan.StepKind, node: AnyNode, **fields: Any) -> None:
        fields["inputs"] = sorted(_unique(fields["inputs"]))
        notes = [
            note
            for output in fields.get("outputs", [])
            if output.connection is not None
            for note in rounding_notes(
                output.columns, self.profile.connections[output.connection].type
            )
        ]
        if notes:
            fields["notes"] = notes
        self.steps.append(
            {
                "id": step_id,
                "kind": kind,
                "node": node.name,
                **_retry(node, self.pipeline),
                **fields,
            }
        )

    def external(self, node: AnyNode) -> str | None:
        """A `table(...)` source's table, its parts as the engine names them, dotted."""
        call = node.from_ if isinstance(node, ir.SourceNode) else None
        if call is None or call.name != "table" or len(call.args) < 2:
            return None
        return ".".join(self.relation_parts(node.name, self.homes[node.name]))

    def node_infos(self, nodes: Mapping[str, AnyNode]) -> dict[str, plan.NodeInfo]:
        infos = {}
        for name, node in sorted(nodes.items()):
            if node.unparsed:
                continue
            infos[name] = plan.NodeInfo(
                kind=node.kind,
                materialization=self.kinds.get(name),
                connection=self.homes.get(name),
                step=self.main.get(name) if name not in self.inlined else None,
                inlined_into=self.inlined.get(name, []),
                external=self.external(node),
                internal=self.internal(node),
            )
        return infos

    def internal(self, node: AnyNode) -> bool:
        """Whether `node`'s table goes to the internal schema: a source or transform that
        builds a table or view, not marked `publish = true`."""
        if isinstance(node, ir.SinkNode) or node.publish or self.external(node) is not None:
            return False
        return self.kinds.get(node.name) != "ephemeral" and node.name in self.homes


def _aliases(tree: exp.Expr) -> set[str]:
    """The names a query gives CTEs and tables (lower case: engines compare them so), as the
    SQL pass recorded them for a user's query, else found now."""
    recorded = tree.meta.get(ALIASES)
    if recorded is not None:
        return set(recorded)
    return {alias.name.lower() for alias in tree.find_all(exp.TableAlias) if alias.name}


def _unique(items: Sequence[str] | Iterator[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _seconds(value: ir.Str | None) -> float | None:
    if value is None:
        return None
    duration = parse_duration(value.value)
    return duration.total_seconds() if duration is not None else None


def _retry(node: AnyNode, pipeline: ir.Pipeline) -> dict[str, Any]:
    return {
        "retries": node.retries if node.retries is not None else pipeline.retries,
        "retry_delay_s": _seconds(node.retry_delay or pipeline.retry_delay),
        "timeout_s": _seconds(node.timeout or pipeline.timeout),
    }


def _scalar(value: ir.Value | None) -> plan.JsonScalar:
    if isinstance(value, ir.Str | ir.Num | ir.Bool):
        return value.value
    if isinstance(value, ir.Ref):
        return value.dotted
    return None


# checks whose later arguments are no columns of the node: values, `node.column`
_FIRST_COLUMN_ONLY = frozenset({"accepted_values", "relationship"})
# keywords of a source call that are not reader options: the format, and how http fetches
_NOT_OPTIONS = frozenset({"url", "format", *(n for n, _ in vocabulary.FETCHING)})


def _source(call: ir.Call, columns: tuple[ir.Column, ...] | None) -> plan.Source:
    first = _scalar(call.args[0]) if call.args else None
    fetched: dict[str, Any] = {}
    if call.name == "http":  # one URL or several, maybe a JSON API
        every = extract.urls(call)
        first = every[0] if every else None
        headers = call.keyword("headers")
        fetched = {
            "urls": every if len(every) > 1 else [],
            "api": extract.api(call),
            "headers": extract.string_map(headers.value) if headers else {},
        }
    options = {k.name: _scalar(k.value) for k in call.keywords if k.name not in _NOT_OPTIONS}
    fmt = call.keyword("format")
    declared = None
    if columns is not None:
        declared = [plan.Column(name=c.name, type=c.type, not_null=c.not_null) for c in columns]
    return plan.Source(
        kind=call.name,  # type: ignore[arg-type]
        path=str(first) if first is not None else None,
        format=str(_scalar(fmt.value)) if fmt else (None if call.name == "http" else call.name),
        options=dict(sorted(options.items())),
        columns=declared,
        **fetched,
    )


def _renamed(query: str, spellings: Mapping[str, str], renderer: Renderer) -> str:
    """`query` with its columns renamed as `spellings` says."""
    q = renderer.quoted
    columns = ", ".join(f"{q((engine,))} AS {q((spec,))}" for engine, spec in spellings.items())
    return f"SELECT {columns}\nFROM (\n{query}\n) AS _spelled"


def _names(values: Sequence[ir.Value], spell: Callable[[str], str]) -> list[str]:
    return [spell(v.parts[0]) for v in values if isinstance(v, ir.Ref)]


def _names_columns(sink: plan.Sink, renderer: Renderer) -> bool:
    """Whether an export names its input's columns: as keys, or, for a file written from a
    connection that folds names, all of them (`_renamed`)."""
    folded_file = sink.kind != "table" and renderer.fold_quoted
    return bool(sink.key or sink.partition_by or sink.cluster_by or folded_file)


def _refs(call: ir.Call, keyword: str) -> Sequence[ir.Value]:
    """The columns a list argument names; `date(col)` names `col` (partitioned by day)."""
    given = call.keyword(keyword)
    items = given.value.items if given and isinstance(given.value, ir.ListValue) else ()
    return unwrap_dates(items)


def _sink(node: ir.SinkNode, call: ir.Call, spell: Callable[[str], str]) -> plan.Sink:
    layout = ("partition_by", "cluster_by")
    options = {k.name: _scalar(k.value) for k in call.keywords if k.name not in layout}
    first = call.args[0] if call.args else None
    table = call.args[1] if call.name == "table" and len(call.args) > 1 else None
    return plan.Sink(
        kind=call.name,  # type: ignore[arg-type]
        connection=first.dotted if isinstance(first, ir.Ref) else None,
        table=table.value if isinstance(table, ir.Str) else None,
        path=first.value if isinstance(first, ir.Str) else None,
        mode=node.mode.dotted if node.mode else "replace",  # type: ignore[arg-type]
        key=_names(node.key, spell),
        partition_by=_names(_refs(call, "partition_by"), spell),
        cluster_by=_names(_refs(call, "cluster_by"), spell),
        options=dict(sorted(options.items())),
    )


def _incremental(
    node: ir.TransformNode,
    renderer: Renderer,
    parts: tuple[str, ...],
    query: str,
    spell: Callable[[str], str],
) -> plan.Incremental:
    key = [spell(k.dotted) for k in node.unique_key]
    time_column = spell(node.time_column.dotted) if node.time_column else None
    increment = renderer.incremental(parts, query, time_column, key)
    return plan.Incremental(
        strategy="merge" if key else "delete_insert",
        unique_key=key,
        time_column=time_column,
        lookback_s=_seconds(node.lookback),
        watermark=increment.watermark,
        new_rows=increment.new_rows,
        duplicates=increment.duplicates,
        update=increment.update,
    )


def _pipeline_info(spec: ir.Spec, pipeline: ir.Pipeline) -> plan.PipelineInfo:
    return plan.PipelineInfo(
        name=pipeline.name,
        description=pipeline.description,
        spec=_relative(spec.file, spec.root),
        dialect=pipeline.dialect,
        schedule=pipeline.schedule.value if pipeline.schedule else None,
        catchup=pipeline.catchup.dotted if pipeline.catchup else None,
        internal_schema=(
            pipeline.internal_schema.value if pipeline.internal_schema else plan.INTERNAL_SCHEMA
        ),
    )


def _relative(file: str, root: str) -> str:
    try:
        return Path(file).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return Path(file).name


def _param(param: ir.Param) -> plan.PipelineParam:
    return plan.PipelineParam(name=param.name, type=param.type, default=_scalar(param.default))


def file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def check_ids(node: str, expectations: Sequence[ir.Call]) -> list[str]:
    """The step ids of a node's checks, in the order its `expect` block writes them."""
    named: dict[str, int] = {}
    return [_check_id(node, call, named) for call in expectations]


def _check_id(node: str, call: ir.Call, named: dict[str, int]) -> str:
    """A check step is named after its expectation as the spec writes it (`on_fail` left
    out): `clean_trips.not_null(VendorID)`; the same check written twice gets `#2`."""
    kept = tuple(k for k in call.keywords if k.name != "on_fail")
    base = f"{node}.{checks.describe(call.model_copy(update={'keywords': kept}))}"
    named[base] = named.get(base, 0) + 1
    return base if named[base] == 1 else f"{base}#{named[base]}"
