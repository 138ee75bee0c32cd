"""Code generation: SQL text for one target dialect, from the checked trees, with sqlglot.

A `Renderer` turns the trees of the spec's dialect into statements of the target connection's
dialect. Everything it writes follows one identifier policy (docs/engines.md):

- every identifier is quoted, so reserved words and mixed case survive every engine;
- names are spelled as the engine of the *spec's* dialect names them, and on a Postgres
  target, where flowc creates tables with the declared names unquoted (compiler/analysis/schema.py),
  names from a case-insensitive dialect (DuckDB, BigQuery) are folded to lower case: a source
  column declared `VendorID` is `"VendorID"` on DuckDB, `` `VendorID` `` on BigQuery and
  `"vendorid"` on Postgres, and SQL that names it `vendorid` or `VendorID` finds it on all three;
- a table name that refers to a node becomes the node's relation: its table (`"trips"`), its
  external name (`"public"."taxi_zones"`), or the CTE of an ephemeral transform fused in.

Parameters are bound, never pasted: `:run_date` becomes `CAST($run_date AS DATE)` on DuckDB,
`CAST(%(run_date)s AS DATE)` on Postgres (psycopg2's pyformat; every other `%` in the text is
doubled, so the runtime always executes Postgres SQL with a parameter mapping) and
`CAST(@run_date AS DATE)` on BigQuery (named query parameters).

Trees are rewritten in place and then generated (`copy=False`): the caller passes trees it owns
(a copy, or the analysis' own trees when nothing reads them afterwards). A construct that the
target cannot express is a `Problem` positioned in the tree's SQL text.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

from flowc.compiler.analysis.identifiers import declared_key, identifier_key
from flowc.compiler.analysis.schema import ALIAS_CLAUSES, ALIAS_REFERENCE, CLAUSE_WORDS, RESOLVED
from flowc.compiler.analysis.sql_parse import CTE_REFERENCE
from flowc.compiler.analysis.tables import table_parts
from flowc.compiler.codegen import builtins
from flowc.compiler.codegen.annotate import Schemas
from flowc.compiler.codegen.decorrelate import decorrelate
from flowc.compiler.codegen.rewrites.context import Refusal
from flowc.compiler.codegen.rewrites.rewrite import rewrite
from flowc.compiler.plan import SINCE
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel, SqlglotError, UnsupportedError
from sqlglot.generator import Generator

Parts = tuple[str, ...]  # a relation name: ("trips",), ("public", "taxi_zones")

PLACEHOLDERS = {"duckdb": "$name", "postgres": "%(name)s", "bigquery": "@name"}
_MARK = "flowcparam_"  # Postgres placeholders are marked while `%` is escaped
_PLACEHOLDER = {"duckdb": "${}", "postgres": "%({})s", "bigquery": "@{}"}
_ENGINES = {"duckdb": "DuckDB", "postgres": "Postgres", "bigquery": "BigQuery"}


@dataclass(frozen=True)
class Layout:
    """A table's physical layout clauses (`sql`), or why the target cannot have them."""

    sql: str = ""
    problem: str | None = None


@dataclass(frozen=True)
class Problem:
    """Something the target cannot express, at offsets `start`..`end` of `node`'s SQL text
    (`start` None: somewhere in it)."""

    node: str
    detail: str
    start: int | None = None
    end: int = 0
    hint: str | None = None
    # A construct without a position of its own (`GROUP BY ALL`) is found by its words: the
    # first match of `find` in the text from `start` on (with `find_last`: the last match in
    # the text before `end`).
    find: str | None = None
    find_last: bool = False


