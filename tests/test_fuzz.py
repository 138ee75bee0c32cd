"""Property tests: whatever a .flow file holds, the analysis answers with diagnostics, never an
exception.

Four kinds of input go through every pass (`check.analyze`, in-process): arbitrary text, text
made of the language's own tokens, randomly built blocks of well-formed structure (which reach
the names, SQL, DAG, schema and parameter passes), and mutations of real specs (the projects
under `specs/` and the broken-spec corpus). Each must return, and every diagnostic must have a
known code, a 1-based position inside the file and a message.

The `default` hypothesis profile (tests/conftest.py) runs a few thousand examples in all; the
tests marked `slow` run the same properties on larger inputs, with the `slow` profile.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from flowc.compiler import render, vocabulary
from flowc.compiler.analysis import project_file
from flowc.compiler.analysis.bind import Scope
from flowc.compiler.codes import CODES
from flowc.compiler.diagnostics import Diagnostics
from flowc.compiler.driver.check import analyze
from flowc.project import config
from flowc.project.spans import Span
from hypothesis import given
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
CONNECTIONS = {"dev": frozenset({"local", "warehouse"})}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def scope_for(root: Path) -> Scope:
    return Scope(root=root, connections=CONNECTIONS)


def check_text(
    text: str, file: str = "fuzz.flow", root: Path = REPO / "specs" / "green_taxi"
) -> None:
    """Analyze `text`; every diagnostic must be well-formed and printable in every output form
    (any exception fails the test)."""
    diagnostics = Diagnostics()
    analyze(text, file, scope_for(root), diagnostics)
    lines = text.count("\n") + 1
    found = diagnostics.sorted()
    source = text.split("\n")
    for output in (
        render.render_text(found, lambda shown: source if shown == file else None),
        render.render_json(found, 1),
        render.render_github(found),
    ):
        output.encode("utf-8")  # what the CLI writes: a lone surrogate cannot be printed
    for diagnostic in found:
        assert diagnostic.code in CODES, diagnostic
        assert diagnostic.severity == CODES[diagnostic.code].severity, diagnostic
        assert diagnostic.message.strip(), diagnostic
        _check_span(diagnostic.span, file, lines)
        for note in diagnostic.notes:
            assert note.message.strip(), diagnostic
            _check_span(note.span, file, lines)


def _check_span(span: Span, file: str, lines: int) -> None:
    assert span.line >= 1 and span.col >= 1, span
    assert (span.end_line, span.end_col) >= (span.line, span.col), span
    if span.file == file:
        assert span.line <= lines, span


# --- seeds: real specs ------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    file: str  # relative to the repository, as `flowc check` run there shows it
    text: str
    root: Path


def seeds(folder: Path) -> list[Seed]:
    found = []
    for path in sorted(folder.rglob("*.flow")):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        root = config.find_project_root(path)
        found.append(Seed(path.relative_to(REPO).as_posix(), text, root.resolve()))
    return found


SPECS = seeds(REPO / "specs")
CORPUS = seeds(REPO / "tests" / "broken")
TOMLS = sorted(
    {p.read_text(encoding="utf-8") for p in REPO.glob("specs/*/flow.toml")}
    | {p.read_text(encoding="utf-8") for p in (REPO / "tests" / "broken").glob("*/flow.toml")}
)

# --- tokens -----------------------------------------------------------------------------------

WORDS = sorted(
    {
        *vocabulary.BLOCK_KINDS,
        *(name for names in vocabulary.ATTRIBUTES.values() for name in names),
        *(name for names in vocabulary.SUB_BLOCKS.values() for name in names),
        *(word for words in vocabulary.ENUMS.values() for word in words),
        *vocabulary.COLUMN_TYPES,
        *vocabulary.SOURCE_KINDS,
        *vocabulary.SINK_KINDS,
        *vocabulary.CHECKS,
        *vocabulary.FIXTURE_KINDS,
        *vocabulary.DIALECTS,
        "file",
        "true",
        "false",
        "null",
        "not",
        "header",
        "delimiter",
        "format",
        "partition_by",
        "min",
        "max",
        "trips",
        "clean_trips",
        "zones",
        "a",
        "b",
        "local",
        "warehouse",
        "run_date",
        "VendorID",
        "passenger_count",
    }
)
SQL_WORDS = (
    "SELECT", "*", "FROM", "WHERE", "JOIN", "LEFT JOIN", "ON", "USING", "GROUP BY", "ORDER BY",
    "HAVING", "LIMIT", "AS", "WITH", "UNION ALL", "DISTINCT", "(", ")", ",", ".", "=", ">", "<=",
    "+", "AND", "OR", "NOT", "IN", "IS NULL", "NULL", "CAST(", "AS DATE)", "COUNT(*)", "SUM(",
    "OVER (PARTITION BY", "QUALIFY", "EXCLUDE", "CASE WHEN", "THEN", "ELSE", "END", "EXISTS",
    ":run_date", ":x", "@x", "$1", "?", "'text'", '"Quoted"', "1", "2.5", ";", "--c\n", "\n",
    "trips", "clean_trips", "a", "b", "t", "id", "amount", "VendorID", "passenger_count",
    "trips.id", "range(3)", "read_csv('x.csv')", "unnest([1, 2])", "INSERT INTO", "DELETE",
    "CREATE TABLE", "VALUES", "UPDATE", "SET", "/*", "*/",
)  # fmt: skip
PUNCTUATION = ("{", "}", "(", ")", "[", "]", "=", ",", ".", "-", ":", "'", "\\", '"', '"""', "#")

