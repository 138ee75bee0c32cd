"""The names pass: bind a syntax document to the semantic IR, checking every name on the way.

It checks block kinds, that node names are unique, that each attribute is known for its
block and set once, that values have the right shape, that `from`/`to`/check calls are of a
known kind with fitting arguments, that references to nodes and connections resolve, and
that files named by `file(...)` and `python = "path:function"` exist. Everything it can bind
it binds, so later passes see as much of the spec as possible.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowc.compiler import ir, vocabulary
from flowc.compiler.analysis import paths
from flowc.compiler.analysis.arguments import argument, check_call, choice, fits, kind_words
from flowc.compiler.analysis.pyentry import check_entry_point
from flowc.compiler.analysis.testblocks import bind_test
from flowc.compiler.diagnostics import Diagnostics, Note, did_you_mean
from flowc.compiler.driver import reads
from flowc.compiler.driver.memo import Memo
from flowc.project import config
from flowc.project.spans import Span, point

AnyNode = ir.SourceNode | ir.TransformNode | ir.SinkNode


@dataclass(frozen=True)
class Scope:
    """What names may resolve to: the project root and each checked profile's connections."""

    root: Path
    connections: Mapping[str, frozenset[str]]  # profile -> connection names
    types: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # ... -> their types
    allow: tuple[str, ...] = ()  # folders outside the root that paths may name (allow_paths)
    warehouses: tuple[str, ...] = ()  # the DuckDB files of the profiles: no sink writes them


def scope_of(root: Path, profiles: Sequence[config.Profile], *, allow: Sequence[str] = ()) -> Scope:
    """The scope of a project's specs under `profiles`; `allow`: flow.toml's `allow_paths`."""
    return Scope(
        root=root,
        connections={p.name: p.names for p in profiles},
        types={p.name: {n: c.type for n, c in p.connections.items()} for p in profiles},
        allow=tuple(allow),
        warehouses=tuple(
            sorted(
                {
                    c.settings.path
                    for p in profiles
                    for c in p.connections.values()
                    if isinstance(c.settings, config.DuckDBSettings)
                }
            )
        ),
    )


def bind(
    document: ir.Document, scope: Scope, diagnostics: Diagnostics, memo: Memo | None = None
) -> ir.Spec:
    """Bind `document`, reporting every naming mistake into `diagnostics`. With `memo`, a
    block that is the very object bound last time, under the same names and scope, is not
    bound again (the parser's memo hands back unchanged blocks as the same objects)."""
    known = [b for b in document.blocks if _known_kind(b, diagnostics)]
    tests = [b for b in known if b.kind == "test"]
    blocks = [b for b in known if b.kind != "test"]
    unparsed = [
        b for b in document.unparsed if b.kind in vocabulary.BLOCK_KINDS and b.kind != "test"
    ]
    pipeline = _bind_pipeline(document.file, blocks, unparsed, scope, diagnostics)
    schemas = _schemas([b for b in blocks if b.kind == "schema"], diagnostics)
    # a schema block with a syntax error: its columns are unknown, and naming it no error
    schemas |= {b.name: None for b in unparsed if b.kind == "schema" and b.name not in schemas}
    node_blocks = _unique([b for b in blocks if b.kind in _NODE_KINDS], diagnostics)
    names = {b.name for b in node_blocks} | {b.name for b in unparsed if b.kind in _NODE_KINDS}
    if memo is None:
        nodes = [_bind_node(block, names, scope, schemas, diagnostics) for block in node_blocks]
    else:
        nodes = _bind_memoized(node_blocks, names, scope, schemas, diagnostics, memo)
    bound = {node.name for node in nodes}
    nodes += [_placeholder(b) for b in unparsed if b.kind in _NODE_KINDS and b.name not in bound]
    return ir.Spec(
        file=document.file,
        root=str(scope.root),
        pipeline=pipeline,
        nodes=tuple(nodes),
        tests=tuple(_test(b, scope, diagnostics) for b in _unique(tests, diagnostics, "test")),
    )


_NODE_KINDS = ("source", "transform", "sink")
RESERVED_PARAM_PREFIX = "flowc_"


def _schemas(
    blocks: list[ir.Block], diagnostics: Diagnostics
) -> dict[str, tuple[ir.Column, ...] | None]:
    """Each `schema NAME { columns { ... } }` by name: the column list nodes may share."""
    found: dict[str, tuple[ir.Column, ...] | None] = {}
    for block in _unique(blocks, diagnostics):
        where = f"`schema {block.name}`"
        _attributes(block, where, "schema", diagnostics)
        subs = _sub_blocks(block, where, diagnostics)
        found[block.name] = _columns(subs.get("columns"), diagnostics) or ()
    return found