class Renderer:
    """SQL in `target` from trees written in `source` (the spec's dialect).

    >>> import sqlglot
    >>> r = Renderer("duckdb", "postgres", {"day": "date"})
    >>> tree = sqlglot.parse_one("SELECT VendorID FROM Trips WHERE d >= :day", read="duckdb")
    >>> print(r.query("x", r.prepare(tree, {"trips": ("trips",)})))
    SELECT
      "vendorid"
    FROM "trips" AS "trips"
    WHERE
      "d" >= CAST(%(day)s AS DATE)
    """

    def __init__(
        self,
        source: str,
        target: str,
        params: Mapping[str, str],
        *,
        fold_names: bool = False,
    ) -> None:
        self.source = source
        self.target = target
        self.params = dict(params)
        # `fold_names` (a Postgres connection's setting): every name in lower case, as Postgres
        # names unquoted ones; otherwise names keep their spelling on every engine
        self.fold_target = fold_names and target == "postgres"
        self.fold_quoted = self.fold_target and source != "postgres"
        # Postgres compares quoted names exactly, BigQuery names a result column as the query
        # spells the reference: resolved columns are written as their definitions spell them
        self.respell = target != "duckdb" and not self.fold_quoted
        # table aliases and CTE names compare ignoring case in DuckDB and BigQuery SQL: on
        # Postgres, where quoted names are exact, they are all written in lower case
        self.fold_aliases = target == "postgres" and source != "postgres" and not self.fold_quoted
        self.generator = _generator(target, normalize=source == "postgres" or self.fold_quoted)
        self.problems: list[Problem] = []
        self.bound: set[str] = set(self.params)  # the parameter names placeholders use
        self.refused: set[int] = set()  # ids of the nodes refused already, reported once
        kinds: tuple[type[exp.Expr], ...] = (exp.Table, exp.Placeholder, exp.Parameter)
        if self.fold_quoted:
            kinds += (exp.Identifier,)
        if self.respell:
            kinds += (exp.Join,)
        if self.fold_aliases:
            kinds += (exp.TableAlias,)
        if target != "duckdb":
            kinds += (exp.Star, exp.Lambda, exp.Column, *_LACKING)
        self.kinds = kinds

    # --- names

    def name(self, declared: str) -> str:
        """The engine's name for a name declared in the .flow file (it counts as unquoted)."""
        return declared.lower() if self.fold_target or self.source == "postgres" else declared

    def output_name(self, name: str) -> str:
        """The engine's name for a column a query outputs (named under the spec's dialect)."""
        return name.lower() if self.fold_quoted else name

    def parts(self, written: str) -> Parts:
        """A qualified name written in a string (`"ny_taxi.green_taxi"`), as the spec's dialect
        reads it, spelled for the target."""
        parts = table_parts(written, self.source)
        if isinstance(parts, str):  # reported by the table-names pass (F0313)
            return (written,)
        return tuple(self._spelled(i) for i in parts)

    def _spelled(self, ident: exp.Identifier) -> str:
        if ident.quoted and self.source == "postgres":
            return str(ident.name)
        if ident.quoted and not self.fold_quoted:
            return str(ident.name)
        return self.name(ident.name)

    def _alias(self, name: str) -> str:
        return name.lower() if self.fold_aliases else name

    def quoted(self, parts: Parts) -> str:
        return ".".join(self.generator.generate(_ident(p), copy=False) for p in parts)

    # --- queries

    def prepare(
        self,
        tree: exp.Query,
        refs: Mapping[str, Parts],
        node: str = "",
        *,
        has_params: bool = True,
        schemas: Schemas | None = None,
    ) -> exp.Query:
        """Rewrite `tree` (node `node`'s query) in place for the target: constructs the
        target lacks said in its terms (`compiler/codegen/rewrite.py`; `schemas`: the columns of the
        nodes it reads), node references become `refs[node]`, parameters bound
        placeholders, quoted names folded where the policy says; what the target cannot
        express is added to `problems`."""
        if not has_params and self._resolves_as_written(refs):
            return tree
        if self.target == "postgres":
            decorrelate(tree)
        for refusal in rewrite(tree, self.source, self.target, schemas or {}):
            self.problems.append(self._refused(node, refusal))
        keys = {declared_key(n, self.source, table=True): parts for n, parts in refs.items()}
        for part in list(tree.find_all(*self.kinds)):
            if isinstance(part, exp.Table):
                self._table(part, keys)
            elif isinstance(part, exp.Identifier):
                if part.quoted:
                    part.set("this", part.name.lower())
            elif isinstance(part, exp.Star | exp.Lambda):
                self._unsupported(node, part)
            elif isinstance(part, exp.Column):
                self._column(node, part)
            elif isinstance(part, exp.TableAlias):
                self._table_alias(part)
            elif isinstance(part, exp.Join):
                self._using(part)
                if isinstance(part, _LACKING):
                    self._lacking(node, part)
            elif isinstance(part, _LACKING):
                self._lacking(node, part)
            elif part.this and (isinstance(part, exp.Placeholder) or self.source == "bigquery"):
                part.replace(self.parameter(part.name))
        return tree

    def _column(self, node: str, column: exp.Column) -> None:
        self._alias_reference(node, column)
        if not self.respell:
            return
        resolved = column.meta.get(RESOLVED)
        if resolved is not None:
            column.set("this", _ident(resolved))
        qualifier = column.args.get("table")
        if self.fold_aliases and isinstance(qualifier, exp.Identifier):
            column.set("table", _ident(qualifier.name.lower()))

    def _table_alias(self, alias: exp.TableAlias) -> None:
        ident = alias.this
        if isinstance(ident, exp.Identifier):
            alias.set("this", _ident(ident.name.lower()))

    def _using(self, join: exp.Join) -> None:
        names = join.args.get("using")
        if not names:
            return
        spelled = [
            _ident(n.meta[RESOLVED]) if isinstance(n, exp.Identifier) and RESOLVED in n.meta else n
            for n in names
        ]
        join.set("using", spelled)

    def _resolves_as_written(self, refs: Mapping[str, Parts]) -> bool:
        """DuckDB to DuckDB, every node read under its own name: DuckDB matches table and CTE
        names ignoring case, quoted or not, so the tree needs no rewrite (a fast path: the
        walk costs about as much as generating the SQL)."""
        if self.source != "duckdb" or self.target != "duckdb":
            return False
        return all(len(p) == 1 and p[0].lower() == n.lower() for n, p in refs.items())

    def _table(self, table: exp.Table, keys: Mapping[str, Parts]) -> None:
        ident = table.this
        if not isinstance(ident, exp.Identifier) or table.args.get("db"):
            return
        if table.meta.get(CTE_REFERENCE):
            if self.fold_aliases:  # the query's own CTE, whatever node shares its name
                table.set("this", _ident(ident.name.lower()))
            return
        key = identifier_key(ident.name, quoted=ident.quoted, dialect=self.source, table=True)
        parts = keys.get(key)
        if parts is None:
            return
        written = self._alias(self._spelled(ident))
        if not table.args.get("alias") and parts[-1] != written:
            table.set("alias", exp.TableAlias(this=_ident(written)))
        table.set("this", _ident(parts[-1]))
        if len(parts) > 1:
            table.set("db", _ident(parts[-2]))
        if len(parts) > 2:
            table.set("catalog", _ident(parts[-3]))

    def parameter(self, name: str) -> exp.Expr:
        """A bound parameter of the pipeline, cast to its declared type (a value the plan
        binds, `flowc_value_N`, has none: it is compared as the literal it stands for)."""
        self.bound.add(name)
        mark = _MARK + name if self.target == "postgres" else name
        placeholder = exp.Placeholder(this=mark)
        kind = self.params.get(name)
        return exp.cast(placeholder, kind) if kind else placeholder

    def fuse(self, tree: exp.Query, ctes: Sequence[tuple[str, exp.Query]]) -> exp.Query:
        """`tree` with `ctes` (name, prepared tree) in front of its own WITH list."""
        if not ctes:
            return tree
        made = [exp.CTE(this=q, alias=exp.TableAlias(this=_ident(n))) for n, q in ctes]
        with_ = tree.args.get("with_")
        if isinstance(with_, exp.With):
            with_.set("expressions", [*made, *with_.expressions])
        else:
            tree.set("with_", exp.With(expressions=made))
        return tree

    def query(self, node: str, tree: exp.Expr, owners: Mapping[int, str] | None = None) -> str:
        """The text of a prepared (and fused) tree; `owners` maps id(CTE) -> the fused node."""
        try:
            text = self.generator.generate(tree, copy=False)
        except UnsupportedError as error:
            self.problems.append(self._locate(node, tree, str(error), owners or {}))
            return ""
        except SqlglotError as error:
            self.problems.append(Problem(node, str(error)))
            return ""
        if self.source == "duckdb" and self.target in _KNOWN:
            for name in _unknown_names(text, self.target):
                self._unknown_function(node, tree, name, owners or {})
        return self._escaped(text)

    def _unknown_function(
        self, node: str, tree: exp.Expr, name: str, owners: Mapping[int, str]
    ) -> None:
        """A function name in the generated SQL that the target does not have: sqlglot
        kept a DuckDB function's name, or wrote one the target lacks. A name DuckDB does
        not know either is a user's function on the target, and is left alone."""
        call = re.compile(rf"\s*{re.escape(name)}\(", re.IGNORECASE)
        found = next(
            (
                part
                for part in tree.walk()
                if isinstance(part, exp.Func)
                and call.match(self.generator.generate(part, copy=True))
            ),
            None,
        )
        if isinstance(found, exp.Anonymous) and found.name.lower() not in builtins.DUCKDB_FUNCTIONS:
            return
        if found is not None and any(
            id(n) in self.refused for n in (*found.walk(), *_ancestors(found))
        ):
            return  # reported as the construct it is part of, or holds
        written = _leading_name(found.sql(dialect="duckdb")) if found is not None else None
        detail = f"`{(written or name).lower()}` has no {_ENGINES[self.target]} equivalent"
        hint = "compute it with functions every target has, or run the node on DuckDB"
        where = _problem_at(node, found, detail, owners) if found else Problem(node, detail)
        self.problems.append(dataclasses.replace(where, hint=hint))

    def _escaped(self, text: str) -> str:
        if self.target != "postgres":
            return text
        text = text.replace("%", "%%")
        for name in self.bound:
            text = text.replace(f"%%({_MARK}{name})s", f"%({name})s")
        return text

    def _refused(self, node: str, refusal: Refusal) -> Problem:
        self.refused.add(id(refusal.part))
        detail = f"{refusal.what} has no {_ENGINES[self.target]} equivalent"
        if refusal.words is None:
            found = _problem_at(node, refusal.part, detail, {})
        else:
            where = _before(refusal.part, refusal.words)
            if where.start is None:  # no position of its own (a type): look after its owner's
                owner = next((a for a in _ancestors(refusal.part) if _extent(a)), None)
                extent = _extent(owner) if owner is not None else None
                where = Problem("", "", extent[0] if extent else 0, find=refusal.words)
            found = dataclasses.replace(where, node=node, detail=detail)
        return dataclasses.replace(found, hint=refusal.hint)

    def _unsupported(self, node: str, part: exp.Star | exp.Lambda) -> None:
        """Constructs sqlglot writes without complaint that the target would refuse."""
        hint = "write the lambda's work as SQL every target accepts"
        if isinstance(part, exp.Star):
            what = _star_modifier(part, self.target)
            hint = "list the columns instead"
        else:
            what = "a lambda expression (`x -> ...`)"
        if what:
            self.refused.add(id(part))
            detail = f"{what} has no {_ENGINES[self.target]} equivalent"
            found = _problem_at(node, part, detail, {})
            self.problems.append(dataclasses.replace(found, hint=hint))

    def _alias_reference(self, node: str, column: exp.Column) -> None:
        """A column naming an alias of its SELECT list where the target does not look for
        one (DuckDB: anywhere after it; Postgres: GROUP BY, ORDER BY; BigQuery: also HAVING
        and QUALIFY). The engine would look for a column of that name and fail."""
        clause = column.meta.get(ALIAS_REFERENCE)
        if clause is None or clause in ALIAS_CLAUSES.get(self.target, set()):
            return
        where = CLAUSE_WORDS.get(clause, f"in {clause.upper()}")
        detail = (
            f"`{column.name}` refers to a SELECT alias {where}, which "
            f"{_ENGINES[self.target]} does not allow"
        )
        hint = "repeat the expression, or compute it in a CTE (or subquery) first"
        found = _problem_at(node, column, detail, {})
        self.problems.append(dataclasses.replace(found, hint=hint))

    def _lacking(self, node: str, part: exp.Expr) -> None:
        """DuckDB constructs that sqlglot writes unchanged (or rewrites into something else)
        for an engine that has no such thing (`_LACKING`)."""
        found = _lacking(part, self.target)
        if found is None:
            return
        self.refused.add(id(part))
        what, hint, where = found
        detail = f"{what} has no {_ENGINES[self.target]} equivalent"
        self.problems.append(dataclasses.replace(where, node=node, detail=detail, hint=hint))

    def _locate(
        self, node: str, tree: exp.Expr, message: str, owners: Mapping[int, str]
    ) -> Problem:
        """Position an UnsupportedError at the smallest part of the tree that raises it."""
        culprit: exp.Expr | None = None
        for part in tree.walk():
            if part is tree or not isinstance(part, exp.Expr):
                continue
            try:
                self.generator.generate(part, copy=True)
            except SqlglotError:
                culprit = part  # walk is breadth first: later ones are smaller
        detail = f"{message.strip()} in {_ENGINES[self.target]}"
        if culprit is None:
            return Problem(node, detail)
        found = _problem_at(node, culprit, detail, owners)
        if "start" in culprit.meta or found.start is None:
            return found
        # A clause is found by its keyword (`PIVOT`), before the first position inside it.
        where = _before(culprit, rf"\b(?:UN)?{culprit.key}\b")
        return dataclasses.replace(
            found, start=where.start, end=where.end, find=where.find, find_last=where.find_last
        )

    def select_all(self, parts: Parts) -> exp.Select:
        return exp.select("*").from_(_table_of(parts))

    # --- statements

    def create(
        self, parts: Parts, query: str, *, view: bool = False, layout: str = ""
    ) -> list[str]:
        """Statements that atomically replace table (or view) `parts` by `query`'s rows."""
        kind = "VIEW" if view else "TABLE"
        name = self.quoted(parts)
        if self.target == "postgres":
            return [f"DROP {kind} IF EXISTS {name} CASCADE", f"CREATE {kind} {name} AS\n{query}"]
        return [f"CREATE OR REPLACE {kind} {name}{layout} AS\n{query}"]

    def layout(
        self, partition_by: Sequence[str], cluster_by: Sequence[str], types: Mapping[str, str]
    ) -> Layout:
        """BigQuery's `PARTITION BY` / `CLUSTER BY` clauses of a table ("" elsewhere: the
        other engines have no such layout). A timestamp column partitions by its date."""
        if self.target != "bigquery" or not (partition_by or cluster_by):
            return Layout()
        if len(partition_by) > 1 or len(cluster_by) > 4:
            return Layout(problem="BigQuery partitions by one column and clusters by up to four")
        sql = ""
        for name in partition_by:
            column = self.quoted((name,))
            kind = types.get(name, "date").split("(")[0].strip().lower()
            if kind not in ("date", "timestamp", "timestamptz", "datetime"):
                problem = f"BigQuery partitions by a date or timestamp column; `{name}` is {kind}"
                return Layout(problem=problem)
            sql += f"\nPARTITION BY {column if kind == 'date' else f'DATE({column})'}"
        if cluster_by:
            sql += "\nCLUSTER BY " + ", ".join(self.quoted((c,)) for c in cluster_by)
        return Layout(sql)

    def create_schema(self, parts: Parts) -> list[str]:
        if len(parts) < 2:
            return []
        return [f"CREATE SCHEMA IF NOT EXISTS {self.quoted(parts[:-1])}"]

    def create_columns(self, parts: Parts, columns: Iterable[tuple[str, str, bool]]) -> list[str]:
        """An empty table with declared columns (name, flow type, not null), replacing any."""
        defs = ",\n  ".join(
            f"{self.quoted((name,))} {self.type(kind)}{' NOT NULL' if not_null else ''}"
            for name, kind, not_null in columns
        )
        name = self.quoted(parts)
        if self.target == "postgres":
            return [f"DROP TABLE IF EXISTS {name} CASCADE", f"CREATE TABLE {name} (\n  {defs}\n)"]
        return [f"CREATE OR REPLACE TABLE {name} (\n  {defs}\n)"]

    def type(self, flow_type: str) -> str:
        return _type(flow_type, self.target)

    def append(self, parts: Parts, query: str, *, layout: str = "") -> list[str]:
        name = self.quoted(parts)
        return [
            f"CREATE TABLE IF NOT EXISTS {name}{layout} AS\n"
            f"SELECT * FROM (\n{query}\n) AS _rows\nLIMIT 0",
            f"INSERT INTO {name}\n{query}",
        ]

    def merge(self, parts: Parts, query: str, key: Sequence[str], columns: Sequence[str]) -> str:
        q = self.quoted
        on = " AND ".join(f"_target.{q((k,))} = _source.{q((k,))}" for k in key)
        sets = ", ".join(f"{q((c,))} = _source.{q((c,))}" for c in columns if c not in key)
        names = ", ".join(q((c,)) for c in columns)
        values = ", ".join(f"_source.{q((c,))}" for c in columns)
        update = f"\nWHEN MATCHED THEN UPDATE SET {sets}" if sets else ""
        return (
            f"MERGE INTO {q(parts)} AS _target\nUSING (\n{query}\n) AS _source\nON {on}"
            f"{update}\nWHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
        )

    def incremental(
        self, parts: Parts, query: str, time_column: str | None, unique_key: Sequence[str]
    ) -> Increment:
        """An incremental table's later runs. The new rows are the query's rows from
        `:flowc_since` (the watermark less the lookback) on; they replace the rows of the same
        key (`unique_key`), else every row from the earliest new row's time on, so that
        running one interval twice never duplicates a row. On DuckDB and Postgres the new
        rows are kept in a temporary table first, so that the query runs once; BigQuery has
        temporary tables only in scripts, so there each statement runs the query."""
        q = self.quoted
        target = q(parts)
        since = _PLACEHOLDER[self.target].format(SINCE)
        new = f"SELECT * FROM (\n{query}\n) AS _query"
        watermark = None
        if time_column:
            new += f"\nWHERE _query.{q((time_column,))} >= {since}"
            watermark = f"SELECT MAX({q((time_column,))}) AS watermark FROM {target}"
        keep: list[str] = []
        done: list[str] = []
        rows = f"(\n{new}\n)"
        if self.target in _TEMP_SCHEMA:
            temp = f'{_TEMP_SCHEMA[self.target]}."{NEW_ROWS}"'
            keep = [f"DROP TABLE IF EXISTS {temp}", f'CREATE TEMP TABLE "{NEW_ROWS}" AS\n{new}']
            done = [f"DROP TABLE {temp}"]
            rows, new = temp, f"SELECT * FROM {temp}"
        insert = f"INSERT INTO {target}\n{new}"
        if not unique_key:
            assert time_column is not None  # F0221: one of the two is declared
            column = q((time_column,))
            earliest = f"SELECT MIN(_new.{column}) FROM {rows} AS _new"
            delete = f"DELETE FROM {target} WHERE {column} >= (\n{earliest}\n)"
            return Increment(watermark, keep, None, [delete, insert, *done])
        keys = ", ".join(q((k,)) for k in unique_key)
        duplicates = (
            f"SELECT {keys} FROM {rows} AS _new GROUP BY {keys} HAVING COUNT(*) > 1 LIMIT 1"
        )
        match = " AND ".join(f"_new.{q((k,))} = _old.{q((k,))}" for k in unique_key)
        delete = (
            f"DELETE FROM {target} AS _old WHERE EXISTS (\nSELECT 1 FROM {rows} AS _new "
            f"WHERE {match}\n)"
        )
        return Increment(watermark, keep, duplicates, [delete, insert, *done])