names = st.one_of(st.sampled_from(WORDS), st.from_regex(IDENTIFIER, fullmatch=True))
string_bodies = st.lists(
    st.one_of(
        st.text(max_size=4),
        st.sampled_from(["\\n", '\\"', "\\\\", "\\u00e9", "\\ud800", "\\udfff", "\\q", "\\"]),
    ),
    max_size=4,
).map("".join)
strings = string_bodies.map(lambda body: f'"{body}"')
sql_texts = st.lists(
    st.one_of(st.sampled_from(SQL_WORDS), names, st.text(max_size=3)), max_size=25
).map(" ".join)
raw_strings = st.one_of(sql_texts, st.text(max_size=30)).map(lambda body: f'"""{body}"""')
numbers = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(["3.5", "1e9", "-0", "1e999", "-2.5e400", "99999999999999999999999"]),
)
comments = st.text(max_size=10).map(lambda body: "#" + body.replace("\n", " ") + "\n")
tokens = st.one_of(
    names, strings, raw_strings, numbers, st.sampled_from(PUNCTUATION), comments, st.just("\n")
)
separators = st.sampled_from(["", " ", "  ", "\n", "\n  ", "\t"])
token_texts = st.lists(st.tuples(tokens, separators), max_size=80).map(
    lambda pairs: "".join(token + separator for token, separator in pairs)
)

# --- well-formed blocks -----------------------------------------------------------------------


def _call(parts: tuple[str, list[str]]) -> str:
    return f"{parts[0]}({', '.join(parts[1])})"


def _map(entries: list[tuple[str, str]]) -> str:
    return "{ " + ", ".join(f"{key} = {value}" for key, value in entries) + " }"