def _shared_columns(
    block: ir.Block,
    attribute: ir.Attribute | None,
    declared: tuple[ir.Column, ...] | None,
    schemas: Mapping[str, tuple[ir.Column, ...] | None],
    diagnostics: Diagnostics,
) -> tuple[ir.Column, ...] | None:
    """A node's columns: its `columns { ... }` block, or the schema `columns = NAME` names."""
    if attribute is None:
        return declared
    value = attribute.value
    if not (isinstance(value, ir.Ref) and len(value.parts) == 1):
        detail = f"`columns` of `{block.name}` must name a schema, not {ir.describe(value)}"
        hint = "write `columns = trips` for a `schema trips { columns { ... } }`"
        diagnostics.report("F0213", value.span, hint=hint, detail=detail)
        return declared
    name = value.parts[0]
    if declared is not None:
        diagnostics.report("F0227", attribute.name_span, node=block.name, name=name)
        return declared
    if name not in schemas:
        hint = did_you_mean(name, schemas) or f"declare `schema {name} {{ columns {{ ... }} }}`"
        diagnostics.report("F0226", value.span, hint=hint, name=name)
        return None
    return schemas[name]


def _is_auto(attribute: ir.Attribute | None) -> bool:
    """`columns = auto`: a source whose columns its data gives at run time, knowingly."""
    value = attribute.value if attribute is not None else None
    return isinstance(value, ir.Ref) and tuple(value.parts) == ("auto",)


def _placeholder(block: ir.Block) -> AnyNode:
    """A node for a block with a syntax error: it exists, but nothing else is known of it."""
    fields: dict[str, Any] = {"name": block.name, "span": block.span, "name_span": block.name_span}
    if block.kind == "source":
        return ir.SourceNode(unparsed=True, **fields)
    if block.kind == "transform":
        return ir.TransformNode(unparsed=True, **fields)
    return ir.SinkNode(unparsed=True, **fields)


# --- blocks -----------------------------------------------------------------------------------


def _bind_memoized(
    blocks: list[ir.Block],
    names: set[str],
    scope: Scope,
    schemas: Mapping[str, tuple[ir.Column, ...] | None],
    diagnostics: Diagnostics,
    memo: Memo,
) -> list[AnyNode]:
    frozen = frozenset(names)
    if memo.names != frozen:
        memo.names, memo.bound = frozen, {}
    context = (memo.names, scope, dict(schemas))  # a node naming a schema binds its columns
    nodes = []
    for block in blocks:
        found = memo.bound.get(id(block))
        if found is None or found[0] is not block or found[1] != context:
            reported = Diagnostics()
            node = _bind_node(block, names, scope, schemas, reported)
            found = (block, context, node, tuple(reported))
            memo.bound[id(block)] = found
        diagnostics.extend(found[3])
        nodes.append(found[2])
    return nodes


def _known_kind(block: ir.Block, diagnostics: Diagnostics) -> bool:
    if block.kind in vocabulary.BLOCK_KINDS:
        return True
    hint = did_you_mean(block.kind, vocabulary.BLOCK_KINDS) or (
        "a block is `pipeline`, `schema`, `source`, `transform`, `sink` or `test`"
    )
    diagnostics.report("F0206", block.kind_span, hint=hint, kind=block.kind)
    return False


def _unique(blocks: list[ir.Block], diagnostics: Diagnostics, what: str = "node") -> list[ir.Block]:
    """The blocks with a name not taken by an earlier one (a second is F0203)."""
    first: dict[str, ir.Block] = {}
    for block in blocks:
        if block.name in first:
            note = Note(span=first[block.name].name_span, message="first defined here")
            diagnostics.report(
                "F0203",
                block.name_span,
                notes=[note],
                hint=f"{what} names are unique in a file; rename one of them",
                name=block.name,
            )
        else:
            first[block.name] = block
    return list(first.values())