NEW_ROWS = "_flowc_new_rows"  # the temporary table of an incremental run's new rows
_TEMP_SCHEMA = {"duckdb": "temp", "postgres": "pg_temp"}  # where TEMP tables are, by name


class Increment(NamedTuple):
    """The SQL of an incremental table's later runs (plan.Incremental)."""

    watermark: str | None
    new_rows: list[str]
    duplicates: str | None
    update: list[str]


def _star_modifier(star: exp.Star, target: str) -> str | None:
    if target == "duckdb":
        return None
    for arg, word in (("except_", "EXCLUDE"), ("replace", "REPLACE"), ("rename", "RENAME")):
        if star.args.get(arg) and (target == "postgres" or arg == "rename"):
            return f"`SELECT * {word} (...)`"
    return None


# --- DuckDB constructs other engines lack ----------------------------------------------------
#
# Each was generated with sqlglot for Postgres and BigQuery and compared with what the engine
# accepts: sqlglot passes these through as DuckDB wrote them (ASOF/POSITIONAL joins, GROUP BY
# ALL on Postgres, ORDER BY ALL, COLUMNS(...), BY NAME set operations on Postgres, list
# comprehensions, MAP values, GLOB), turns them into text the engine refuses (a struct literal
# becomes `STRUCT(...)` on Postgres, `arg_max` stays `ARG_MAX`) or into another meaning (a
# sample of N rows becomes `TABLESAMPLE RESERVOIR (N)`, read by nothing but DuckDB).

