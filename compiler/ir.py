"""The intermediate representation: pydantic models, every one carrying its span.

Two layers live here. The *syntax* layer (`Document`, `Block`, `Attribute`, values) is what
`lower` builds from the parse tree, generic over block kinds. The *semantic* layer (`Spec`,
`Pipeline`, `SourceNode`, `TransformNode`, `SinkNode`) is what the names pass binds it to;
later passes return copies of it with edges and schemas filled in.
"""

from __future__ import annotations

from typing import Annotated, Literal

from flowc.project.spans import Span
from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- values ---------------------------------------------------------------------------------


class Segment(Model):
    """Offset `offset` of a string's value is at `line`:`col` of the file; later characters
    follow on the same line until the next segment."""

    offset: int
    line: int
    col: int


class Str(Model):
    kind: Literal["string"] = "string"
    value: str
    raw: bool = False
    segments: tuple[Segment, ...] = ()
    span: Span


class Num(Model):
    kind: Literal["number"] = "number"
    value: int | float
    text: str
    span: Span


class Bool(Model):
    kind: Literal["boolean"] = "boolean"
    value: bool
    span: Span


class Null(Model):
    kind: Literal["null"] = "null"
    span: Span


class Ref(Model):
    """An identifier used as a value: a node, a connection, a column or an enum word."""

    kind: Literal["reference"] = "reference"
    parts: tuple[str, ...]
    span: Span

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


class ListValue(Model):
    kind: Literal["list"] = "list"
    items: tuple[Value, ...]
    span: Span


class MapEntry(Model):
    key: str
    key_span: Span
    value: Value


class MapValue(Model):
    kind: Literal["map"] = "map"
    entries: tuple[MapEntry, ...]
    span: Span


class Keyword(Model):
    name: str
    name_span: Span
    value: Value


class Call(Model):
    kind: Literal["call"] = "call"
    name: str
    name_span: Span
    args: tuple[Value, ...]
    keywords: tuple[Keyword, ...]
    span: Span

    def keyword(self, name: str) -> Keyword | None:
        return next((k for k in self.keywords if k.name == name), None)


Value = Annotated[
    Str | Num | Bool | Null | Ref | ListValue | MapValue | Call,
    Field(discriminator="kind"),
]


def describe(value: Value) -> str:
    """How a value is named in messages: `a string`, `a list`, ..."""
    if isinstance(value, Ref):
        return f"`{value.dotted}`"
    if isinstance(value, Call):
        return f"`{value.name}(...)`"
    article = "an" if value.kind[0] in "aeiou" else "a"
    return f"{article} {value.kind}"


# --- syntax layer ---------------------------------------------------------------------------


class TypeRef(Model):
    name: str
    args: tuple[int, ...] = ()
    span: Span

    @property
    def text(self) -> str:
        args = f"({', '.join(str(a) for a in self.args)})" if self.args else ""
        return f"{self.name.lower()}{args}"


class Attribute(Model):
    entry: Literal["attribute"] = "attribute"
    name: str
    name_span: Span
    value: Value
    span: Span


class Decl(Model):
    """`name type [not null] [= default]`: a column or a parameter declaration."""

    entry: Literal["decl"] = "decl"
    name: str
    name_span: Span
    type: TypeRef
    not_null: bool = False
    default: Value | None = None
    span: Span


class SubBlock(Model):
    entry: Literal["sub_block"] = "sub_block"
    name: str
    name_span: Span
    entries: tuple[Entry, ...]
    span: Span


Entry = Attribute | Decl | SubBlock | Call


class Block(Model):
    """A top-level `KIND NAME { ... }` block, before its kind is checked."""

    kind: str
    kind_span: Span
    name: str
    name_span: Span
    entries: tuple[Entry, ...]
    span: Span


class Document(Model):
    file: str
    blocks: tuple[Block, ...]
    # Blocks with a syntax error: only their kind and name are known. Later passes treat the
    # names as defined, so one syntax error does not cascade into "unknown node" errors.
    unparsed: tuple[Block, ...] = ()


# --- semantic layer -------------------------------------------------------------------------

NodeKind = Literal["source", "transform", "sink"]
OnFail = Literal["error", "warn"]


class Column(Model):
    name: str
    type: str
    not_null: bool = False
    span: Span | None = None


class Param(Model):
    name: str
    type: str
    default: Value | None = None
    span: Span


class Expectation(Model):
    check: str
    call: Call
    on_fail: OnFail = "error"