scalars = st.one_of(
    strings,
    raw_strings,
    numbers,
    st.sampled_from(["true", "false", "null"]),
    names,
    st.tuples(names, names).map(".".join),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.tuples(
            names,
            st.lists(
                st.one_of(inner, st.tuples(names, inner).map(lambda kv: f"{kv[0]} = {kv[1]}")),
                max_size=4,
            ),
        ).map(_call),
        st.lists(st.tuples(names, inner), max_size=3).map(_map),
    ),
    max_leaves=5,
)
keywords = st.tuples(names, values).map(lambda kv: f"{kv[0]} = {kv[1]}")
calls = st.tuples(names, st.lists(st.one_of(values, keywords), max_size=4)).map(_call)
type_refs = st.tuples(
    names, st.lists(st.one_of(st.integers(0, 40).map(str), numbers), max_size=3)
).map(lambda t: t[0] + (f"({', '.join(t[1])})" if t[1] else ""))
declarations = st.tuples(names, type_refs, st.booleans(), st.one_of(st.none(), values)).map(
    lambda d: f"{d[0]} {d[1]}" + (" not null" if d[2] else "") + (f" = {d[3]}" if d[3] else "")
)
attributes = keywords
entries = st.recursive(
    st.one_of(attributes, declarations, calls),
    lambda inner: st.tuples(names, st.lists(inner, max_size=4)).map(
        lambda b: b[0] + " {\n    " + "\n    ".join(b[1]) + "\n  }"
    ),
    max_leaves=4,
)
blocks = st.tuples(
    st.one_of(st.sampled_from(vocabulary.BLOCK_KINDS), names), names, st.lists(entries, max_size=5)
).map(lambda b: f"{b[0]} {b[1]} {{\n  " + "\n  ".join(b[2]) + "\n}\n")
block_texts = st.lists(blocks, max_size=4).map("\n".join)

# --- plausible specs: known kinds, attributes, columns and SQL over the file's own nodes -------

NODES = ("trips", "zones", "a", "b", "c")
COLUMNS = ("id", "amount", "zone_id", "name", "VendorID", "day", "x")
node_names = st.sampled_from(NODES)
column_names = st.sampled_from(COLUMNS)


def _join(parts: tuple[str, str, str, str]) -> str:
    left, kind, right, column = parts
    if kind == "USING":
        return f"{left} JOIN {right} USING ({column})"
    return f"{left} {kind} {right} ON {left}.{column} = {right}.{column}"


