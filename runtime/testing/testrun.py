"""`flowc test`: run the `test` blocks of specs on fixture rows (docs/cli.md, `flowc test`).

For each test: every node the tested transform reads becomes a table holding the `given`
rows (typed as that node declares its columns; a column the rows leave out is NULL, a node
left out has no rows), the transform runs once on them, and its result is compared with the
`expected` rows. A SQL transform runs the query the compiler writes for the engine (without
`--profile`: in-memory DuckDB, whatever the pipeline's target; `--profile P`: the engine of
the node's connection in profile P, inside a transaction that is rolled back); a Python
block is called with the rows as its inputs, as `flowc run` calls it.

Comparison (in DuckDB, whatever engine ran the test): the expected values are cast to the
types of the result's columns, so `"2020-10-01"` equals a date and `2.5` a `decimal(10, 2)`;
only the columns `expected` names are compared; rows are compared as a multiset unless the
test says `ordered = true`; doubles agree when they do to 10 significant digits.
"""

from __future__ import annotations

import fnmatch
import math
import secrets
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
from flowc.compiler import ir
from flowc.compiler.analysis.testblocks import reads_of
from flowc.compiler.codegen.generate import Renderer
from flowc.compiler.diagnostics import Diagnostic, Diagnostics
from flowc.compiler.driver.check import Analysis, analyze, anchored, discover, display, load_project
from flowc.compiler.planning import expectations as checks
from flowc.compiler.planning.placement import DEFAULT_CONNECTION
from flowc.project import config
from flowc.project.errors import UsageError
from flowc.project.spans import Span
from flowc.runtime.engines.base import Engine, Query
from flowc.runtime.errors import StepError

Status = Literal["passed", "failed", "error"]
Cell = object
Row = tuple[Cell, ...]
_SIGNIFICANT = 10  # digits to which doubles must agree


@dataclass
class Changed:
    expected: Row
    actual: Row
    cells: list[str]  # the columns whose values differ


@dataclass
class RowDiff:
    columns: list[str]
    expected_rows: int
    actual_rows: int
    missing: list[Row] = field(default_factory=list)  # expected, not in the result
    unexpected: list[Row] = field(default_factory=list)  # in the result, not expected
    changed: list[Changed] = field(default_factory=list)  # a missing row paired with one found

    @property
    def empty(self) -> bool:
        return not (self.missing or self.unexpected or self.changed)


@dataclass
class Outcome:
    """How one test ended."""

    file: str
    test: str
    node: str
    span: Span
    status: Status
    seconds: float
    engine: str
    message: str = ""
    diff: RowDiff | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.file}::{self.test}"


@dataclass
class Report:
    outcomes: list[Outcome]
    diagnostics: list[Diagnostic]  # of specs with errors, whose tests did not run
    files: int
    seconds: float

    @property
    def ok(self) -> bool:
        spec_errors = any(d.severity == "error" for d in self.diagnostics)
        return not spec_errors and all(o.status == "passed" for o in self.outcomes)

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


@dataclass(frozen=True)
class Options:
    pattern: str | None = None
    profile: str | None = None  # None: in-memory DuckDB
    # also run the tested node's `expect` checks on its result, and the spec's checks on the
    # data built for the profile (`--profile`, else the default one)
    expect: bool = False


class _Session:
    """What the tests of one `flowc test` share: an in-memory DuckDB that each test uses in a
    transaction it rolls back, and a DuckDB connection that compares results."""

    def __init__(self) -> None:
        self._engine: Any = None
        self._comparer: duckdb.DuckDBPyConnection | None = None

    def engine(self) -> Engine:
        self._open()
        return self._engine  # type: ignore[no-any-return]

    def comparer(self) -> duckdb.DuckDBPyConnection:
        self._open()
        assert self._comparer is not None
        return self._comparer

    def _open(self) -> None:
        """One database for both: a DuckDB connection costs tens of milliseconds to open,
        a cursor on it (a connection of its own, to the same database) next to nothing."""
        from flowc.runtime.engines.duckdb import DuckDBEngine, default_memory_limit

        if self._engine is None:
            connection = duckdb.connect(":memory:", config={"memory_limit": default_memory_limit()})
            connection.execute("SET enable_progress_bar = false")  # it would print on stdout
            self._engine = DuckDBEngine(connection)
            self._comparer = connection.cursor()

    def close(self) -> None:
        if self._comparer is not None:
            self._comparer.close()
        if self._engine is not None:
            self._engine.close()