def _attributes(
    block: ir.Block | ir.SubBlock, where: str, kind: str, diagnostics: Diagnostics
) -> dict[str, ir.Attribute]:
    """The block's attributes by name, each known for `kind` and set once."""
    allowed = vocabulary.ATTRIBUTES.get(kind, ())
    found: dict[str, ir.Attribute] = {}
    for entry in block.entries:
        if not isinstance(entry, ir.Attribute):
            continue
        if entry.name not in allowed:
            hint = did_you_mean(entry.name, allowed) or _allowed_hint("attributes", allowed)
            diagnostics.report("F0205", entry.name_span, hint=hint, name=entry.name, where=where)
        elif entry.name in found:
            _duplicate(entry.name_span, found[entry.name].name_span, entry.name, where, diagnostics)
        else:
            found[entry.name] = entry
    return found


def _sub_blocks(block: ir.Block, where: str, diagnostics: Diagnostics) -> dict[str, ir.SubBlock]:
    allowed = vocabulary.SUB_BLOCKS.get(block.kind, ())
    found: dict[str, ir.SubBlock] = {}
    for entry in block.entries:
        if isinstance(entry, ir.SubBlock):
            if entry.name not in allowed:
                hint = did_you_mean(entry.name, allowed) or _allowed_hint("blocks", allowed)
                diagnostics.report(
                    "F0215", entry.name_span, hint=hint, name=entry.name, where=where
                )
            elif entry.name in found:
                _duplicate(
                    entry.name_span, found[entry.name].name_span, entry.name, where, diagnostics
                )
            else:
                found[entry.name] = entry
        elif isinstance(entry, ir.Decl | ir.Call):
            _misplaced(entry, block.kind, diagnostics)
    return found


def _misplaced(entry: ir.Decl | ir.Call, kind: str, diagnostics: Diagnostics) -> None:
    if isinstance(entry, ir.Decl):
        detail = f"`{entry.name} {entry.type.text}` looks like a column declaration here"
        home = "params { ... }" if kind == "pipeline" else "columns { ... }"
        hint = f"declarations go inside `{home}`; attributes are written `name = value`"
        diagnostics.report("F0222", entry.span, hint=hint, detail=detail)
    else:
        detail = f"`{entry.name}(...)` on its own is only allowed inside `expect {{ ... }}`"
        diagnostics.report("F0222", entry.span, hint="did you mean `from = ...`?", detail=detail)


def _duplicate(span: Span, first: Span, name: str, where: str, diagnostics: Diagnostics) -> None:
    diagnostics.report(
        "F0204",
        span,
        notes=[Note(span=first, message="first set here")],
        hint="remove one of them",
        name=name,
        block=where,
    )


def _allowed_hint(what: str, allowed: Sequence[str]) -> str:
    if not allowed:
        return f"this block has no {what}"
    return f"known {what}: " + ", ".join(f"`{a}`" for a in allowed)


def _test(block: ir.Block, scope: Scope, diagnostics: Diagnostics) -> ir.UnitTest:
    where = f"`test {block.name}`"
    attrs = _attributes(block, where, "test", diagnostics)
    subs = _sub_blocks(block, where, diagnostics)
    return bind_test(block, attrs, subs, scope.root, diagnostics)


# --- the pipeline block ---------------------------------------------------------------------


def _bind_pipeline(
    file: str,
    blocks: list[ir.Block],
    unparsed: list[ir.Block],
    scope: Scope,
    diagnostics: Diagnostics,
) -> ir.Pipeline | None:
    pipelines = [b for b in blocks if b.kind == "pipeline"]
    broken = next((b for b in unparsed if b.kind == "pipeline"), None)
    if not pipelines and broken is not None:
        return ir.Pipeline(
            name=broken.name, span=broken.span, name_span=broken.name_span, unparsed=True
        )
    if not pipelines:
        diagnostics.report(
            "F0201",
            point(file),
            hint="start the file with `pipeline NAME { }`; see docs/language.md",
        )
        return None
    for extra in pipelines[1:]:
        note = Note(span=pipelines[0].kind_span, message="the first pipeline block")
        diagnostics.report("F0202", extra.kind_span, notes=[note], hint="move it to its own file")
    return _pipeline(pipelines[0], scope, diagnostics)


def _pipeline(block: ir.Block, scope: Scope, diagnostics: Diagnostics) -> ir.Pipeline:
    where = f"`pipeline {block.name}`"
    attrs = _attributes(block, where, "pipeline", diagnostics)
    subs = _sub_blocks(block, where, diagnostics)
    values = _Values(attrs, diagnostics)
    dialect = values.choice("dialect", vocabulary.DIALECTS)
    target = values.ref("target")
    if target:
        _check_connection(target, scope, diagnostics)
    return ir.Pipeline(
        name=block.name,
        span=block.span,
        name_span=block.name_span,
        description=_text(values.string("description")),
        target=target,
        dialect=dialect.value if dialect else "duckdb",
        dialect_span=dialect.span if dialect else None,
        schedule=values.string("schedule"),
        catchup=values.enum("catchup"),
        retries=values.count("retries"),
        retry_delay=values.string("retry_delay"),
        timeout=values.string("timeout"),
        isolate=bool(values.boolean("isolate")),
        internal_schema=_internal_schema(values.string("internal_schema"), diagnostics),
        params=_params(subs.get("params"), diagnostics),
    )


