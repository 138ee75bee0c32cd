"""`test` blocks: unit tests of one transform on fixture rows (docs/language.md, "Tests").

```flow
test clean_trips_drops_empty_trips {
  node   = clean_trips
  params = { run_date = "2020-10-01" }
  given {
    trips = rows(
      [VendorID, lpep_pickup_datetime,  passenger_count, trip_distance],
      [1,        "2020-10-01 08:00:00", 1,               2.5],
    )
  }
  expected = rows([VendorID, lpep_pickup_date], [1, "2020-10-01"])
}
```

Two passes live here. `bind_test` (called by the names pass) checks the block's shape and
binds it to `ir.UnitTest`; `check_tests` (after the schema pass, which knows every node's
columns) checks it against the pipeline: the node exists and is a transform, each `given`
node is one it reads, each column is one of that node's (or, for `expected`, of the tested
node's output), each value fits its column's declared type, each parameter is declared.
Nothing here runs anything: `flowc test` (runtime/testing/testrun.py) does.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

from flowc.compiler import ir
from flowc.compiler.analysis.params import value_problem
from flowc.compiler.diagnostics import Diagnostics, Note, did_you_mean
from flowc.compiler.driver import reads
from flowc.compiler.vocabulary import FIXTURE_KINDS
from flowc.project.spans import Span

_ROWS_EXAMPLE = "for example: rows([id, amount], [1, 2.5], [2, null])"
_SCALARS = (ir.Str, ir.Num, ir.Bool, ir.Null)


def bind_test(
    block: ir.Block,
    attrs: Mapping[str, ir.Attribute],
    subs: Mapping[str, ir.SubBlock],
    root: Path,
    diagnostics: Diagnostics,
) -> ir.UnitTest:
    """Bind one `test` block whose attributes and sub-blocks the names pass has checked."""
    where = f"`test {block.name}`"
    for needed in ("node", "expected"):
        if needed not in attrs:
            diagnostics.report(
                "F0210",
                block.name_span,
                where=where,
                needed=f"`{needed} = ...`",
                hint="for example: node = clean_trips  expected = rows([id], [1])",
            )
    node = _ref(attrs.get("node"), diagnostics)
    expected = None
    if "expected" in attrs and node is not None:
        expected = _fixture(node.dotted, attrs["expected"], root, diagnostics)
    return ir.UnitTest(
        name=block.name,
        span=block.span,
        name_span=block.name_span,
        node=node,
        description=_string(attrs.get("description"), diagnostics),
        params=_params(attrs.get("params"), diagnostics),
        given=_given(subs.get("given"), root, diagnostics),
        expected=expected,
        ordered=_boolean(attrs.get("ordered"), diagnostics),
    )


def _wrong(attr: ir.Attribute, expected: str, hint: str, diagnostics: Diagnostics) -> None:
    diagnostics.report(
        "F0212",
        attr.value.span,
        name=attr.name,
        expected=expected,
        got=ir.describe(attr.value),
        hint=hint,
    )


def _ref(attr: ir.Attribute | None, diagnostics: Diagnostics) -> ir.Ref | None:
    if attr is None:
        return None
    if isinstance(attr.value, ir.Ref) and len(attr.value.parts) == 1:
        return attr.value
    _wrong(attr, "a node name", "for example: node = clean_trips", diagnostics)
    return None


def _string(attr: ir.Attribute | None, diagnostics: Diagnostics) -> str | None:
    if attr is None:
        return None
    if isinstance(attr.value, ir.Str):
        return attr.value.value
    _wrong(attr, "a string", f'for example: {attr.name} = "..."', diagnostics)
    return None


def _boolean(attr: ir.Attribute | None, diagnostics: Diagnostics) -> bool:
    if attr is None:
        return False
    if isinstance(attr.value, ir.Bool):
        return attr.value.value
    _wrong(attr, "true or false", f"write {attr.name} = true", diagnostics)
    return False


def _params(attr: ir.Attribute | None, diagnostics: Diagnostics) -> tuple[ir.MapEntry, ...]:
    if attr is None:
        return ()
    if isinstance(attr.value, ir.MapValue):
        return attr.value.entries
    _wrong(attr, "a map", 'for example: params = { run_date = "2020-10-01" }', diagnostics)
    return ()


def _given(
    block: ir.SubBlock | None, root: Path, diagnostics: Diagnostics
) -> tuple[ir.Fixture, ...]:
    if block is None:
        return ()
    found: dict[str, ir.Fixture] = {}
    for entry in block.entries:
        if not isinstance(entry, ir.Attribute):
            detail = "`given { ... }` holds one `node = rows(...)` or `node = csv(...)` per input"
            diagnostics.report("F0222", entry.span, detail=detail, hint=_ROWS_EXAMPLE)
            continue
        if entry.name in found:
            note = Note(span=found[entry.name].name_span, message="first set here")
            diagnostics.report(
                "F0204",
                entry.name_span,
                notes=[note],
                hint="remove one of them",
                name=entry.name,
                block="`given`",
            )
            continue
        fixture = _fixture(entry.name, entry, root, diagnostics)
        if fixture is not None:
            found[entry.name] = fixture
    return tuple(found.values())


def _fixture(
    node: str, attr: ir.Attribute, root: Path, diagnostics: Diagnostics
) -> ir.Fixture | None:
    value = attr.value
    if not isinstance(value, ir.Call) or value.name not in FIXTURE_KINDS:
        _wrong(attr, '`rows(...)` or `csv("path")`', _ROWS_EXAMPLE, diagnostics)
        return None
    if value.name == "csv":
        return _csv_fixture(node, attr, value, root, diagnostics)
    return _rows_fixture(node, attr, value, diagnostics)


def _rows_fixture(
    node: str, attr: ir.Attribute, call: ir.Call, diagnostics: Diagnostics
) -> ir.Fixture | None:
    if call.keywords or not call.args:
        detail = "`rows(...)` takes a list of column names, then one list of values per row"
        diagnostics.report("F0213", call.span, detail=detail, hint=_ROWS_EXAMPLE)
        return None
    header, *rows = call.args
    columns = _header(header, diagnostics)
    if columns is None:
        return None
    kept: list[tuple[ir.Value, ...]] = []
    for row in rows:
        if not isinstance(row, ir.ListValue) or not all(isinstance(v, _SCALARS) for v in row.items):
            detail = "a row is a list of values: strings, numbers, `true`, `false` or `null`"
            diagnostics.report("F0213", row.span, detail=detail, hint=_ROWS_EXAMPLE)
            continue
        if len(row.items) != len(columns):
            diagnostics.report(
                "F0806",
                row.span,
                got=len(row.items),
                want=len(columns),
                hint="write one value per column, `null` for none",
            )
            continue
        kept.append(row.items)
    return ir.Fixture(
        node=node,
        span=call.span,
        name_span=attr.name_span,
        columns=tuple(name for name, _ in columns),
        column_spans=tuple(span for _, span in columns),
        rows=tuple(kept),
    )


def _header(value: ir.Value, diagnostics: Diagnostics) -> list[tuple[str, Span]] | None:
    names = value.items if isinstance(value, ir.ListValue) else ()
    if not names or not all(_column_name(v) for v in names):
        detail = "the first argument of `rows(...)` lists the column names: `[id, amount]`"
        diagnostics.report("F0213", value.span, detail=detail, hint=_ROWS_EXAMPLE)
        return None
    columns: list[tuple[str, Span]] = []
    seen: dict[str, Span] = {}
    for item in names:
        name = _column_name(item) or ""
        if name.lower() in seen:
            note = Note(span=seen[name.lower()], message="first named here")
            diagnostics.report("F0219", item.span, notes=[note], name=name)
            continue
        seen[name.lower()] = item.span
        columns.append((name, item.span))
    # with a column named twice the rows cannot be read: no fixture, and no further errors
    return columns if len(columns) == len(names) else None


def _column_name(value: ir.Value) -> str | None:
    if isinstance(value, ir.Ref) and len(value.parts) == 1:
        return value.parts[0]
    if isinstance(value, ir.Str) and value.value:
        return value.value
    return None


def _csv_fixture(
    node: str, attr: ir.Attribute, call: ir.Call, root: Path, diagnostics: Diagnostics
) -> ir.Fixture | None:
    path = call.args[0] if len(call.args) == 1 and not call.keywords else None
    if not isinstance(path, ir.Str):
        detail = '`csv(...)` takes the path of a CSV file with a header row: `csv("tests/x.csv")`'
        diagnostics.report("F0213", call.span, detail=detail)
        return None
    data = reads.read_bytes(root / path.value)
    if data is None:
        diagnostics.report("F0216", path.span, path=path.value, hint=f"the project root is {root}")
        return None
    try:
        table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as error:
        diagnostics.report("F0107", path.span, path=path.value, reason=str(error))
        return None
    header, *rows = table or [[]]
    if not header:
        detail = f"`{path.value}` has no header row naming its columns"
        diagnostics.report("F0213", path.span, detail=detail)
        return None
    twice = next((c for i, c in enumerate(header) if c.lower() in _lowered(header[:i])), None)
    if twice is not None:
        diagnostics.report("F0219", path.span, name=twice, hint=f"in the header of `{path.value}`")
        return None
    text_rows: list[tuple[str | None, ...]] = []
    for row in rows:
        if not row:
            continue
        if len(row) != len(header):
            diagnostics.report(
                "F0806",
                path.span,
                got=len(row),
                want=len(header),
                hint=f"row {len(text_rows) + 2} of `{path.value}`: one value per column",
            )
            return None
        text_rows.append(tuple(cell if cell != "" else None for cell in row))
    return ir.Fixture(
        node=node,
        span=call.span,
        name_span=attr.name_span,
        columns=tuple(header),
        column_spans=tuple(path.span for _ in header),
        csv=path.value,
        csv_rows=tuple(text_rows),
    )


def reads_of(node: ir.TransformNode) -> list[str]:
    """The nodes a transform reads: its SQL's edges, or its `inputs` in their order."""
    found = [e.upstream for e in node.edges] + [r.dotted for r in node.inputs]
    return list(dict.fromkeys(found))