_BOTH = frozenset({"postgres", "bigquery"})
_PG = frozenset({"postgres"})
_LACKING: tuple[type[exp.Expr], ...] = (
    exp.Join,
    exp.Group,
    exp.Ordered,
    exp.Columns,
    exp.SetOperation,
    exp.TableSample,
    exp.Comprehension,
    exp.Struct,
    exp.ToMap,
    exp.Map,
    exp.ArgMax,
    exp.ArgMin,
    exp.Glob,
)
_AGGREGATE_WORDS = r"\b(?:arg_?max|arg_?min|max_by|min_by)\b"


def _lacking(part: exp.Expr, target: str) -> tuple[str, str, Problem] | None:
    """(what it is, a hint, where it is) for a construct `target` lacks, else None."""
    found = _construct(part)
    if found is None or target not in found[0]:
        return None
    _, what, hint, where = found
    return what, hint, where


def _construct(part: exp.Expr) -> tuple[frozenset[str], str, str, Problem] | None:
    if isinstance(part, exp.Join):
        return _join(part)
    if isinstance(part, exp.Group) and part.args.get("all"):
        where = _after(part.parent, r"\bGROUP\s+BY\s+ALL\b", "group")
        return _PG, "`GROUP BY ALL`", "list the grouping columns", where
    if isinstance(part, exp.Ordered) and _is_all(part.this):
        clause = part.parent
        where = _after(clause.parent if clause else None, r"\bORDER\s+BY\s+ALL\b", "order")
        return _BOTH, "`ORDER BY ALL`", "list the columns to sort by", where
    if isinstance(part, exp.Columns):
        hint = "list the columns (or their expressions) one by one"
        return _BOTH, "a `COLUMNS(...)` expression", hint, _before(part, r"\bCOLUMNS\b")
    if isinstance(part, exp.SetOperation) and part.args.get("by_name"):
        left = _extent(part.this)
        words = rf"\b{part.key}\b(\s+(ALL|DISTINCT))?\s+BY\s+NAME\b"
        where = Problem("", "", left[1] if left else 0, find=words)
        hint = "select the same columns in the same order on both sides"
        return _PG, f"`{part.key.upper()} ... BY NAME`", hint, where
    if isinstance(part, exp.TableSample):
        return _sample(part)
    if isinstance(part, exp.Comprehension):
        hint = "unnest the list in a subquery and aggregate it back (`ARRAY(SELECT ...)`)"
        return _BOTH, "a list comprehension (`[x FOR x IN ...]`)", hint, _before(part, r"\[")
    if isinstance(part, exp.Struct) and not isinstance(part.parent, exp.ToMap):
        hint = "return the fields as columns of their own (or build JSON: `json_build_object`)"
        where = _before(part, r"\{|\bstruct_pack\b|\bstruct\b|\brow\b")
        return _PG, "a struct value (`{'k': v}`, `struct_pack`)", hint, where
    if isinstance(part, exp.ToMap | exp.Map):
        hint = "keep keys and values in columns of their own (or build JSON)"
        return _BOTH, "a MAP value", hint, _before(part, r"\bMAP\b")
    if isinstance(part, exp.ArgMax | exp.ArgMin):
        what = "`arg_max`/`max_by`" if isinstance(part, exp.ArgMax) else "`arg_min`/`min_by`"
        hint = "keep the row with `ROW_NUMBER() OVER (...) = 1`, or aggregate an ordered array"
        return _PG, what, hint, _before(part, _AGGREGATE_WORDS)
    if isinstance(part, exp.Glob):
        where = _between(part.this, part.expression, r"\bGLOB\b")
        return _BOTH, "`GLOB`", "use LIKE (`%` for `*`, `_` for `?`)", where
    return None