def _internal_schema(value: ir.Str | None, diagnostics: Diagnostics) -> ir.Str | None:
    """A schema name every engine takes unquoted (a BigQuery dataset: letters, digits, `_`),
    and not one of flowc's stage schemas, which a successful run drops."""
    if value is None:
        return None
    name = value.value
    if _SCHEMA_NAME.fullmatch(name) and not name.lower().startswith("_flowc"):
        return value
    diagnostics.report(
        "F0212",
        value.span,
        name="internal_schema",
        expected="a schema name of letters, digits and `_` (not starting with a digit or `_flowc`)",
        got=f'"{name}"',
        hint='for example: internal_schema = "flowc_internal"',
    )
    return None


_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def _params(block: ir.SubBlock | None, diagnostics: Diagnostics) -> tuple[ir.Param, ...]:
    if block is None:
        return ()
    params: dict[str, ir.Param] = {}
    for entry in block.entries:
        if not isinstance(entry, ir.Decl):
            _not_a_declaration(entry, "params", 'run_date date = "2020-10-01"', diagnostics)
            continue
        if entry.name in params:
            note = Note(span=params[entry.name].span, message="first declared here")
            diagnostics.report("F0504", entry.name_span, notes=[note], name=entry.name)
            continue
        if entry.name.lower().startswith(RESERVED_PARAM_PREFIX):
            # flowc binds `flowc_since`, `flowc_value_N`, ... itself: a user's would collide
            hint = f"rename it, e.g. `{entry.name[len(RESERVED_PARAM_PREFIX) :] or 'value'}`"
            diagnostics.report("F0506", entry.name_span, hint=hint, name=entry.name)
            continue
        type_name = _type_name(entry.type, diagnostics, code="F0503")
        params[entry.name] = ir.Param(
            name=entry.name, type=type_name, default=entry.default, span=entry.span
        )
    return tuple(params.values())


def _not_a_declaration(entry: ir.Entry, block: str, example: str, diagnostics: Diagnostics) -> None:
    detail = f"`{block} {{ ... }}` holds declarations like `{example}`"
    diagnostics.report("F0222", entry.span, detail=detail, hint=f"write `{example}`")


# --- nodes ----------------------------------------------------------------------------------


def _bind_node(
    block: ir.Block,
    names: set[str],
    scope: Scope,
    schemas: Mapping[str, tuple[ir.Column, ...] | None],
    diagnostics: Diagnostics,
) -> AnyNode:
    where = f"`{block.kind} {block.name}`"
    attrs = _attributes(block, where, block.kind, diagnostics)
    subs = _sub_blocks(block, where, diagnostics)
    declared = _columns(subs.get("columns"), diagnostics)
    attribute = attrs.pop("columns", None)
    auto = block.kind == "source" and _is_auto(attribute)
    if auto and attribute is not None and "columns" in subs:  # `columns = auto` and a block
        first = subs["columns"].name_span
        _duplicate(attribute.name_span, first, "columns", where, diagnostics)
    if auto:
        columns = declared
    else:
        known = {**schemas, "auto": None} if block.kind == "source" else schemas
        columns = _shared_columns(block, attribute, declared, known, diagnostics)
    values = _Values(attrs, diagnostics)
    target = values.ref("target")
    if target:
        _check_connection(target, scope, diagnostics)
    common: dict[str, Any] = {
        "name": block.name,
        "span": block.span,
        "name_span": block.name_span,
        "target": target,
        "expectations": _expectations(subs.get("expect"), names, diagnostics),
        "columns": columns,
    }
    if block.kind == "source":
        common["columns_auto"] = auto
    common |= {
        "description": _text(values.string("description")),
        "retries": values.count("retries") if "retries" in attrs else None,
        "retry_delay": values.string("retry_delay"),
        "timeout": values.string("timeout"),
        "isolate": values.boolean("isolate"),
    }
    if block.kind != "sink":
        common["publish"] = bool(values.boolean("publish"))
    if "isolate" in values.attrs and "python" not in values.attrs:
        _isolate_without_python(block, values.attrs["isolate"], diagnostics)
    if block.kind == "source":
        return _source(block, values, scope, common, diagnostics)
    if block.kind == "transform":
        return _transform(block, values, names, scope, common, diagnostics)
    return _sink(block, values, names, scope, common, diagnostics)


