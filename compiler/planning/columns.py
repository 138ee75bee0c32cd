"""How the engine of a connection names a node's columns, and which columns only a run knows.

A step's outputs list their columns as the engine names them; a sink's keys and a file's
column names follow the spec's spelling back from the engine's; a step that reads a node
whose columns nobody declared is planned again at run time (`late`). All of it asks one
question, the one this module answers: what a node's columns are called where.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flowc.compiler import ir, plan
from flowc.compiler.analysis import schema
from flowc.compiler.analysis.identifiers import declared_key
from flowc.compiler.codegen.generate import Renderer
from flowc.compiler.planning.placement import AnyNode, Placed, is_sql
from sqlglot import exp


class Columns:
    def __init__(
        self, placed: Placed, renderer: Callable[[str], Renderer], known: set[str] | None
    ) -> None:
        self.placed = placed
        self.renderer = renderer  # of a connection
        self.known = known  # the nodes whose columns were inferred (None: every node's)
        self.dialect = placed.pipeline.dialect

    def of(self, node: AnyNode, connection: str) -> list[plan.Column] | None:
        """`node`'s columns as the engine of `connection` names them (None: unknown)."""
        renderer = self.renderer(connection)
        assert self.known is None or node.name in self.known, f"columns of {node.name} unknown"
        if node.output is None:
            return None
        if isinstance(node, ir.SinkNode):
            upstream = self.placed.graph[node.name]
            if not upstream:
                return None
            return self.of(self.placed.nodes[upstream[0].upstream], connection)
        named = schema.engine_columns(node, self.dialect)
        spell = renderer.output_name if is_sql(node) else renderer.name
        return [plan.Column(name=spell(c.name), type=c.type, not_null=c.not_null) for c in named]

    def relation(self, name: str, connection: str | None, table: str | None) -> plan.Relation:
        """What a step makes of node `name`: `table` on `connection`, or (connection None)
        batches held for a Python step, its columns spelled as the spec spells them."""
        node = self.placed.nodes[name]
        columns = self.of(node, connection or self.placed.homes[name])
        if connection is None and columns is not None:  # into Python: the spec's spelling
            named = schema.engine_columns(node, self.dialect)
            if len(named) == len(columns):
                pairs = zip(columns, named, strict=True)
                columns = [c.model_copy(update={"name": n.name}) for c, n in pairs]
        return plan.Relation(node=name, connection=connection, name=table, columns=columns)

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
            node = self.placed.nodes[name]
            if name in seen or node.output is not None:
                continue
            seen.add(name)
            if is_sql(node):
                todo += [edge.upstream for edge in self.placed.graph[name]]
            else:
                found.add(name)
        return sorted(found)

    def resolve(self, tree: exp.Query, reads: Sequence[str], connection: str) -> None:
        """Mark the column references of a query flowc wrote (a check) with the columns they
        name, as the schema pass marks a user's query, where the target respells them."""
        if not self.renderer(connection).respell:
            return
        nodes = self.placed.nodes
        upstream = {
            name: schema.engine_columns(nodes[name], self.dialect)
            if nodes[name].output is not None
            else None
            for name in reads
        }
        schema.node_output(tree, upstream, self.dialect)

    def speller(self, name: str, connection: str) -> Callable[[str], str]:
        """How the engine names a column of node `name` that the spec names as written
        (`partition_by = [Vendorid]` is the column `VendorID`)."""
        renderer = self.renderer(connection)
        node = self.placed.nodes[name]
        fallback = renderer.output_name if is_sql(node) else renderer.name
        if node.output is None:
            return fallback
        columns = self.of(node, connection) or []
        dialect = self.dialect
        spelled = {declared_key(c.name, dialect): c.name for c in columns}
        return lambda written: spelled.get(declared_key(written, dialect)) or fallback(written)

    def spellings(self, node: AnyNode, renderer: Renderer) -> dict[str, str]:
        """Engine name -> the spec's spelling of `node`'s columns, where the engine folds
        them (Postgres: `vendorid` is `VendorID`); empty when every name is the spec's. A
        file users read gets the spec's names, whatever engine wrote it."""
        if node.output is None or not renderer.fold_quoted:
            return {}
        spell = renderer.output_name if is_sql(node) else renderer.name
        named = schema.engine_columns(node, self.dialect)
        found = {spell(c.name): c.name for c in named}
        return found if any(k != v for k, v in found.items()) else {}