def run_tests(paths: Sequence[Path], options: Options) -> Report:
    """Run every test under `paths` that `options.pattern` selects."""
    session = _Session()
    try:
        return _run_all(paths, options, session)
    finally:
        session.close()


def _run_all(paths: Sequence[Path], options: Options, session: _Session) -> Report:
    started = time.perf_counter()
    files = discover(paths)
    outcomes: list[Outcome] = []
    found: list[Diagnostic] = []
    projects: dict[Path, Any] = {}
    for path in files:
        root = config.find_project_root(path)
        if root not in projects:
            projects[root] = load_project(root, options.profile, None)
            found += anchored(projects[root].diagnostics, root, display(path))
        project = projects[root]
        if any(d.severity == "error" for d in project.diagnostics):
            continue
        analysis, diagnostics = _analysis(path, project)
        found += diagnostics
        if analysis is not None:
            outcomes += _run_file(analysis, root, project.profiles, options, session)
        if analysis is not None and options.expect and project.profiles:
            outcomes += _built_data(analysis, root, project, options)
    return Report(
        outcomes,
        sorted(set(found), key=Diagnostic.sort_key),
        len(files),
        time.perf_counter() - started,
    )


def _analysis(path: Path, project: Any) -> tuple[Analysis | None, list[Diagnostic]]:
    """The checked spec; None (and the errors) when it has errors: its tests cannot run."""
    diagnostics = Diagnostics()
    file = display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        from flowc.project.spans import point

        diagnostics.report("F0107", point(file), path=file, reason=str(error))
        return None, list(diagnostics)
    analysis = analyze(text, file, project.scope, diagnostics)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors or analysis.spec.pipeline is None:
        return None, errors
    return analysis, []


def selected(name: str, file: str, pattern: str | None) -> bool:
    """`-k PATTERN`: a glob (`clean_*`) or a part of `FILE::TEST`.

    >>> selected("clean_drops_empty", "specs/a.flow", "drops")
    True
    >>> selected("clean_drops_empty", "specs/a.flow", "stats_*")
    False
    """
    if pattern is None:
        return True
    label = f"{file}::{name}"
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(label, pattern)
    return pattern in label


def _built_data(analysis: Analysis, root: Path, project: Any, options: Options) -> list[Outcome]:
    """`--expect`: the spec's `expect` checks on the data the pipeline built (testdata.py)."""
    from flowc.runtime.testing.testdata import check_built_data

    found = check_built_data(analysis, root, project.name, project.profiles[0])
    return [o for o in found if selected(o.test, o.file, options.pattern)]


def _run_file(
    analysis: Analysis,
    root: Path,
    profiles: list[config.Profile],
    options: Options,
    session: _Session,
) -> list[Outcome]:
    spec = analysis.spec
    return [
        _run_one(test, analysis, root, profiles, options, session)
        for test in spec.tests
        if selected(test.name, spec.file, options.pattern)
    ]


# --- one test ---------------------------------------------------------------------------------


@dataclass
class _Where:
    """Where a test runs: an engine, how SQL is written for it, what to say about it."""

    engine: Engine
    renderer: Renderer
    label: str
    notes: list[str]


def _run_one(
    test: ir.UnitTest,
    analysis: Analysis,
    root: Path,
    profiles: list[config.Profile],
    options: Options,
    session: _Session,
) -> Outcome:
    spec = analysis.spec
    assert test.node is not None and spec.pipeline is not None  # a checked spec
    node = spec.node(test.node.dotted)
    assert isinstance(node, ir.TransformNode)
    started = time.perf_counter()
    outcome = Outcome(spec.file, test.name, node.name, test.name_span, "error", 0.0, "")
    try:
        with _where(spec, node, profiles, options.profile, root, session) as where:
            outcome.engine, outcome.notes = where.label, where.notes
            actual = _result(test, node, analysis, root, where)
            if options.expect:
                outcome.notes += _expectations(node, actual, spec.pipeline.dialect, where)
        outcome.diff = compare(actual, test.expected, ordered=test.ordered, con=session.comparer())
        outcome.status = "passed" if outcome.diff.empty else "failed"
        if not outcome.diff.empty:
            outcome.message = _diff_summary(outcome.diff)
    except _Failed as failure:
        outcome.status, outcome.message = "failed", str(failure)
    except (StepError, duckdb.Error) as error:
        outcome.message = str(error)
    outcome.seconds = time.perf_counter() - started
    return outcome