def _isolate_without_python(
    block: ir.Block, attribute: ir.Attribute, diagnostics: Diagnostics
) -> None:
    runs = "reads with `from`" if block.kind == "source" else "runs SQL"
    diagnostics.report(
        "F0720",
        attribute.name_span,
        node=f"{block.kind} {block.name}",
        runs=runs,
        hint="remove it: only a `python` block runs in a worker process",
    )


def _source(
    block: ir.Block,
    values: _Values,
    scope: Scope,
    common: dict[str, Any],
    diagnostics: Diagnostics,
) -> ir.SourceNode:
    where = f"`source {block.name}`"
    from_ = values.call("from", vocabulary.SOURCE_KINDS, "source")
    python = values.string("python")
    _exactly_one(block, where, values, ("from", "python"), diagnostics)
    if from_ is not None and from_.name == "table":
        _check_table_connection(from_, scope, diagnostics)
    entry = _entry_point(python, scope, diagnostics)
    return ir.SourceNode(from_=from_, python=entry, **common)


def _transform(
    block: ir.Block,
    values: _Values,
    names: set[str],
    scope: Scope,
    common: dict[str, Any],
    diagnostics: Diagnostics,
) -> ir.TransformNode:
    where = f"`transform {block.name}`"
    _exactly_one(block, where, values, ("sql", "python"), diagnostics)
    python = values.string("python")
    inputs = values.refs("inputs")
    _check_nodes(inputs, names, diagnostics)
    if python is None and "inputs" in values.attrs and "sql" in values.attrs:
        _sql_with_inputs(values.attrs["inputs"], diagnostics)
    if "sql" in values.attrs and common["columns"] is not None:
        _sql_with_columns(block, diagnostics)
    materialize = values.enum("materialize")
    unique_key = values.refs("unique_key", single_allowed=True)
    time_column = values.ref("time_column")
    lookback = values.string("lookback")
    if materialize and materialize.parts[0] == "incremental" and not (unique_key or time_column):
        diagnostics.report(
            "F0221", materialize.span, hint="add `unique_key = [id]` or `time_column = updated_at`"
        )
    return ir.TransformNode(
        sql=_sql_body(values.attrs.get("sql"), scope, diagnostics),
        python=_entry_point(python, scope, diagnostics),
        inputs=inputs,
        materialize=materialize,
        unique_key=unique_key,
        time_column=time_column,
        lookback=lookback,
        **common,
    )


def _sink(
    block: ir.Block,
    values: _Values,
    names: set[str],
    scope: Scope,
    common: dict[str, Any],
    diagnostics: Diagnostics,
) -> ir.SinkNode:
    where = f"`sink {block.name}`"
    input_ = values.ref("input")
    if input_:
        _check_nodes((input_,), names, diagnostics)
    to = values.call("to", vocabulary.SINK_KINDS, "sink")
    if to is not None and to.name == "table":
        _check_table_connection(to, scope, diagnostics)
    mode = values.enum("mode")
    key = values.refs("key", single_allowed=True)
    for name in ("input", "to"):
        if name not in values.attrs:
            diagnostics.report(
                "F0210", block.name_span, where=where, needed=f"`{name} = ...`", hint=_SINK_EXAMPLE
            )
    if mode and mode.parts[0] == "merge" and not key:
        diagnostics.report("F0220", mode.span, hint="add `key = [id]`")
    return ir.SinkNode(input=input_, to=to, mode=mode, key=key, **common)


_SINK_EXAMPLE = 'for example: input = clean_trips  to = table(warehouse, "ny_taxi.trips")'


def _exactly_one(
    block: ir.Block,
    where: str,
    values: _Values,
    options: tuple[str, str],
    diagnostics: Diagnostics,
) -> None:
    first, second = options
    if first in values.attrs and second in values.attrs:
        diagnostics.report(
            "F0211",
            values.attrs[second].name_span,
            where=where,
            first=first,
            second=second,
            hint=f"a {block.kind} is either `{first} = ...` or `{second} = ...`",
        )
    elif first not in values.attrs and second not in values.attrs:
        diagnostics.report(
            "F0210",
            block.name_span,
            where=where,
            needed=f"`{first} = ...` or `{second} = ...`",
            hint=_NEEDS_EXAMPLE[block.kind],
        )