def _lowered(names: list[str]) -> set[str]:
    return {n.lower() for n in names}


# --- checked against the pipeline -------------------------------------------------------------


def check_tests(spec: ir.Spec, diagnostics: Diagnostics) -> ir.Spec:
    """Report every test that does not fit the pipeline (run after the schema pass)."""
    nodes = spec.node_map()
    params = {p.name: p for p in spec.pipeline.params} if spec.pipeline else {}
    for test in spec.tests:
        _check_params(test, params, diagnostics)
        if test.node is None:
            continue
        target = nodes.get(test.node.dotted)
        if target is None:
            hint = did_you_mean(test.node.dotted, nodes)
            diagnostics.report(
                "F0801", test.node.span, hint=hint, name=test.node.dotted, test=test.name
            )
            continue
        if target.unparsed:
            continue
        if not isinstance(target, ir.TransformNode):
            hint = "test the transforms that read it; a test gives their inputs as rows"
            diagnostics.report(
                "F0802", test.node.span, hint=hint, name=target.name, kind=target.kind
            )
            continue
        _check_given(test, target, nodes, diagnostics)
        if test.expected is not None:
            _check_columns(test.expected, target, diagnostics)
    return spec


def _check_params(
    test: ir.UnitTest, params: Mapping[str, ir.Param], diagnostics: Diagnostics
) -> None:
    for entry in test.params:
        param = params.get(entry.key)
        if param is None:
            hint = did_you_mean(entry.key, params) or (
                "declare it in `pipeline { params { ... } }`" if not params else None
            )
            diagnostics.report("F0807", entry.key_span, hint=hint, name=entry.key)
            continue
        problem = value_problem(param.type, entry.value)
        if problem:
            diagnostics.report(
                "F0805",
                entry.value.span,
                what=f"parameter `{entry.key}`",
                type=param.type,
                detail=problem,
            )