select_items = st.lists(
    st.one_of(
        st.just("*"),
        column_names,
        st.tuples(node_names, column_names).map(".".join),
        st.tuples(column_names, column_names).map(lambda c: f"{c[0]} AS {c[1]}"),
        st.sampled_from(
            [
                "COUNT(*) AS n",
                "SUM(amount) AS total",
                "CAST(day AS DATE) AS d",
                ":run_date AS p",
                "* EXCLUDE (amount)",
                "* REPLACE (amount * 2 AS amount)",
                "ROW_NUMBER() OVER (PARTITION BY id ORDER BY amount) AS r",
                "trips.*",
                "s.*",
                '"Id"',
                "(SELECT MAX(id) FROM zones) AS m",
                "EXISTS (SELECT 1 FROM zones WHERE zones.id = trips.id) AS e",
                "COLUMNS('a.*')",
                "STRUCT_PACK(a := 1) AS st",
                "st.a",
                "UNNEST([1, 2]) AS u",
                "DISTINCT id",
                "CASE WHEN amount > 0 THEN name ELSE NULL END AS c",
            ]
        ),
    ),
    min_size=1,
    max_size=4,
).map(", ".join)
from_clauses = st.one_of(
    node_names,
    st.tuples(
        node_names, st.sampled_from(["JOIN", "LEFT JOIN", "USING"]), node_names, column_names
    ).map(_join),
    st.sampled_from(
        [
            "(SELECT * FROM trips) AS s",
            "range(3) AS r(n)",
            "trips AS t, zones",
            "trips AS t(a, b)",
            "trips NATURAL JOIN zones",
            "trips CROSS JOIN LATERAL (SELECT t.id) AS l",
            "(VALUES (1, 'a'), (2, 'b')) AS v(id, name)",
            "trips, UNNEST([1, 2]) AS u(n)",
            'read_csv("data/x.csv")',
            "trips AS a JOIN trips AS b ON a.id = b.id",
            "w",
            "trips POSITIONAL JOIN zones",
            "trips ASOF JOIN zones ON trips.id >= zones.id",
        ]
    ),
)
where_clauses = st.one_of(
    st.just(""),
    column_names.map(lambda c: f"WHERE {c} > 0"),
    st.sampled_from(["WHERE day >= :run_date", "WHERE id IN (SELECT id FROM zones)"]),
)
tails = st.sampled_from(
    [
        "",
        "GROUP BY 1",
        "GROUP BY id",
        "GROUP BY ALL",
        "GROUP BY ROLLUP (id, name)",
        "ORDER BY 1 LIMIT 3",
        "ORDER BY total DESC",
        "QUALIFY n > 1",
        "HAVING COUNT(*) > 1",
        "WINDOW w AS (PARTITION BY id)",
    ]
)
queries = st.tuples(select_items, from_clauses, where_clauses, tails).map(
    lambda q: f"SELECT {q[0]}\nFROM {q[1]}\n{q[2]} {q[3]}"
)
sql_bodies = st.one_of(
    queries,
    st.tuples(queries, queries).map(lambda q: f"WITH w AS (\n{q[0]}\n)\n{q[1]}"),
    st.tuples(queries, queries).map(lambda q: f"{q[0]}\nUNION ALL\n{q[1]}"),
    st.tuples(queries, queries).map(lambda q: f"{q[0]}\nUNION ALL BY NAME\n{q[1]}"),
    st.tuples(node_names, queries).map(
        lambda q: f"WITH {q[0]} AS (\n{q[1]}\n)\nSELECT * FROM {q[0]}"
    ),
    st.tuples(queries, queries).map(
        lambda q: f"WITH RECURSIVE w(n) AS (\n{q[0]}\nUNION ALL\nSELECT n + 1 FROM w\n)\n{q[1]}"
    ),
    sql_texts,
)
column_lists = st.lists(column_names, min_size=1, max_size=3, unique=True).map(", ".join)
checks = st.one_of(
    column_lists.map(lambda c: f"not_null({c})"),
    column_lists.map(lambda c: f"unique({c})"),
    column_names.map(lambda c: f"accepted_values({c}, [1, 2])"),
    st.sampled_from(["row_count(min = 1)", "row_count(max = 10, on_fail = warn)"]),
    st.tuples(column_names, sql_texts).map(lambda c: f'check("{c[0]} > 0 {c[1][:20]}")'),
    st.tuples(column_names, node_names, column_names).map(
        lambda r: f"relationship({r[0]}, {r[1]}.{r[2]})"
    ),
)
expects = st.lists(checks, max_size=3).map(
    lambda c: "  expect {\n    " + "\n    ".join(c) + "\n  }"
)
column_blocks = st.lists(
    st.tuples(column_names, st.sampled_from(vocabulary.COLUMN_TYPES), st.booleans()),
    max_size=5,
).map(
    lambda cols: (
        "  columns {\n"
        + "".join(f"    {n} {t}{' not null' if nn else ''}\n" for n, t, nn in cols)
        + "  }"
    )
)
sources = st.sampled_from(
    [
        'from = csv("data/green_tripdata_2020-1*.csv.gz", header = true)',
        'from = csv("out/daily_stats.csv")',
        'from = table(local, "main.zones")',
        'from = table(warehouse, "public.zones")',
        'from = http("https://example.org/x.csv", format = "csv")',
        'from = parquet("data/*.parquet")',
        'python = "blocks/rename.py:to_snake_case"',
        'python = "blocks/\\u00e9t\\ud83d.py:load"',
    ]
)
materializations = st.sampled_from(
    ["", "materialize = table", "materialize = incremental\n  unique_key = [id]"]
)
sinks = st.tuples(
    node_names,
    st.sampled_from(
        [
            'to = csv("out/x.csv")',
            'to = parquet("out/x/", partition_by = [day])',
            'to = table(warehouse, "public.x")\n  mode = merge\n  key = [id]',
        ]
    ),
)


def _node(kind: str, name: str, body: list[str]) -> str:
    return f"{kind} {name} {{\n  " + "\n".join(part for part in body if part) + "\n}\n"