class _Failed(Exception):
    """The test ran and its result is wrong in a way a row diff does not show."""


def _connection(spec: ir.Spec, node: ir.TransformNode) -> str:
    if node.target is not None:
        return node.target.dotted
    pipeline = spec.pipeline
    return pipeline.target.dotted if pipeline and pipeline.target else DEFAULT_CONNECTION


@contextmanager
def _where(
    spec: ir.Spec,
    node: ir.TransformNode,
    profiles: list[config.Profile],
    profile: str | None,
    root: Path,
    session: _Session,
) -> Iterator[_Where]:
    assert spec.pipeline is not None
    dialect = spec.pipeline.dialect
    params = {p.name: p.type for p in spec.pipeline.params}
    name = _connection(spec, node)
    chosen = profiles[0] if profiles else None
    connection = chosen.connections.get(name) if chosen else None
    kind = connection.type if connection else "duckdb"
    if profile is None or kind == "duckdb" or node.python is not None:
        notes = []
        if kind != "duckdb" and node.sql is not None and chosen is not None:
            notes.append(
                f"ran the SQL as compiled for DuckDB (in memory); `{name}` is {kind} in "
                f"profile `{chosen.name}`: `flowc test --profile {chosen.name}` runs it there"
            )
        elif dialect != "duckdb" and node.sql is not None:
            notes.append(f"ran the SQL, written in {dialect} SQL, as compiled for DuckDB")
        engine = session.engine()
        engine.begin()
        try:
            yield _Where(engine, Renderer(dialect, "duckdb", params), "duckdb (in memory)", notes)
        finally:
            if engine.in_transaction:
                engine.rollback()
        return
    assert chosen is not None and connection is not None
    yield from _on_profile(connection, chosen, name, dialect, params, root)


def _on_profile(
    connection: config.Connection,
    profile: config.Profile,
    name: str,
    dialect: str,
    params: Mapping[str, str],
    root: Path,
) -> Iterator[_Where]:
    """The profile's engine, the test's tables in a schema of their own, in a transaction
    that is rolled back: nothing of the test stays behind."""
    from flowc.runtime.engines import open_engine

    if connection.type != "postgres":
        raise UsageError(
            f"`flowc test --profile {profile.name}`: tests run on DuckDB and Postgres; "
            f"`{name}` is {connection.type} in that profile (run without --profile: DuckDB)"
        )
    fold = isinstance(connection.settings, config.PostgresSettings) and (
        connection.settings.fold_names
    )
    renderer = Renderer(dialect, "postgres", params, fold_names=fold)
    engine = open_engine(connection, root)
    try:
        engine.begin()
        stage = getattr(engine, "use_stage", None)
        if stage is not None:
            stage(f"_flowc_test_{secrets.token_hex(4)}")
        yield _Where(engine, renderer, f"postgres (profile `{profile.name}`)", [])
    finally:
        try:
            if engine.in_transaction:
                engine.rollback()
        finally:
            engine.close()


def _result(
    test: ir.UnitTest, node: ir.TransformNode, analysis: Analysis, root: Path, where: _Where
) -> pa.Table:
    spec = analysis.spec
    given = {f.node: f for f in test.given}
    reads = reads_of(node)
    nodes = spec.node_map()
    for upstream in reads:
        _load(nodes[upstream], given.get(upstream), where)
    if node.python is not None:
        from flowc.runtime.usercode import pyblocks  # pandas: only for tests of Python blocks

        inputs = {u: where.engine.read_batches(_table(nodes[u], where)) for u in reads}
        entry = f"{node.python.path}:{node.python.function}"
        return pyblocks.run_transform(
            root, entry, inputs, columns=node.columns, node=node.name
        ).read_all()
    return _run_sql(test, node, analysis, where)