_NEEDS_EXAMPLE = {
    "source": 'for example: from = csv("data/trips.csv", header = true)',
    "transform": 'for example: sql = """SELECT * FROM trips"""',
}


def _sql_with_inputs(attr: ir.Attribute, diagnostics: Diagnostics) -> None:
    detail = "a SQL transform names its inputs in FROM and JOIN, not with `inputs`"
    diagnostics.report("F0222", attr.name_span, detail=detail, hint="remove `inputs`")


def _sql_with_columns(block: ir.Block, diagnostics: Diagnostics) -> None:
    span = next(
        e.name_span
        for e in block.entries
        if isinstance(e, ir.SubBlock | ir.Attribute) and e.name == "columns"
    )
    detail = "a SQL transform's columns come from its query; `columns` declares a Python one's"
    diagnostics.report("F0222", span, detail=detail, hint="remove the `columns` block")


def _check_nodes(refs: Sequence[ir.Ref], names: set[str], diagnostics: Diagnostics) -> None:
    for ref in refs:
        if ref.dotted not in names:
            hint = did_you_mean(ref.dotted, names)
            diagnostics.report("F0208", ref.span, hint=hint, name=ref.dotted)


def _check_connection(ref: ir.Ref, scope: Scope, diagnostics: Diagnostics) -> None:
    for profile, connections in sorted(scope.connections.items()):
        if ref.dotted not in connections:
            hint = did_you_mean(ref.dotted, connections) or (
                f"define `[profiles.{profile}.{ref.dotted}]` in flow.toml"
            )
            diagnostics.report("F0209", ref.span, hint=hint, name=ref.dotted, profile=profile)


def _check_table_connection(call: ir.Call, scope: Scope, diagnostics: Diagnostics) -> None:
    connection = call.args[0] if call.args else None
    if isinstance(connection, ir.Ref) and fits(connection, "ref"):
        _check_connection(connection, scope, diagnostics)


# --- sub-blocks -----------------------------------------------------------------------------


def _columns(block: ir.SubBlock | None, diagnostics: Diagnostics) -> tuple[ir.Column, ...] | None:
    if block is None:
        return None
    columns: dict[str, ir.Column] = {}
    for entry in block.entries:
        if not isinstance(entry, ir.Decl) or entry.default is not None:
            _not_a_declaration(entry, "columns", "fare_amount decimal(10, 2) not null", diagnostics)
            continue
        first = columns.get(entry.name.lower())
        if first is not None and first.span is not None:
            note = Note(span=first.span, message="first declared here")
            diagnostics.report("F0219", entry.name_span, notes=[note], name=entry.name)
            continue
        type_name = _type_name(entry.type, diagnostics, code="F0218")
        columns[entry.name.lower()] = ir.Column(
            name=entry.name, type=type_name, not_null=entry.not_null, span=entry.name_span
        )
    return tuple(columns.values())


def _type_name(type_ref: ir.TypeRef, diagnostics: Diagnostics, *, code: str) -> str:
    name = type_ref.name.lower()
    if name not in vocabulary.COLUMN_TYPES:
        hint = did_you_mean(name, vocabulary.COLUMN_TYPES)
        diagnostics.report(code, type_ref.span, hint=hint, name=type_ref.name)
        return "unknown"
    arity = vocabulary.TYPE_ARITY.get(name, 0)
    if len(type_ref.args) > arity:
        detail = f"type `{name}` takes at most {arity} argument(s)"
        diagnostics.report("F0213", type_ref.span, detail=detail)
    return type_ref.text


def _expectations(
    block: ir.SubBlock | None, names: set[str], diagnostics: Diagnostics
) -> tuple[ir.Expectation, ...]:
    if block is None:
        return ()
    on_fail = "error"
    for entry in block.entries:
        if isinstance(entry, ir.Attribute):
            if (
                entry.name == "on_fail"
                and fits(entry.value, "ref")
                and isinstance(entry.value, ir.Ref)
            ):
                on_fail = _on_fail(entry.value, diagnostics) or on_fail
            else:
                _expect_attribute(entry, diagnostics)
    checks = []
    for entry in block.entries:
        if isinstance(entry, ir.Call):
            expectation = _expectation(entry, on_fail, names, diagnostics)
            if expectation:
                checks.append(expectation)
        elif not isinstance(entry, ir.Attribute):
            detail = "`expect { ... }` holds checks like `not_null(col)` and `on_fail = warn`"
            diagnostics.report("F0222", entry.span, detail=detail)
    return tuple(checks)


