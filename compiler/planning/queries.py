"""How a query on some connection reads the nodes it names.

Every step with SQL reads nodes: the planner writes each name as the engine of the step's
connection names it, fuses the ephemeral transforms the query reads in front of it as CTEs
(named so as not to clash with the query's own), waits for the steps that make what it
reads, and, where a node lives on another connection, for a transfer that copies it there
(the step builder makes it: `transfer`). The renderers that write SQL for each engine, and
the column types the dialect rewrites need, are kept here for the same reason: they are
what turning a spec's query into an engine's query takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from flowc.compiler import ir, plan
from flowc.compiler.analysis.sql_parse import ALIASES
from flowc.compiler.codegen import annotate
from flowc.compiler.codegen.generate import Parts, Renderer
from flowc.compiler.planning.placement import Placed, is_sql
from flowc.project import config
from flowc.project.engines import ENGINES
from sqlglot import exp

# makes a step that copies node `name` onto `connection`; its id
Transferring = Callable[[str, str], str]


@dataclass
class Read:
    """How a query on some connection reads a node: the name to write, the ephemeral
    transforms to fuse in front of it, and the steps to wait for."""

    parts: Parts
    fused: list[str]
    deps: list[str]


@dataclass
class Prepared:
    """A query ready to run on a connection, with what it fused in and the steps it waits
    for; `owners`: the node each CTE it fused comes from (problems are placed in its SQL)."""

    tree: exp.Query
    fused: list[str]
    deps: list[str]
    owners: dict[int, str] = field(default_factory=dict)


class Queries:
    def __init__(
        self,
        placed: Placed,
        trees: Mapping[str, exp.Query],
        order: Sequence[str],
        profile: config.Profile,
        *,
        consume: bool,
        ready: Mapping[str, list[str]],
        transfer: Transferring,
    ) -> None:
        self.placed, self.trees, self.profile, self.consume = placed, trees, profile, consume
        self.ready = ready  # node -> steps after which it can be read (the builder's)
        self.transfer = transfer
        pipeline = placed.pipeline
        self.position = {name: i for i, name in enumerate(order)}
        self.params = {p.name: p.type for p in pipeline.params}
        self.renderers: dict[str, Renderer] = {}
        self.used_connections: set[str] = set()
        self.taken: set[str] = set()
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
                self.placed.pipeline.dialect, found.type, self.params, fold_names=fold
            )
        return self.renderers[key]

    def connections(self) -> list[plan.Connection]:
        """The connections the steps use, as the plan lists them."""
        found = []
        for name in sorted(self.used_connections):
            kind = self.profile.connections[name].type
            placeholder = ENGINES[kind].parameter("name")
            found.append(
                plan.Connection(name=name, type=kind, dialect=kind, placeholder=placeholder)
            )
        return found

    # --- reading nodes

    def read(self, name: str, connection: str) -> Read:
        """How a query on `connection` reads node `name` (adding a transfer when needed)."""
        home = self.placed.homes[name]
        if home == connection and self.placed.kinds[name] == "ephemeral":
            inner = [self.read(e.upstream, connection) for e in self.placed.graph[name]]
            fused = self.merged([*(f for r in inner for f in r.fused), name])
            deps = [d for r in inner for d in r.deps] + self.ready.get(name, [])
            return Read((self.renderer(connection).name(name),), fused, unique(deps))
        if home == connection:
            return Read(self.relation_parts(name, connection), [], list(self.ready.get(name, [])))
        return Read((self.renderer(connection).name(name),), [], [self.transfer(name, connection)])

    def relation_parts(self, name: str, connection: str) -> Parts:
        """The name of node `name`'s table as a query on `connection` writes it (an external
        `table(...)` source: the table it names)."""
        node = self.placed.nodes[name]
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

    def merged(self, names: Iterable[str]) -> list[str]:
        """`names` once each, in the spec's order."""
        return sorted(dict.fromkeys(names), key=self.position.__getitem__)

    def has_params(self, name: str) -> bool:
        node = self.placed.nodes[name]
        return isinstance(node, ir.TransformNode) and bool(node.parameters)

    def reading_query(
        self,
        tree: exp.Query,
        reads: Sequence[str],
        connection: str,
        node: str = "",
        *,
        binds: bool = False,
    ) -> Prepared:
        """`tree` (naming nodes by their names) prepared to run on `connection`: node names
        resolved, the ephemeral transforms it reads fused in front as CTEs; `binds`: the tree
        has placeholders of its own (a check's bound values)."""
        renderer = self.renderer(connection)
        found = {name: self.read(name, connection) for name in reads}
        fused = self.merged(f for r in found.values() for f in r.fused)
        deps = unique(d for r in found.values() for d in r.deps)
        named = self.cte_names(tree, fused, renderer)
        refs = {name: named.get(name) or r.parts for name, r in found.items()}
        ctes = [(named[name][0], self.fused_query(name, named, connection)) for name in fused]
        has_params = binds or (self.has_params(node) if node else False)
        schemas = self.schemas(reads, renderer)
        prepared = renderer.prepare(tree, refs, node, has_params=has_params, schemas=schemas)
        query = renderer.fuse(prepared, ctes)
        with_ = query.args.get("with_")
        owners: dict[int, str] = {}
        for (name, _), cte in zip(ctes, with_.expressions if with_ else [], strict=False):
            owners[id(cte)] = name
        return Prepared(query, fused, deps, owners)

    def fused_query(self, name: str, named: Mapping[str, Parts], connection: str) -> exp.Query:
        """The query of ephemeral transform `name`, prepared to be a CTE on `connection`."""
        renderer = self.renderer(connection)
        upstream = [e.upstream for e in self.placed.graph[name]]
        inner = {u: named.get(u) or self.read(u, connection).parts for u in upstream}
        return renderer.prepare(
            self.tree(name),
            inner,
            name,
            has_params=self.has_params(name),
            schemas=self.schemas(upstream, renderer),
        )

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

    def render(self, name: str, query: Prepared, connection: str) -> str:
        """The text of `query` on `connection`; problems are positioned in `name`'s SQL."""
        return self.renderer(connection).query(name, query.tree, query.owners)

    # --- types, for the dialect rewrites

    def schemas(self, names: Sequence[str], renderer: Renderer) -> annotate.Schemas:
        """The typed columns of the nodes a query on `renderer`'s engine reads (none where
        the query needs no rewrite: it runs in the spec's own dialect)."""
        if renderer.target == self.placed.pipeline.dialect:
            return {}
        return {name: self.output_types(name) for name in names}

    def output_types(self, name: str) -> list[tuple[str, str]]:
        """(name, type) of node `name`'s columns: a query's worked out from its tree (as
        written) and its inputs' types; any other node's as declared or loaded."""
        if name not in self.types:
            node = self.placed.nodes[name]
            if is_sql(node) and name in self.trees and name not in self.taken:
                graph = self.placed.graph
                upstream = {e.upstream: self.output_types(e.upstream) for e in graph[name]}
                dialect = self.placed.pipeline.dialect
                found = annotate.output_types(self.trees[name], upstream, dialect)
            else:
                found = [(c.name, c.type) for c in node.output or ()]
            self.types[name] = found
        return self.types[name]


def _aliases(tree: exp.Expr) -> set[str]:
    """The names a query gives CTEs and tables (lower case: engines compare them so), as the
    SQL pass recorded them for a user's query, else found now."""
    recorded = tree.meta.get(ALIASES)
    if recorded is not None:
        return set(recorded)
    return {alias.name.lower() for alias in tree.find_all(exp.TableAlias) if alias.name}


def unique(items: Iterable[str]) -> list[str]:
    """`items` once each, in their order."""
    return list(dict.fromkeys(items))