nodes = st.one_of(
    st.tuples(node_names, sources, column_blocks, expects).map(
        lambda n: _node("source", n[0], [n[1], n[2], n[3]])
    ),
    st.tuples(node_names, sql_bodies, materializations, expects).map(
        lambda n: _node("transform", n[0], [f'sql = """\n{n[1]}\n"""', n[2], n[3]])
    ),
    st.tuples(node_names, st.lists(node_names, max_size=2), column_blocks).map(
        lambda n: _node(
            "transform",
            n[0],
            ['python = "blocks/rename.py:to_snake_case"', f"inputs = [{', '.join(n[1])}]", n[2]],
        )
    ),
    st.tuples(st.sampled_from(["out", "out2"]), sinks).map(
        lambda n: _node("sink", n[0], [f"input = {n[1][0]}", n[1][1]])
    ),
)
pipelines = st.tuples(
    st.sampled_from(vocabulary.DIALECTS), st.sampled_from(["local", "warehouse"]), st.booleans()
).map(
    lambda p: (
        f'pipeline p {{\n  dialect = "{p[0]}"\n  target = {p[1]}\n'
        + ('  params {\n    run_date date = "2020-10-01"\n  }\n' if p[2] else "")
        + "}\n"
    )
)
plausible_specs = st.tuples(pipelines, st.lists(nodes, min_size=1, max_size=7)).map(
    lambda s: s[0] + "\n" + "\n".join(s[1])
)

# --- mutations ----------------------------------------------------------------------------------

Mutation = Callable[[st.DrawFn, str], str]


def _index(draw: st.DrawFn, size: int) -> int:
    return draw(st.integers(0, max(size - 1, 0)))


def delete_line(draw: st.DrawFn, text: str) -> str:
    lines = text.split("\n")
    del lines[_index(draw, len(lines))]
    return "\n".join(lines)


def duplicate_line(draw: st.DrawFn, text: str) -> str:
    lines = text.split("\n")
    at = _index(draw, len(lines))
    lines.insert(at, lines[at])
    return "\n".join(lines)


def swap_lines(draw: st.DrawFn, text: str) -> str:
    lines = text.split("\n")
    first, second = _index(draw, len(lines)), _index(draw, len(lines))
    lines[first], lines[second] = lines[second], lines[first]
    return "\n".join(lines)


def delete_chars(draw: st.DrawFn, text: str) -> str:
    at = _index(draw, len(text))
    return text[:at] + text[at + draw(st.integers(1, 12)) :]


def insert_char(draw: st.DrawFn, text: str) -> str:
    at = draw(st.integers(0, len(text)))
    char = draw(st.one_of(st.sampled_from(PUNCTUATION), st.characters()))
    return text[:at] + char + text[at:]


def insert_token(draw: st.DrawFn, text: str) -> str:
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.one_of(tokens, st.sampled_from(SQL_WORDS))) + text[at:]


def replace_identifier(draw: st.DrawFn, text: str) -> str:
    found = list(IDENTIFIER.finditer(text))
    if not found:
        return text
    match = found[_index(draw, len(found))]
    other = draw(st.one_of(names, st.sampled_from([m[0] for m in found])))
    return text[: match.start()] + other + text[match.end() :]


def truncate(draw: st.DrawFn, text: str) -> str:
    return text[: draw(st.integers(0, len(text)))]


MUTATIONS: tuple[Mutation, ...] = (
    delete_line,
    duplicate_line,
    swap_lines,
    delete_chars,
    insert_char,
    insert_token,
    replace_identifier,
    truncate,
)


def mutants(pool: list[Seed], most: int) -> st.SearchStrategy[tuple[Seed, str]]:
    @st.composite
    def mutant(draw: st.DrawFn) -> tuple[Seed, str]:
        seed = draw(st.sampled_from(pool))
        text = seed.text
        for _ in range(draw(st.integers(1, most))):
            text = draw(st.sampled_from(MUTATIONS))(draw, text)
        return seed, text

    return mutant()


# --- the properties ---------------------------------------------------------------------------


def test_the_seeds_are_there() -> None:
    assert len(SPECS) >= 2
    assert len(CORPUS) >= 40