def _expect_attribute(entry: ir.Attribute, diagnostics: Diagnostics) -> None:
    if entry.name == "on_fail":
        diagnostics.report(
            "F0212",
            entry.value.span,
            name="on_fail",
            expected="`error` or `warn`",
            got=ir.describe(entry.value),
        )
    else:
        hint = (
            did_you_mean(entry.name, ["on_fail"])
            or "the only setting here is `on_fail = error | warn`"
        )
        diagnostics.report("F0205", entry.name_span, hint=hint, name=entry.name, where="`expect`")


def _on_fail(value: ir.Ref, diagnostics: Diagnostics) -> str | None:
    word = value.dotted
    if word in vocabulary.ENUMS["on_fail"]:
        return word
    hint = did_you_mean(word, vocabulary.ENUMS["on_fail"])
    diagnostics.report(
        "F0212",
        value.span,
        hint=hint,
        name="on_fail",
        expected="`error` or `warn`",
        got=f"`{word}`",
    )
    return None


def _expectation(
    call: ir.Call, on_fail: str, names: set[str], diagnostics: Diagnostics
) -> ir.Expectation | None:
    signature = vocabulary.CHECKS.get(call.name)
    if signature is None:
        hint = did_you_mean(call.name, vocabulary.CHECKS) or _allowed_hint(
            "checks", list(vocabulary.CHECKS)
        )
        diagnostics.report("F0214", call.name_span, hint=hint, name=call.name)
        return None
    if not check_call(call, signature, diagnostics):
        return None
    if call.name == "relationship":
        other = argument(call, signature, "other")
        if isinstance(other, ir.Ref) and other.parts[0] not in names:
            suggestion = did_you_mean(other.parts[0], names)
            diagnostics.report("F0208", other.span, hint=suggestion, name=other.parts[0])
    own = call.keyword("on_fail")
    level = (choice(own.value) if own else None) or on_fail
    return ir.Expectation(
        check=call.name, call=call, on_fail="warn" if level == "warn" else "error"
    )


# --- SQL bodies -----------------------------------------------------------------------------


def _entry_point(
    value: ir.Str | None, scope: Scope, diagnostics: Diagnostics
) -> ir.PythonEntry | None:
    if value is None:
        return None
    return check_entry_point(value, scope.root, diagnostics, allow=scope.allow)


def _sql_body(
    attr: ir.Attribute | None, scope: Scope, diagnostics: Diagnostics
) -> ir.SqlBody | None:
    if attr is None:
        return None
    value = attr.value
    if isinstance(value, ir.Str):
        return ir.SqlBody(
            text=value.value, file=value.span.file, segments=value.segments, span=value.span
        )
    if isinstance(value, ir.Call) and value.name == "file":
        return _sql_file(value, scope.root, scope.allow, diagnostics)
    diagnostics.report(
        "F0212",
        value.span,
        name="sql",
        expected='a string or `file("sql/query.sql")`',
        got=ir.describe(value),
        hint='for example: sql = """SELECT * FROM trips"""',
    )
    return None


def _sql_file(
    call: ir.Call, root: Path, allow: Sequence[str], diagnostics: Diagnostics
) -> ir.SqlBody | None:
    if not check_call(call, vocabulary.SQL_FILE, diagnostics):
        return None
    path_value = call.args[0]
    assert isinstance(path_value, ir.Str)
    if paths.outside(root, allow, path_value.value):
        where = " (`file(...)` reads under the project root)"
        diagnostics.report(
            "F0230", path_value.span, path=path_value.value, where=where, hint=paths.ALLOW_HINT
        )
        return None
    path = root / path_value.value
    data = reads.read_bytes(path)
    if data is None:
        diagnostics.report(
            "F0216", path_value.span, path=path_value.value, hint=f"the project root is {root}"
        )
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        reason = f"not UTF-8 text (byte {error.start})"
        diagnostics.report("F0107", path_value.span, path=path_value.value, reason=reason)
        return None
    return ir.SqlBody(
        text=text,
        file=_display(path),
        segments=_line_segments(text),
        span=call.span,
        from_file=True,
    )


