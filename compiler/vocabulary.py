"""What the language knows by name: block kinds, attributes, call kinds, checks and types.

The names pass checks a document against these tables; docs/language.md describes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BLOCK_KINDS = ("pipeline", "schema", "source", "transform", "sink", "test")
NODE_KINDS = ("source", "transform", "sink")
DIALECTS = ("duckdb", "postgres", "bigquery")

# Attributes every node accepts, whatever its kind.
_COMMON = ("description", "target", "retries", "retry_delay", "timeout")

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "pipeline": (
        "description",
        "target",
        "dialect",
        "schedule",
        "catchup",
        "retries",
        "retry_delay",
        "timeout",
        "isolate",
        "internal_schema",  # where nodes that are not published live (default flowc_internal)
    ),
    "schema": ("description",),  # a column list that sources and transforms name in `columns`
    "source": (*_COMMON, "from", "python", "isolate", "columns", "publish"),  # = auto, or a schema
    "transform": (
        *_COMMON,
        "columns",
        "sql",
        "python",
        "isolate",
        "inputs",
        "materialize",
        "unique_key",
        "time_column",
        "lookback",
        "publish",  # = true: the node's table is where users read, beside the sinks' tables
    ),
    "sink": (*_COMMON, "input", "to", "mode", "key"),
    "test": ("description", "node", "params", "expected", "ordered"),
}

SUB_BLOCKS: dict[str, tuple[str, ...]] = {
    "pipeline": ("params",),
    "schema": ("columns",),
    "source": ("columns", "expect"),
    "transform": ("columns", "expect"),
    "sink": ("expect",),
    "test": ("given",),
}

ENUMS: dict[str, tuple[str, ...]] = {
    "materialize": ("view", "table", "ephemeral", "incremental"),
    "mode": ("replace", "append", "merge"),
    "catchup": ("none", "latest", "all"),
    "on_fail": ("error", "warn"),
    "columns": ("auto",),  # a source's columns come from its data at run time, knowingly
}

COLUMN_TYPES = (
    "int",
    "integer",
    "smallint",
    "bigint",
    "float",
    "real",
    "double",
    "decimal",
    "numeric",
    "varchar",
    "char",
    "text",
    "string",
    "boolean",
    "bool",
    "date",
    "time",
    "timestamp",
    "timestamptz",
    "interval",
    "json",
    "uuid",
    "blob",
    "bytea",
)

# How many `(...)` arguments a type takes at most.
TYPE_ARITY = {"decimal": 2, "numeric": 2, "varchar": 1, "char": 1, "timestamp": 1}


@dataclass(frozen=True)
class Signature:
    """Arguments of a call kind: required positionals, then optional ones (also by keyword).

    Argument kinds: `string`, `bool`, `int`, `ref` (a name), `refs` (a list of names),
    `list` (any list), `strings` (a string or a list of them), `map` (`{ k = "v" }`), `word` (a
    string or a bare name, checked by its pass), `dotted` (`node.column`), or `a|b|c` for a
    string among choices.
    """

    required: tuple[tuple[str, str], ...] = ()
    optional: tuple[tuple[str, str], ...] = ()
    variadic: str | None = None  # kind of any further positional arguments
    at_least_one_keyword: bool = False
    extra_keywords: tuple[tuple[str, str], ...] = field(default=())

    def parameter(self, name: str) -> str | None:
        return dict(self.required + self.optional + self.extra_keywords).get(name)

    def keyword_names(self) -> list[str]:
        return [n for n, _ in self.required + self.optional + self.extra_keywords]


_FORMATS = "csv|parquet|json"
# how an `http` source fetches: URL templates, headers, a JSON API's records and pages
FETCHING: tuple[tuple[str, str], ...] = (
    ("each", "map"),
    ("headers", "map"),
    ("records", "string"),
    ("paginate", "word"),
    ("next", "string"),
    ("cursor", "string"),
    ("cursor_param", "string"),
    ("offset_param", "string"),
    ("page_param", "string"),
    ("size_param", "string"),
    ("page_size", "int"),
)

SOURCE_KINDS: dict[str, Signature] = {
    "csv": Signature(
        required=(("path", "string"),),
        optional=(("header", "bool"), ("delimiter", "string")),
    ),
    "parquet": Signature(required=(("path", "string"),)),
    "json": Signature(required=(("path", "string"),)),
    "http": Signature(  # compiler/analysis/extract.py checks how the API keywords fit together
        required=(("url", "strings"),),
        optional=(("format", _FORMATS), ("header", "bool"), ("delimiter", "string")),
        extra_keywords=FETCHING,
    ),
    "table": Signature(required=(("connection", "ref"), ("name", "string"))),
}

SINK_KINDS: dict[str, Signature] = {
    "table": Signature(  # partition_by, cluster_by: BigQuery's table layout; others ignore it
        required=(("connection", "ref"), ("name", "string")),
        optional=(("partition_by", "partition"), ("cluster_by", "refs")),
    ),
    "parquet": Signature(required=(("path", "string"),), optional=(("partition_by", "refs"),)),
    "csv": Signature(
        required=(("path", "string"),),
        optional=(("header", "bool"), ("delimiter", "string")),
    ),
}

_ON_FAIL = (("on_fail", "error|warn"),)

CHECKS: dict[str, Signature] = {
    "not_null": Signature(required=(("column", "ref"),), variadic="ref", extra_keywords=_ON_FAIL),
    "unique": Signature(required=(("column", "ref"),), variadic="ref", extra_keywords=_ON_FAIL),
    "accepted_values": Signature(
        required=(("column", "ref"), ("values", "list")), extra_keywords=_ON_FAIL
    ),
    "row_count": Signature(
        optional=(("min", "int"), ("max", "int")),
        at_least_one_keyword=True,
        extra_keywords=_ON_FAIL,
    ),
    "check": Signature(required=(("condition", "string"),), extra_keywords=_ON_FAIL),
    "relationship": Signature(
        required=(("column", "ref"), ("other", "dotted")), extra_keywords=_ON_FAIL
    ),
}

SQL_FILE = Signature(required=(("path", "string"),))

# What a `test` block's `given` entries and `expected` hold: `rows([header], [row], ...)` or
# `csv("path")` (a file with a header row under the project root).
FIXTURE_KINDS = ("rows", "csv")