def _check_given(
    test: ir.UnitTest,
    target: ir.TransformNode,
    nodes: Mapping[str, ir.SourceNode | ir.TransformNode | ir.SinkNode],
    diagnostics: Diagnostics,
) -> None:
    reads_ = reads_of(target)
    for fixture in test.given:
        upstream = nodes.get(fixture.node)
        if fixture.node not in reads_ or upstream is None:
            hint = did_you_mean(fixture.node, reads_) or (
                f"`{target.name}` reads " + ", ".join(f"`{r}`" for r in reads_)
                if reads_
                else f"`{target.name}` reads no node"
            )
            diagnostics.report(
                "F0803", fixture.name_span, hint=hint, node=target.name, name=fixture.node
            )
            continue
        _check_columns(fixture, upstream, diagnostics)


def _check_columns(
    fixture: ir.Fixture,
    node: ir.SourceNode | ir.TransformNode | ir.SinkNode,
    diagnostics: Diagnostics,
) -> None:
    """Each column of `fixture` is one of `node`'s (its output), and each value fits."""
    if node.output is None:
        return  # its columns cannot be known offline (F0307 says so)
    known = {c.name.lower(): c for c in node.output}
    for index, (name, span) in enumerate(zip(fixture.columns, fixture.column_spans, strict=True)):
        column = known.get(name.lower())
        if column is None:
            names = [c.name for c in node.output]
            hint = did_you_mean(name, names) or "its columns: " + ", ".join(names)
            diagnostics.report("F0804", span, hint=hint, name=name, node=node.name)
            continue
        for row in fixture.rows:
            _check_value(row[index], column, node.name, diagnostics)
        for number, cells in enumerate(fixture.csv_rows, start=2):
            cell = cells[index]
            if cell is not None and _check_value(
                _cell_value(cell, column.type, span), column, node.name, diagnostics, line=number
            ):
                break  # one per column: a file of bad cells is one mistake


def _check_value(
    value: ir.Value,
    column: ir.Column,
    node: str,
    diagnostics: Diagnostics,
    *,
    line: int | None = None,
) -> bool:
    """Report a value that does not fit its column (`line`: of a CSV fixture's cell)."""
    problem = value_problem(column.type, value)
    if problem:
        hint = f"write a `{column.type}` value, or `null`"
        if line is not None:
            hint = f"line {line} of the file; write a `{column.type}` value, or leave it empty"
        diagnostics.report(
            "F0805",
            value.span,
            what=f"column `{column.name}` of `{node}`",
            type=column.type,
            detail=problem,
            hint=hint,
        )
    return bool(problem)


_NUMERIC = {"int", "integer", "smallint", "bigint", "float", "real", "double", "decimal", "numeric"}


def _cell_value(text: str, type_name: str, span: Span) -> ir.Value:
    """A CSV cell as the literal it would be written as for a column of `type_name`."""
    base = type_name.split("(")[0].strip().lower()
    if base in _NUMERIC:
        try:
            number = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            return ir.Str(value=text, span=span)
        return ir.Num(value=number, text=text, span=span)
    if base in ("boolean", "bool") and text.strip().lower() in ("true", "false"):
        return ir.Bool(value=text.strip().lower() == "true", span=span)
    return ir.Str(value=text, span=span)