def _line_segments(text: str) -> tuple[ir.Segment, ...]:
    segments = [ir.Segment(offset=0, line=1, col=1)]
    offset = 0
    for number, line in enumerate(text.split("\n")[:-1], start=2):
        offset += len(line) + 1
        segments.append(ir.Segment(offset=offset, line=number, col=1))
    return tuple(segments)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _text(value: ir.Str | None) -> str | None:
    return value.value if value else None


# --- attribute values -------------------------------------------------------------------------


class _Values:
    """Typed access to a block's attributes; a value of the wrong shape is reported once."""

    def __init__(self, attrs: dict[str, ir.Attribute], diagnostics: Diagnostics) -> None:
        self.attrs = attrs
        self.diagnostics = diagnostics

    def _wrong(self, name: str, expected: str, hint: str | None = None) -> None:
        value = self.attrs[name].value
        self.diagnostics.report(
            "F0212", value.span, name=name, expected=expected, got=ir.describe(value), hint=hint
        )

    def string(self, name: str) -> ir.Str | None:
        if name not in self.attrs:
            return None
        value = self.attrs[name].value
        if isinstance(value, ir.Str):
            return value
        self._wrong(name, "a string", hint=f'for example: {name} = "..."')
        return None

    def choice(self, name: str, choices: Sequence[str]) -> ir.Str | None:
        value = self.string(name)
        if value is None or value.value in choices:
            return value
        options = ", ".join(f'"{c}"' for c in choices)
        self.diagnostics.report(
            "F0212",
            value.span,
            name=name,
            expected=f"one of {options}",
            got=f'"{value.value}"',
            hint=did_you_mean(value.value, choices),
        )
        return None

    def ref(self, name: str) -> ir.Ref | None:
        if name not in self.attrs:
            return None
        value = self.attrs[name].value
        if isinstance(value, ir.Ref) and len(value.parts) == 1:
            return value
        self._wrong(name, "a name", hint=f"write the name without quotes: {name} = some_name")
        return None

    def enum(self, name: str) -> ir.Ref | None:
        if name not in self.attrs:
            return None
        value = self.attrs[name].value
        choices = vocabulary.ENUMS[name]
        if isinstance(value, ir.Str) and value.value in choices:
            return ir.Ref(parts=(value.value,), span=value.span)
        if isinstance(value, ir.Ref) and value.dotted in choices:
            return value
        got = value.value if isinstance(value, ir.Str) else getattr(value, "dotted", "")
        options = " | ".join(choices)
        self._wrong(name, f"one of {options}", hint=did_you_mean(str(got), choices))
        return None

    def refs(self, name: str, *, single_allowed: bool = False) -> tuple[ir.Ref, ...]:
        if name not in self.attrs:
            return ()
        value = self.attrs[name].value
        if single_allowed and fits(value, "ref") and isinstance(value, ir.Ref):
            return (value,)
        if isinstance(value, ir.ListValue) and fits(value, "refs"):
            return tuple(i for i in value.items if isinstance(i, ir.Ref))
        self._wrong(name, kind_words("refs"), hint=f"for example: {name} = [a, b]")
        return ()

    def boolean(self, name: str) -> bool | None:
        if name not in self.attrs:
            return None
        value = self.attrs[name].value
        if isinstance(value, ir.Bool):
            return value.value
        self._wrong(name, "true or false", hint=f"write {name} = true")
        return None

    def count(self, name: str) -> int:
        if name not in self.attrs:
            return 0
        value = self.attrs[name].value
        if isinstance(value, ir.Num) and isinstance(value.value, int) and value.value >= 0:
            return value.value
        self._wrong(name, "a whole number, 0 or more")
        return 0

    def call(
        self, name: str, kinds: Mapping[str, vocabulary.Signature], what: str
    ) -> ir.Call | None:
        if name not in self.attrs:
            return None
        value = self.attrs[name].value
        if not isinstance(value, ir.Call):
            example = next(iter(kinds))
            self._wrong(name, f"a call such as `{example}(...)`", hint=_kinds_hint(kinds))
            return None
        if value.name not in kinds:
            hint = did_you_mean(value.name, kinds) or _kinds_hint(kinds)
            self.diagnostics.report(
                "F0207", value.name_span, hint=hint, what=f"`{name}`", kind=value.name
            )
            return None
        return value if check_call(value, kinds[value.name], self.diagnostics) else None


def _kinds_hint(kinds: Mapping[str, vocabulary.Signature]) -> str:
    return "known kinds: " + ", ".join(f"`{k}(...)`" for k in kinds)
