"""The planner's third pass: the nodes, in topological order, become steps.

A file source becomes a `load`, a Python node a `python` step, a SQL transform that is not
ephemeral a `sql` step, every `expect` entry a `check`, a sink an `export`, and a
`transfer` is added wherever rows cross connections or enter or leave Python. An ephemeral
transform is no step: its query is fused into each query that reads it, as a CTE
(`queries.py`). Steps that read a node wait for the node's step and for its `on_fail =
error` checks, so a failing check stops everything downstream.

Steps are built as the fields of a `plan.Step` of their kind; they get their fingerprints,
and become `Step`s, once all are built (`fingerprint.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flowc.compiler import ir, plan
from flowc.compiler.codegen.generate import Parts, Problem, Renderer
from flowc.compiler.planning import expectations, payloads
from flowc.compiler.planning.check_steps import check_id, check_payload
from flowc.compiler.planning.columns import Columns
from flowc.compiler.planning.numbers import rounding_notes
from flowc.compiler.planning.placement import AnyNode, Placed
from flowc.compiler.planning.queries import Queries, unique
from flowc.project import config
from sqlglot import exp


class StepBuilder:
    def __init__(
        self,
        placed: Placed,
        trees: Mapping[str, exp.Query],
        order: Sequence[str],
        profile: config.Profile,
        *,
        consume: bool,
        known: set[str] | None,
    ) -> None:
        self.placed, self.profile = placed, profile
        self.pipeline, self.nodes, self.homes = placed.pipeline, placed.nodes, placed.homes
        self.steps: list[dict[str, Any]] = []
        self.ready: dict[str, list[str]] = {}  # node -> steps after which it can be read
        self.main: dict[str, str] = {}  # node -> the step that makes it
        self.transfers: dict[tuple[str, str], str] = {}
        self.inlined: dict[str, list[str]] = {}  # ephemeral node -> the steps it is fused into
        self.problems: list[Problem] = []
        self.queries = Queries(
            placed, trees, order, profile, consume=consume, ready=self.ready, transfer=self.transfer
        )
        self.columns = Columns(placed, self.queries.renderer, known)

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

    # --- the kinds of step

    def source(self, node: ir.SourceNode) -> None:
        home = self.homes[node.name]
        if node.python is not None:
            self.python(node, node.python, [])
            return
        call = node.from_
        renderer = self.queries.renderer(home)
        if call is None or call.name == "table":  # read where it is: no step
            self.ready[node.name] = []
            return
        columns = self.columns.of(node, home)
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
            outputs=[self.columns.relation(node.name, home, renderer.name(node.name))],
            sql=sql,
            materialization="table",
            source=payloads.source(call, node.columns),
        )
        self.finish(node.name, node.name)

    def transform(self, node: ir.TransformNode) -> None:
        if node.python is not None:
            self.python(node, node.python, [e.upstream for e in self.placed.graph[node.name]])
            return
        kind = self.placed.kinds[node.name]
        if node.name not in self.queries.trees or kind == "ephemeral":
            self.inlined.setdefault(node.name, [])
            return
        home = self.homes[node.name]
        renderer = self.queries.renderer(home)
        reads = [e.upstream for e in self.placed.graph[node.name]]
        query = self.queries.reading_query(self.queries.tree(node.name), reads, home, node.name)
        text = self.queries.render(node.name, query, home)
        parts = (renderer.name(node.name),)
        sql = renderer.create(parts, text, view=kind == "view")
        for name in query.fused:
            self.inlined.setdefault(name, []).append(node.name)
        incremental = None
        if kind == "incremental":  # after `create`: the renderer reports problems in order
            speller = self.columns.speller(node.name, home)
            incremental = payloads.incremental(node, renderer, parts, text, speller)
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
            incremental=incremental,
            resolve_at_run=self.columns.late(reads),
        )
        self.finish(node.name, node.name)

    def python(self, node: AnyNode, entry: ir.PythonEntry, inputs: list[str]) -> None:
        """A Python step, the transfers of its inputs into it and of its output onto its
        connection (where it is read from)."""
        deps = [self.transfer_into_python(name, node.name) for name in inputs]
        step_id = f"{node.name}.py"
        self.add(
            step_id,
            "python",
            node,
            inputs=deps,
            outputs=[self.columns.relation(node.name, None, None)],
            python=payloads.python_entry(entry, self.placed.spec.root),
            isolate=self.pipeline.isolate if node.isolate is None else node.isolate,
        )
        self.main[node.name] = step_id
        self.ready[node.name] = [step_id]
        landed = self.transfer(node.name, self.homes[node.name])
        self.steps[-1]["materialization"] = "table"
        self.finish(node.name, landed)

    def transfer(self, name: str, connection: str) -> str:
        """A step copying node `name` onto `connection`; its id."""
        return self._transfer(name, connection, None)

    def transfer_into_python(self, name: str, reader: str) -> str:
        """A step handing node `name`'s rows to Python step `reader`; its id."""
        return self._transfer(name, None, reader)

    def _transfer(self, name: str, connection: str | None, reader: str | None) -> str:
        key = (name, connection or f"python:{reader}")
        if key in self.transfers:
            return self.transfers[key]
        step_id = f"{name}.to.{connection}" if connection else f"{name}.into.{reader}"
        home = self.homes[name]
        sql: list[str] | None = None
        deps = list(self.ready.get(name, []))
        fused: list[str] = []
        source: str | None = home
        if self.main.get(name, "").endswith(".py"):
            source = None  # rows come out of the node's Python step
        if source is not None:
            select = self.queries.renderer(home).select_all((name,))
            query = self.queries.reading_query(select, [name], home)
            sql = [self.queries.render(name, query, home)]
            deps, fused = query.deps, query.fused
        table = self.queries.renderer(connection).name(name) if connection else None
        self.add(
            step_id,
            "transfer",
            self.nodes[name],
            connection=source or connection,  # where its SQL reads (else where it writes)
            inputs=deps,
            outputs=[self.columns.relation(name, connection, table)],
            sql=sql,
            fused=fused,
            transfer=plan.Transfer(
                node=name, from_connection=source, to_connection=connection, table=table
            ),
        )
        self.transfers[key] = step_id
        return step_id

    def sink(self, node: ir.SinkNode) -> None:
        call = node.to
        upstream = self.placed.graph[node.name]
        if call is None or not upstream:
            return
        connection = self.homes[node.name]
        renderer = self.queries.renderer(connection)
        name = upstream[0].upstream
        check_deps = self.checks(node, name, connection)
        select = renderer.select_all((name,))
        query = self.queries.reading_query(select, [name], connection)
        text = self.queries.render(name, query, connection)
        sink = payloads.sink(node, call, self.columns.speller(name, connection))
        sql = [text]
        if isinstance(sink, plan.TableSink):
            parts = renderer.parts(sink.table)
            if len(parts) == 1:
                parts = self.own_schema(connection) + parts
            sql = self.export_sql(node, sink, text, renderer, parts)
            # for the runtime, as the engine names it, parts plain: `ny_taxi.trips`, `main.a b`
            sink = sink.model_copy(update={"table": ".".join(parts)})
        else:
            spellings = self.columns.spellings(self.nodes[name], renderer)
            if spellings:
                sql = [payloads.renamed(text, spellings, renderer)]
                partition_by = [spellings.get(c, c) for c in sink.partition_by]
                sink = sink.model_copy(update={"partition_by": partition_by})
        late = self.columns.late([name]) if payloads.names_columns(sink, renderer) else []
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
            resolve_at_run=late,
        )
        self.main[node.name] = node.name

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
        self, node: ir.SinkNode, sink: plan.TableSink, text: str, renderer: Renderer, parts: Parts
    ) -> list[str]:
        own = self.own_schema(self.homes[node.name])
        # the connection's own schema exists (and creating it may be refused even so)
        statements = [] if own and parts[:-1] == own else renderer.create_schema(parts)
        columns = self.columns.of(node, self.homes[node.name])
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
            built = expectations.check_query(expectation, relation, self.pipeline.dialect)
            if built is None:
                continue
            tree, others, values = built
            reads = [relation, *others]
            self.columns.resolve(tree, reads, connection)
            query = self.queries.reading_query(tree, reads, connection, binds=bool(values))
            step_id = check_id(node.name, expectation.call, named)
            self.add(
                step_id,
                "check",
                node,
                connection=connection,
                inputs=query.deps,
                outputs=[],
                sql=[self.queries.render(relation, query, connection)],
                fused=query.fused,
                check=check_payload(node.name, expectation),
                resolve_at_run=self.columns.late(reads),
                values=[plan.BoundValue(name=n, value=v) for n, v in values],
            )
            if expectation.on_fail == "error":
                blocking.append(step_id)
        if not isinstance(node, ir.SinkNode):
            self.ready[node.name] = [*self.ready.get(node.name, []), *blocking]
        return blocking

    # --- pieces of steps

    def finish(self, name: str, step_id: str) -> None:
        self.main[name] = step_id
        self.ready[name] = [step_id]

    def parameters(self, names: Sequence[str]) -> list[plan.Parameter]:
        """The pipeline parameters the queries of nodes `names` bind."""
        used: set[str] = set()
        for name in names:
            node = self.nodes[name]
            if isinstance(node, ir.TransformNode):
                used |= {ref.parts[0] for ref in node.parameters}
        params = self.pipeline.params
        return [plan.Parameter(name=p.name, type=p.type) for p in params if p.name in used]

    def add(self, step_id: str, kind: plan.StepKind, node: AnyNode, **fields: Any) -> None:
        """A step of `kind`, its `fields` those of its kind's model (but the fingerprint)."""
        fields["inputs"] = sorted(unique(fields["inputs"]))
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
                **payloads.retry(node, self.pipeline),
                **fields,
            }
        )