def _run_sql(
    test: ir.UnitTest, node: ir.TransformNode, analysis: Analysis, where: _Where
) -> pa.Table:
    spec = analysis.spec
    assert spec.pipeline is not None
    renderer = where.renderer
    nodes = spec.node_map()
    reads = reads_of(node)
    refs = {u: (_table(nodes[u], where),) for u in reads}
    schemas = {}
    if renderer.target != spec.pipeline.dialect:
        schemas = {u: [(c.name, c.type) for c in nodes[u].output or ()] for u in reads}
    prepared = renderer.prepare(
        analysis.trees[node.name].copy(),
        refs,
        node.name,
        has_params=bool(node.parameters),
        schemas=schemas,
    )
    sql = renderer.query(node.name, prepared)
    problems = [p for p in renderer.problems if p.node == node.name]
    if problems or not sql:
        detail = problems[0].detail if problems else "no SQL"
        raise StepError(f"`{node.name}` cannot run on {where.label}: {detail}")
    values = parameter_values(spec.pipeline, test)
    used = {ref.dotted for ref in node.parameters}
    return where.engine.read_batches(
        Query(sql, {k: v for k, v in values.items() if k in used})
    ).read_all()


def parameter_values(pipeline: ir.Pipeline, test: ir.UnitTest) -> dict[str, object]:
    """The pipeline's parameter defaults, with the test's `params` over them, as text: the
    compiled SQL casts each placeholder to its parameter's declared type."""
    values = {p.name: _text(p.default) for p in pipeline.params}
    values.update({e.key: _text(e.value) for e in test.params})
    return dict(values)


def _text(value: ir.Value | None) -> str | None:
    """A literal as the text a column or parameter of any type is cast from."""
    if isinstance(value, ir.Bool):
        return "true" if value.value else "false"
    if isinstance(value, ir.Num):
        return value.text
    if isinstance(value, ir.Str):
        return value.value
    return None


# --- fixtures into tables ---------------------------------------------------------------------


def _table(node: ir.SourceNode | ir.TransformNode | ir.SinkNode, where: _Where) -> str:
    return where.renderer.name(node.name)


def _column_name(
    node: ir.SourceNode | ir.TransformNode | ir.SinkNode, name: str, r: Renderer
) -> str:
    sql = isinstance(node, ir.TransformNode) and node.sql is not None
    return r.output_name(name) if sql else r.name(name)


def _load(
    node: ir.SourceNode | ir.TransformNode | ir.SinkNode,
    fixture: ir.Fixture | None,
    where: _Where,
) -> None:
    """Node `node` as a table holding `fixture`'s rows, typed as the node declares."""
    renderer = where.renderer
    given = list(fixture.columns) if fixture else []
    texts = fixture_texts(fixture) if fixture else []
    columns = _typed_columns(node, fixture)
    if not columns:
        raise StepError(
            f"the columns of `{node.name}` are unknown offline: give its rows in the test"
        )
    table = _table(node, where)
    spelled = [(_column_name(node, n, renderer), t, False) for n, t in columns]
    for statement in renderer.create_columns((table,), spelled):
        where.engine.execute(statement)
    if not texts:
        return
    raw = f"_flowc_raw_{table}"
    arrays = {f"c{i}": pa.array([row[i] for row in texts], pa.string()) for i in range(len(given))}
    data = pa.table(arrays)
    where.engine.create_table(
        raw, pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
    )
    types = {n.lower(): t for n, t in columns}
    by_name = {n.lower(): _column_name(node, n, renderer) for n, _ in columns}
    targets = ", ".join(renderer.quoted((by_name[n.lower()],)) for n in given)
    casts = ", ".join(
        f"CAST({renderer.quoted((f'c{i}',))} AS {renderer.type(types[n.lower()])})"
        for i, n in enumerate(given)
    )
    try:
        where.engine.execute(
            f"INSERT INTO {renderer.quoted((table,))} ({targets}) "
            f"SELECT {casts} FROM {renderer.quoted((raw,))}"
        )
    except StepError as error:
        first = str(error).strip().split("\n")[0]
        raise StepError(
            f"the `given` rows of `{node.name}` do not fit its columns: {first}"
        ) from None
    where.engine.execute(f"DROP TABLE {renderer.quoted((raw,))}")


