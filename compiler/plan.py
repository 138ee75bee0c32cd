"""The execution plan: inert, versioned data that a runtime executes without the spec.

A `Plan` is what `flowc compile` writes as `plan.json` (docs/plan.md describes every field;
docs/plan.schema.json is generated from these models). Steps are listed in an order in which
they can run (every step after its `inputs`). Connections are named, with their type only:
credentials and other settings stay in the profile, where the runtime reads them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from flowc.project.engines import EngineName
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
    model_validator,
)

# 2: each kind of step has its own fields (a discriminated union on `kind`)
PLAN_VERSION: Literal[2] = 2

Materialization = Literal["table", "view", "incremental", "ephemeral"]
JsonScalar = str | int | float | bool | None


class Model(BaseModel):
    """Fields are declared in alphabetical order: pydantic writes JSON in declaration order,
    and plan.json's keys are sorted (a test checks it). A field holding its default is left
    out of plan.json."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Sorted(Model):
    """A model whose kinds add fields to a common base: the base's are declared first, so
    its keys are sorted when written rather than by declaration."""

    @model_serializer(mode="wrap")
    def _sorted_keys(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return dict(sorted(handler(self).items()))


class Column(Model):
    """A column as the engine of its connection names it, with its declared or inferred type
    (`unknown` when flowc cannot tell offline)."""

    name: str
    not_null: bool = False
    type: str


class Relation(Model):
    """Data a step produces: a table or view `name` (dotted when qualified) on `connection`,
    or, with `connection` null, batches held by the runtime for a Python step. `columns` are
    given where the runtime creates or checks them (loads, Python outputs, transfers); a SQL
    step's columns are what its query makes."""

    columns: list[Column] | None = None
    connection: str | None = None
    name: str | None = None
    node: str


class Parameter(Model):
    """A pipeline parameter a step's SQL binds at run time (never pasted into the text)."""

    name: str
    type: str


class BoundValue(Model):
    """A literal value a step's SQL binds as the parameter `name` (its placeholder written as
    the connection's `placeholder` says): the value stays data, never SQL text."""

    name: str
    value: JsonScalar


class PipelineParam(Model):
    default: JsonScalar = None
    name: str
    type: str


class Connection(Model):
    dialect: EngineName
    name: str
    placeholder: str  # how a parameter `name` is written in this dialect's SQL
    type: EngineName


class PythonEntry(Model):
    function: str
    path: str  # relative to the project root
    sha256: str  # of the file's content


class Api(Model):
    """How an `http` source reads a JSON API: each body one JSON document, its rows at the
    dotted path `records`, further pages found as `paginate` says (None: one page)."""

    cursor: str | None = None  # the path of the next page's cursor in the body
    cursor_param: str = "cursor"
    next: str | None = None  # the path of the next page's URL in the body
    offset_param: str = "offset"
    page_param: str = "page"
    page_size: int | None = None
    paginate: Literal["next", "link", "cursor", "offset", "page"] | None = None
    records: str
    size_param: str = "limit"


class Source(Model):
    """Where a `load` step reads (the source node's `from`)."""

    api: Api | None = None  # http: a JSON API
    columns: list[Column] | None = None  # declared, with the spec's type names
    format: str | None = None
    headers: dict[str, str] = {}  # http: request headers, `${VAR}`s unexpanded
    kind: Literal["csv", "parquet", "json", "http"]  # a `table(...)` source is read in place
    options: dict[str, JsonScalar] = {}
    path: str | None = None  # file, glob or URL (http: the first URL)
    urls: list[str] = []  # http with several URLs: all, in order; `{param}` filled at run time


class SinkBase(Sorted):
    """Where an `export` step writes (the sink node's `to`): a table or files."""

    key: list[str] = []
    mode: Literal["replace", "append", "merge"] = "replace"
    options: dict[str, JsonScalar] = {}
    partition_by: list[str] = []


class TableSink(SinkBase):
    cluster_by: list[str] = []  # on BigQuery
    connection: str
    kind: Literal["table"]
    table: str  # as the engine names it, dotted when qualified: `ny_taxi.trips`


class FileSink(SinkBase):
    kind: Literal["parquet", "csv"]
    path: str  # relative to the project root


Sink = Annotated[TableSink | FileSink, Field(discriminator="kind")]


class Transfer(Model):
    """A `transfer` copies `node`'s rows from one connection (null: a Python step's output)
    to another (null: into a Python step); the step's `sql` is the query that reads them."""

    from_connection: str | None = None
    node: str
    table: str | None = None  # the table created on `to_connection`
    to_connection: str | None = None


class Check(Model):
    """A `check` step's test: its `sql` returns no row when the data passes; otherwise up to
    5 sample rows, each with `_failures`, the number of failing rows (or groups)."""

    check: str  # not_null, unique, accepted_values, row_count, check, relationship
    columns: list[str] = []  # the columns it tests, shown first in its sample rows
    description: str  # the check as written in the spec
    line: int | None = None  # of the spec file, where the check is written
    node: str
    on_fail: Literal["error", "warn"]


SINCE = "flowc_since"  # the parameter an incremental update binds: where its new rows start


class Incremental(Model):
    """How an `incremental` transform runs once its table exists (the step's `sql` builds it
    whole: the first run, and `flowc run --full-refresh`). `watermark` reads the newest
    `time_column` value; less `lookback_s` it is bound as `flowc_since`; `new_rows` keeps the
    new rows in a temporary table (DuckDB, Postgres: so the query runs once; empty on
    BigQuery, whose statements each run the query); `duplicates` finds a `unique_key` repeated
    among the new rows (an error); `update` deletes the rows the new ones supersede — those of
    the same key (`merge`), or every row from the earliest new row's time on
    (`delete_insert`) — inserts the new rows, and drops the temporary table."""

    duplicates: str | None = None
    lookback_s: float | None = None
    new_rows: list[str] = []
    strategy: Literal["merge", "delete_insert"]
    time_column: str | None = None
    unique_key: list[str] = []
    update: list[str]
    watermark: str | None = None


class StepBase(Sorted):
    """What every step has, whatever its kind."""

    fingerprint: str
    id: str
    inputs: list[str]  # ids of the steps that must succeed first
    node: str
    notes: list[str] = []  # what the step's engine changes of the declared data (rounding)
    outputs: list[Relation]
    retries: int = 0
    retry_delay_s: float | None = None
    timeout_s: float | None = None


class LoadStep(StepBase):
    """Reads a file or an API (`source`) into the table of its one output."""

    connection: str
    kind: Literal["load"]
    materialization: Literal["table"]
    source: Source
    # the table with the declared columns, created before the rows are appended by name;
    # None: the source declares no columns, and the table takes the file's
    sql: list[str] | None = None

    @model_validator(mode="after")
    def _one_table(self) -> LoadStep:
        if len(self.outputs) != 1 or self.outputs[0].name is None:
            raise ValueError("a load step has one output, the table it loads")
        return self

    @property
    def table(self) -> str:
        """The table it loads: its one output's."""
        name = self.outputs[0].name
        assert name is not None, "checked when the step was made (`_one_table`)"
        return name


class SqlStep(StepBase):
    """Builds a SQL transform's table or view with `sql`; an incremental one's later runs
    add rows as `incremental` says."""

    connection: str
    fused: list[str] = []  # ephemeral transforms inlined into this step's SQL as CTEs
    incremental: Incremental | None = None  # given exactly when materialization is incremental
    kind: Literal["sql"]
    materialization: Literal["table", "view", "incremental"]
    parameters: list[Parameter] = []
    resolve_at_run: list[str] = []
    sql: list[str]  # statements in the connection's dialect, run in order

    @model_validator(mode="after")
    def _incremental_given(self) -> SqlStep:
        if (self.materialization == "incremental") != (self.incremental is not None):
            raise ValueError("`incremental` is given exactly when materialization is incremental")
        return self


class PythonStep(StepBase):
    """Calls a Python block (`python`) in the runtime's process, or in a worker process with
    `isolate`; its output is batches the runtime holds for the transfer that lands them."""

    connection: None = None  # no connection: it runs in the runtime's Python process
    isolate: bool = False
    kind: Literal["python"]
    python: PythonEntry


class CheckStep(StepBase):
    """Tests an expectation (`check`): its last statement returns no row when the data
    passes."""

    check: Check
    connection: str
    fused: list[str] = []
    kind: Literal["check"]
    resolve_at_run: list[str] = []
    sql: list[str]
    values: list[BoundValue] = []  # literal values the SQL binds (`accepted_values` strings)


class TransferStep(StepBase):
    """Copies a node's rows between connections or into and out of Python (`transfer`)."""

    connection: str  # where its SQL reads; rows out of Python: where it writes
    fused: list[str] = []
    kind: Literal["transfer"]
    materialization: Literal["table"] | None = None  # "table": it lands a Python step's rows
    # the query that reads the rows: given exactly when they come from a connection
    sql: list[str] | None = None
    transfer: Transfer

    @model_validator(mode="after")
    def _consistent(self) -> TransferStep:
        if (self.transfer.from_connection is None) != (self.sql is None):
            raise ValueError("a transfer has a query exactly when it reads from a connection")
        if (self.transfer.to_connection is None) != (self.transfer.table is None):
            raise ValueError("a transfer names a table exactly when it writes to a connection")
        return self


class ExportStep(StepBase):
    """Writes a sink: `sql` builds its table, or its last statement is the query whose rows
    are written to the file."""

    connection: str
    fused: list[str] = []
    kind: Literal["export"]
    resolve_at_run: list[str] = []
    sink: Sink
    sql: list[str]


# A step of the plan, told apart by its `kind`: each kind has the fields it needs, required
# where the runtime needs them, so a plan without them is refused when it is read.
Step = Annotated[
    LoadStep | SqlStep | PythonStep | CheckStep | TransferStep | ExportStep,
    Field(discriminator="kind"),
]
StepKind = Literal["load", "sql", "python", "check", "transfer", "export"]
STEP = TypeAdapter[Step](Step)  # validates one step's fields, of any kind
# the kinds whose SQL reads nodes: ephemeral transforms may be fused into it
Fusing = SqlStep | CheckStep | TransferStep | ExportStep
# The kinds with `resolve_at_run`: the nodes whose columns only the run knows (a source or
# Python block without `columns`) among those its SQL reads. The step's SQL (and a sink's
# column names) is written again, by the compiler, once their tables exist, so that every
# column is spelled as its definition (docs/engines.md).
Resolving = SqlStep | CheckStep | ExportStep


class NodeInfo(Model):
    """Where a node of the spec went: its kind, materialization and connection, and the step
    that produces it (for an ephemeral transform: the steps it is inlined into)."""

    connection: str | None = None
    external: str | None = None  # a `table(conn, "schema.table")` source: the table it reads
    inlined_into: list[str] = []
    # its table lives in the pipeline's internal schema, not where users read (not published)
    internal: bool = False
    kind: Literal["source", "transform", "sink"]
    materialization: Materialization | None = None
    step: str | None = None


INTERNAL_SCHEMA = "flowc_internal"


class PipelineInfo(Model):
    catchup: str | None = None
    description: str | None = None
    dialect: str  # the dialect its SQL is written in
    # the schema (BigQuery: dataset) of each connection where unpublished nodes' tables live
    internal_schema: str = INTERNAL_SCHEMA
    name: str
    schedule: str | None = None
    spec: str  # path of the .flow file relative to the project root


class Plan(Model):
    connections: list[Connection]
    nodes: dict[str, NodeInfo]
    params: list[PipelineParam]
    pipeline: PipelineInfo
    plan_version: Literal[2]
    profile: str
    project: str
    steps: list[Step]

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)


def to_json(plan: Plan) -> str:
    """`plan.json`'s text: sorted keys, two-space indent, defaults left out, a trailing
    newline; deterministic."""
    return plan.model_dump_json(indent=2, exclude_defaults=True) + "\n"


def json_schema() -> str:
    """docs/plan.schema.json's text, generated from the models."""

    schema: dict[str, Any] = Plan.model_json_schema()
    schema["$id"] = "https://flowc.dev/plan.schema.json"
    schema["title"] = f"flowc plan, version {PLAN_VERSION}"
    return json.dumps(schema, sort_keys=True, indent=2) + "\n"