def _join(join: exp.Join) -> tuple[frozenset[str], str, str, Problem] | None:
    method = str(join.args.get("method") or "").upper()
    if method == "ASOF":
        hint = "join on the key and keep each row's latest match (`ROW_NUMBER() ... = 1`)"
        return _BOTH, "an ASOF join", hint, _before(join, r"\bASOF\b")
    if method == "POSITIONAL":
        hint = "number the rows of both sides (`ROW_NUMBER()`) and join on the numbers"
        return _BOTH, "a POSITIONAL join", hint, _before(join, r"\bPOSITIONAL\b")
    return None


def _sample(sample: exp.TableSample) -> tuple[frozenset[str], str, str, Problem] | None:
    """Postgres samples a percentage, by SYSTEM or BERNOULLI; BigQuery only SYSTEM, by
    percentage, without a seed. DuckDB's default for a row count is reservoir sampling."""
    method = str(sample.args["method"].name if sample.args.get("method") else "").upper()
    rows = sample.args.get("size") is not None or method == "RESERVOIR"
    where = _before(sample, r"\bUSING\s+SAMPLE\b|\bTABLESAMPLE\b")
    hint = "sample a percentage: `USING SAMPLE 10 PERCENT (system)`"
    if rows:
        return _BOTH, "a sample of a number of rows (reservoir sampling)", hint, where
    if method not in ("", "SYSTEM") or sample.args.get("seed") is not None:
        what = f"{method.lower() or 'seeded'} sampling" if method != "SYSTEM" else "a seed"
        return frozenset({"bigquery"}), f"`TABLESAMPLE` with {what}", hint, where
    return None