def fixture_texts(fixture: ir.Fixture) -> list[tuple[str | None, ...]]:
    """The fixture's rows as text (NULL: None), what every engine casts to any type."""
    if fixture.csv is not None:
        return list(fixture.csv_rows)
    return [tuple(_text(v) for v in row) for row in fixture.rows]


def _typed_columns(
    node: ir.SourceNode | ir.TransformNode | ir.SinkNode, fixture: ir.Fixture | None
) -> list[tuple[str, str]]:
    """(name, flow type) of the table standing for `node`: its declared columns (a type
    unknown offline taken from the fixture's values), else the fixture's columns."""
    guessed = {}
    if fixture is not None:
        for index, name in enumerate(fixture.columns):
            values = [row[index] for row in fixture.rows] if fixture.csv is None else []
            guessed[name.lower()] = _guess(values)
    if node.output is None:
        return [(n, guessed[n.lower()]) for n in (fixture.columns if fixture else ())]
    return [
        (c.name, guessed.get(c.name.lower(), "varchar") if c.type == "unknown" else c.type)
        for c in node.output
    ]


def _guess(values: list[ir.Value]) -> str:
    """The type a column of literals has: of its first non-null value (CSV cells: text)."""
    for value in values:
        if isinstance(value, ir.Bool):
            return "boolean"
        if isinstance(value, ir.Num):
            return "bigint" if isinstance(value.value, int) else "double"
        if isinstance(value, ir.Str):
            return "varchar"
    return "varchar"


# --- expect checks on the result --------------------------------------------------------------


def _expectations(
    node: ir.TransformNode, actual: pa.Table, dialect: str, where: _Where
) -> list[str]:
    """Run `node`'s `expect` checks on its result: a failing `error` one fails the test,
    a failing `warn` one is a note."""
    if not node.expectations:
        return []
    renderer = where.renderer
    table = f"_flowc_result_{node.name}"
    where.engine.create_table(
        table, pa.RecordBatchReader.from_batches(actual.schema, actual.to_batches())
    )
    notes = []
    for expectation in node.expectations:
        built = checks.check_query(expectation, node.name, dialect)
        if built is None:
            continue
        tree, others, values = built
        refs = {node.name: (table,), **{o: (renderer.name(o),) for o in others}}
        prepared = renderer.prepare(tree, refs, node.name, has_params=bool(values))
        sql = renderer.query(node.name, prepared)
        bound = dict(values)
        found = where.engine.read_batches(Query(sql, bound)).read_all().to_pylist()
        if not found:
            continue
        failures = int(found[0].get(checks.FAILURES) or len(found))
        text = f"expect {checks.describe(expectation.call)} failed: {failures} row(s)"
        if expectation.on_fail == "error":
            raise _Failed(text)
        notes.append(f"warning: {text}")
    return notes


# --- comparison -------------------------------------------------------------------------------


def compare(
    actual: pa.Table,
    expected: ir.Fixture | None,
    *,
    ordered: bool = False,
    con: duckdb.DuckDBPyConnection | None = None,
) -> RowDiff:
    """The differences between a node's result and the rows a test expects (compared on
    `con`, a DuckDB connection; None: one of its own)."""
    if expected is None:
        return RowDiff([], 0, actual.num_rows)
    names = {n.lower(): n for n in actual.column_names}
    lacking = [c for c in expected.columns if c.lower() not in names]
    if lacking:
        raise _Failed(
            f"the result has no column `{lacking[0]}`; its columns: "
            + ", ".join(actual.column_names)
        )
    picked = [names[c.lower()] for c in expected.columns]
    own = con is None
    con = duckdb.connect() if con is None else con
    try:
        got, want = _rows(con, actual.select(picked), fixture_texts(expected))
    finally:
        if own:
            con.close()
    diff = RowDiff(list(expected.columns), len(want), len(got))
    if ordered:
        _ordered_diff(diff, want, got)
    else:
        _unordered_diff(diff, want, got)
    return diff