class SqlBody(Model):
    """SQL text with the map from its offsets back to the file that holds it."""

    text: str
    file: str
    segments: tuple[Segment, ...]
    span: Span
    from_file: bool = False


class PythonEntry(Model):
    path: str
    function: str
    span: Span
    # the function's parameter names: a source's are the pipeline parameters it takes
    arguments: tuple[str, ...] = ()


class Edge(Model):
    """`node` reads `upstream`; `span` is where it says so (a FROM clause, an `inputs` entry)."""

    upstream: str
    span: Span


class NodeBase(Model):
    name: str
    span: Span
    name_span: Span
    description: str | None = None
    target: Ref | None = None
    expectations: tuple[Expectation, ...] = ()
    columns: tuple[Column, ...] | None = None
    edges: tuple[Edge, ...] = ()
    output: tuple[Column, ...] | None = None  # the columns it produces, once known
    retries: int | None = None
    retry_delay: Str | None = None
    timeout: Str | None = None
    isolate: bool | None = None  # a Python block runs in a worker process (None: the pipeline's)
    publish: bool = False  # its table goes where users read, not to the internal schema
    unparsed: bool = False  # a placeholder for a block with a syntax error


class SourceNode(NodeBase):
    kind: Literal["source"] = "source"
    from_: Call | None = None
    python: PythonEntry | None = None
    # `columns = auto`: the columns are known only at run time, and the user knows it (no
    # F0307 for this source, or for the nodes it leaves unchecked)
    columns_auto: bool = False


class TransformNode(NodeBase):
    kind: Literal["transform"] = "transform"
    sql: SqlBody | None = None
    python: PythonEntry | None = None
    inputs: tuple[Ref, ...] = ()
    materialize: Ref | None = None
    unique_key: tuple[Ref, ...] = ()
    time_column: Ref | None = None
    lookback: Str | None = None  # how far before the watermark an incremental run re-reads
    parameters: tuple[Ref, ...] = ()  # the `:name` placeholders its SQL uses, once parsed


class SinkNode(NodeBase):
    kind: Literal["sink"] = "sink"
    input: Ref | None = None
    to: Call | None = None
    mode: Ref | None = None
    key: tuple[Ref, ...] = ()


Node = Annotated[SourceNode | TransformNode | SinkNode, Field(discriminator="kind")]


class Pipeline(Model):
    name: str
    span: Span
    name_span: Span
    description: str | None = None
    target: Ref | None = None
    dialect: str = "duckdb"
    dialect_span: Span | None = None
    schedule: Str | None = None
    catchup: Ref | None = None
    retries: int = 0
    retry_delay: Str | None = None
    timeout: Str | None = None
    isolate: bool = False
    internal_schema: Str | None = None  # where unpublished nodes live (None: the default)
    params: tuple[Param, ...] = ()
    unparsed: bool = False


class Fixture(Model):
    """Rows a `test` block gives a node it reads (`given { trips = rows(...) }`) or expects
    of the node it tests (`expected = rows(...)`): inline, or a CSV file under the project."""

    node: str  # the node whose rows they are
    span: Span  # the `rows(...)` or `csv(...)` call
    name_span: Span  # where the test names the node (the `given` entry; `expected`)
    columns: tuple[str, ...]
    column_spans: tuple[Span, ...]
    rows: tuple[tuple[Value, ...], ...] = ()  # inline rows; empty for a CSV file
    csv: str | None = None  # the CSV file, relative to the project root
    csv_rows: tuple[tuple[str | None, ...], ...] = ()  # its rows as text (empty cell: NULL)


class UnitTest(Model):
    """A `test` block: run `node` on the `given` rows and compare with `expected`."""

    name: str
    span: Span
    name_span: Span
    node: Ref | None = None
    description: str | None = None
    params: tuple[MapEntry, ...] = ()
    given: tuple[Fixture, ...] = ()
    expected: Fixture | None = None
    ordered: bool = False


class Spec(Model):
    """One .flow file, bound: its pipeline and nodes in file order, then its tests."""

    file: str
    root: str
    pipeline: Pipeline | None
    nodes: tuple[Node, ...]
    tests: tuple[UnitTest, ...] = ()

    def node(self, name: str) -> SourceNode | TransformNode | SinkNode | None:
        return next((n for n in self.nodes if n.name == name), None)

    def node_map(self) -> dict[str, SourceNode | TransformNode | SinkNode]:
        return {n.name: n for n in self.nodes}


ListValue.model_rebuild()
MapEntry.model_rebuild()
Keyword.model_rebuild()
Call.model_rebuild()
SubBlock.model_rebuild()