def _is_all(part: exp.Expr | None) -> bool:
    return isinstance(part, exp.Var | exp.Column) and part.name.upper() == "ALL"


def _extent(part: exp.Expr | None) -> tuple[int, int] | None:
    """The first start and the last end (exclusive) of the positioned nodes in `part`."""
    if part is None:
        return None
    spots = [n.meta for n in part.walk() if isinstance(n, exp.Expr) and "start" in n.meta]
    if not spots:
        return None
    return min(int(m["start"]) for m in spots), max(int(m["end"]) for m in spots) + 1


def _before(part: exp.Expr, words: str) -> Problem:
    """Where `words` last occur before the first positioned node in `part` (or `part` itself,
    when it has a position of its own)."""
    if "start" in part.meta:
        return Problem("", "", int(part.meta["start"]), int(part.meta["end"]) + 1)
    extent = _extent(part)
    if extent is None:
        return Problem("", "")
    return Problem("", "", 0, extent[0], find=words, find_last=True)


def _after(owner: exp.Expr | None, words: str, clause: str) -> Problem:
    """Where `words` first occur after the parts of `owner` written before its `clause` (a
    clause without a position of its own: GROUP BY ALL, ORDER BY ALL)."""
    if owner is None:
        return Problem("", "")
    ends = []
    for key, value in owner.args.items():
        if key == clause or key in _LATER[clause]:
            continue
        for child in value if isinstance(value, list) else [value]:
            extent = _extent(child) if isinstance(child, exp.Expr) else None
            if extent is not None:
                ends.append(extent[1])
    return Problem("", "", max(ends, default=0), find=words)