def _rows(
    con: duckdb.DuckDBPyConnection, actual: pa.Table, texts: list[tuple[str | None, ...]]
) -> tuple[list[Row], list[Row]]:
    """The result's rows and the expected ones cast to the result's types, as Python values."""
    try:
        con.register("actual", actual)
        types = [row[1] for row in con.execute("DESCRIBE SELECT * FROM actual").fetchall()]
        quoted = [_quote(n) for n in actual.column_names]
        got = con.execute(f"SELECT {', '.join(quoted)} FROM actual").fetchall()
        if not texts:
            return [_normal(r) for r in got], []
        arrays = {
            f"c{i}": pa.array([row[i] for row in texts], pa.string()) for i in range(len(types))
        }
        con.register("wanted", pa.table(arrays))
        casts = ", ".join(f"CAST(c{i} AS {t})" for i, t in enumerate(types))
        try:
            want = con.execute(f"SELECT {casts} FROM wanted").fetchall()
        except duckdb.ConversionException as error:
            first = str(error).strip().split("\n")[0]
            raise _Failed(
                f"an expected value does not fit the result's column types: {first}"
            ) from None
        return [_normal(r) for r in got], [_normal(r) for r in want]
    finally:
        for view in ("actual", "wanted"):
            con.unregister(view)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _normal(row: tuple[Any, ...]) -> Row:
    return tuple(_cell(v) for v in row)


def _cell(value: Any) -> Cell:
    """A value comparable and hashable: doubles rounded, lists (and structs) as tuples."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{_SIGNIFICANT}g}")
    if isinstance(value, list):
        return tuple(_cell(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _cell(v)) for k, v in value.items())
    return value


def _unordered_diff(diff: RowDiff, want: list[Row], got: list[Row]) -> None:
    _pair(diff, _beyond(want, got), _beyond(got, want))


def _beyond(rows: list[Row], others: list[Row]) -> list[Row]:
    """The rows of `rows` that `others` does not hold (as many times), in their order."""
    left = Counter(rows) - Counter(others)
    found = []
    for row in rows:
        if left[row] > 0:
            left[row] -= 1
            found.append(row)
    return found


def _ordered_diff(diff: RowDiff, want: list[Row], got: list[Row]) -> None:
    for index in range(max(len(want), len(got))):
        expected = want[index] if index < len(want) else None
        actual = got[index] if index < len(got) else None
        if expected == actual:
            continue
        if expected is None:
            diff.unexpected.append(actual)  # type: ignore[arg-type]
        elif actual is None:
            diff.missing.append(expected)
        else:
            diff.changed.append(
                Changed(expected, actual, _differing(diff.columns, expected, actual))
            )


def _pair(diff: RowDiff, missing: list[Row], unexpected: list[Row]) -> None:
    """A missing row and a found one that agree on at least half the columns (and on one at
    least) are one changed row; the rest stay missing or unexpected."""
    left = list(unexpected)
    for row in missing:
        best = max(left, key=lambda other: _agreeing(row, other), default=None)
        if best is not None and 2 * _agreeing(row, best) >= len(row) and _agreeing(row, best):
            left.remove(best)
            diff.changed.append(Changed(row, best, _differing(diff.columns, row, best)))
        else:
            diff.missing.append(row)
    diff.unexpected.extend(left)


def _agreeing(a: Row, b: Row) -> int:
    return sum(1 for x, y in zip(a, b, strict=True) if x == y)


def _differing(columns: list[str], a: Row, b: Row) -> list[str]:
    return [c for c, x, y in zip(columns, a, b, strict=True) if x != y]


def _diff_summary(diff: RowDiff) -> str:
    parts = []
    for count, word in (
        (len(diff.missing), "missing"),
        (len(diff.unexpected), "unexpected"),
        (len(diff.changed), "changed"),
    ):
        if count:
            parts.append(f"{count} {word}")
    return f"expected {diff.expected_rows} row(s), got {diff.actual_rows}: " + ", ".join(parts)


def cell_text(value: Cell) -> str:
    """A cell as a test report shows it."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(cell_text(v) for v in value) + "]"
    return str(value)