@given(text=st.text(max_size=200))
def test_random_text(text: str) -> None:
    check_text(text)


@given(text=token_texts)
def test_token_soup(text: str) -> None:
    check_text(text)


@given(text=block_texts)
def test_random_blocks(text: str) -> None:
    check_text(text)


@given(text=plausible_specs)
def test_plausible_specs(text: str) -> None:
    check_text(text)


@given(mutant=mutants(SPECS, 3))
def test_mutated_specs(mutant: tuple[Seed, str]) -> None:
    seed, text = mutant
    check_text(text, seed.file, seed.root)


@given(mutant=mutants(CORPUS, 2))
def test_mutated_broken_corpus(mutant: tuple[Seed, str]) -> None:
    seed, text = mutant
    check_text(text, seed.file, seed.root)


def check_flow_toml(text: str, profile: str | None, env: dict[str, str]) -> None:
    """Load a project whose flow.toml is `text`: only diagnostics, each well-formed."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "flow.toml").write_text(text, encoding="utf-8")
        _config, _profiles, diagnostics = project_file.load_project(root, profile=profile, env=env)
        lines = text.count("\n") + 1
        for diagnostic in diagnostics:
            assert diagnostic.code in CODES, diagnostic
            assert diagnostic.message.strip(), diagnostic
            file = diagnostic.span.file
            _check_span(diagnostic.span, file, lines if file.endswith("flow.toml") else 10**9)
            assert "hunter2" not in diagnostic.message + (diagnostic.hint or ""), diagnostic


def toml_mutants(most: int) -> st.SearchStrategy[str]:
    @st.composite
    def mutant(draw: st.DrawFn) -> str:
        text = draw(st.sampled_from(TOMLS))
        for _ in range(draw(st.integers(1, most))):
            text = draw(st.sampled_from(MUTATIONS))(draw, text)
        return text

    return mutant()


profiles = st.sampled_from([None, "all", "dev", "prod", "nope"])
environments = st.dictionaries(
    st.sampled_from(["POSTGRES_HOST", "POSTGRES_PORT", "PG_URL", "GCP_PROJECT", "PG_PASSWORD"]),
    st.sampled_from(["", "localhost", "5432", "x:y", "postgresql://u:hunter2@h/db", "${X}"]),
)


@given(text=toml_mutants(3), profile=profiles, env=environments)
def test_mutated_flow_toml(text: str, profile: str | None, env: dict[str, str]) -> None:
    check_flow_toml(text, profile, env)


# --- slow tier: the same properties on larger inputs ------------------------------------------


@pytest.mark.slow
@given(text=st.text(max_size=2000))
def test_random_text_slow(text: str) -> None:
    check_text(text)


@pytest.mark.slow
@given(text=st.lists(token_texts, max_size=5).map("\n".join))
def test_token_soup_slow(text: str) -> None:
    check_text(text)


@pytest.mark.slow
@given(text=st.lists(block_texts, max_size=4).map("\n".join))
def test_random_blocks_slow(text: str) -> None:
    check_text(text)


@pytest.mark.slow
@given(text=st.tuples(plausible_specs, plausible_specs).map("\n".join))
def test_plausible_specs_slow(text: str) -> None:
    check_text(text)


@pytest.mark.slow
@given(mutant=mutants(SPECS, 8))
def test_mutated_specs_slow(mutant: tuple[Seed, str]) -> None:
    seed, text = mutant
    check_text(text, seed.file, seed.root)


@pytest.mark.slow
@given(mutant=mutants(CORPUS, 6))
def test_mutated_broken_corpus_slow(mutant: tuple[Seed, str]) -> None:
    seed, text = mutant
    check_text(text, seed.file, seed.root)


@pytest.mark.slow
@given(text=toml_mutants(8), profile=profiles, env=environments)
def test_mutated_flow_toml_slow(text: str, profile: str | None, env: dict[str, str]) -> None:
    check_flow_toml(text, profile, env)