# The clauses written after GROUP BY / ORDER BY: their positions do not bound the search.
_LATER = {
    "group": ("having", "qualify", "windows", "order", "limit", "offset", "sample"),
    "order": ("limit", "offset"),
}


def _between(left: exp.Expr | None, right: exp.Expr | None, words: str) -> Problem:
    start = _extent(left)
    end = _extent(right)
    if start is None or end is None:
        return Problem("", "")
    return Problem("", "", start[1], end[0], find=words, find_last=True)


def _problem_at(node: str, part: exp.Expr, detail: str, owners: Mapping[int, str]) -> Problem:
    owner = node
    ancestor: exp.Expr | None = part
    while ancestor is not None:
        if id(ancestor) in owners:
            owner = owners[id(ancestor)]
            break
        ancestor = ancestor.parent
    for inner in part.walk():
        if isinstance(inner, exp.Expr) and "start" in inner.meta:
            return Problem(owner, detail, int(inner.meta["start"]), int(inner.meta["end"]) + 1)
    return Problem(owner, detail)


# Words generated SQL writes before a parenthesis that are neither functions nor types.
_KEYWORDS = frozenset(
    re.findall(
        r"\w+",
        # clauses and operators
        "all and any array as between by case cast exists filter from in interval is join "
        "lateral like not on or over row select some struct then unnest using values when "
        "where within with recursive union except intersect limit offset qualify having "
        "group order partition window rows range groups tablesample repeatable bernoulli "
        "system percent rollup cube sets grouping ordinality pivot unpivot "
        # functions the SQL grammar spells (not catalog functions)
        "coalesce nullif greatest least extract position substring overlay trim normalize "
        "collation treat json_array json_object json_arrayagg json_objectagg json_exists "
        "json_query json_value json_scalar json_serialize xmlelement xmlforest xmlconcat "
        "xmlparse xmlpi xmlroot xmlserialize "
        # BigQuery's array subscripts, and its week parts (`WEEK(MONDAY)`)
        "offset ordinal safe_offset safe_ordinal week isoweek "
        # type names with a length or precision
        "char character varchar varying decimal numeric float double precision real bit "
        "time timestamp date datetime zone",
    )
)
_KNOWN = {
    "postgres": builtins.POSTGRES_FUNCTIONS | builtins.POSTGRES_TYPES | _KEYWORDS,
    "bigquery": builtins.BIGQUERY_FUNCTIONS | builtins.BIGQUERY_TYPES | _KEYWORDS,
}
_LITERALS = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`")
_CALL = re.compile(r"(?<![.\w])([A-Za-z_][A-Za-z0-9_]*)\(")


def _ancestors(node: exp.Expr) -> Iterator[exp.Expr]:
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def _leading_name(text: str) -> str | None:
    found = _CALL.match(text.strip())
    return found.group(1) if found else None


def _unknown_names(text: str, target: str) -> list[str]:
    """The names called in `text` (strings and quoted names aside) that `target` lacks."""
    known = _KNOWN[target]
    names = _CALL.findall(_LITERALS.sub("''", text))
    return sorted({n for n in names if n.lower() not in known})


def _ident(name: str) -> exp.Identifier:
    return exp.Identifier(this=name, quoted=True)


def _table_of(parts: Parts) -> exp.Table:
    table = exp.Table(this=_ident(parts[-1]))
    if len(parts) > 1:
        table.set("db", _ident(parts[-2]))
    if len(parts) > 2:
        table.set("catalog", _ident(parts[-3]))
    return table


@cache
def _type(flow_type: str, target: str) -> str:
    """A declared type in `target`'s spelling. BigQuery's NUMERIC holds at most 9 places and
    29 digits before the point; a wider decimal is a BIGNUMERIC (up to 38 and 38).

    >>> _type("decimal(10, 2)", "bigquery"), _type("decimal(38, 12)", "bigquery")
    ('NUMERIC(10, 2)', 'BIGNUMERIC(38, 12)')
    """
    kind = exp.DataType.build(flow_type)
    if target == "bigquery" and kind.this == exp.DataType.Type.DECIMAL:
        sizes = [int(p.name) for p in kind.expressions if p.name.isdigit()]
        precision, scale = (sizes + [18, 3][len(sizes) :])[:2] if sizes else (0, 0)
        if scale > 9 or precision - scale > 29:
            return f"BIGNUMERIC({precision}, {scale})"
    return kind.sql(dialect=target)


def _generator(target: str, *, normalize: bool) -> Generator:
    return Dialect.get_or_raise(target).generator(
        pretty=True,
        identify=True,
        normalize=normalize,
        comments=False,
        unsupported_level=ErrorLevel.RAISE,
    )
