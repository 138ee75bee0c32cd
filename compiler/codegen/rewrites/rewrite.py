"""Dialect rewrites: what a DuckDB construct means, said in the target's SQL, before codegen.

sqlglot translates function names and syntax; it does not know what a construct means when
the types or the shape of the data decide it. These rules do, after names are resolved and
the tree is typed (`compiler/codegen/annotate.py`), in place on the tree that codegen then
generates. Each rule is a plain function of (tree, context) in the module of its family
(the shape of a query, the order of rows, casts, strings, patterns, lists, dates, aggregates,
numbers), listed once in `RULES` below, in the order they run; each rewrites what it can into
SQL every later step (and sqlglot) handles, and reports what it cannot as a `Refusal` at the
construct's position (F0308). What a rule leaves alone, codegen's own checks see next
(`generate._LACKING`).

The reference is DuckDB: a query means on Postgres and BigQuery what it means on DuckDB, with
the same rows, the same column names and, where the engines have them, the same types:

- column-alias lists (`(...) AS t (a, b)`, `WITH t (a, b) AS`): BigQuery has none; the
  query is wrapped in one that renames its outputs;
- `UNION [ALL] BY NAME`: both sides selected in the order of the output, missing columns
  NULL (DuckDB's meaning; Postgres has no BY NAME, BigQuery's wants the same names on both);
- `GROUP BY ALL`, `ORDER BY ALL`: the grouping / sorting columns listed by position;
- NULL order in the `ORDER BY` of a window or an aggregate (BigQuery sorts NULLs first
  ascending and has no `NULLS LAST` there): an `x IS NULL` key in front;
- arithmetic: DuckDB's `/` is float division on every numeric type, `//` integer division
  of integers, `%` of doubles C's `fmod`, `ROUND` of a double rounds half away from zero
  (Postgres rounds half to even and has no `round(double, int)`), `avg` is a double;
- functions whose name sqlglot keeps but whose meaning differs (`contains`, `greatest`,
  `regexp_replace`, ...), or which it writes as functions the target lacks (`make_date`,
  `len` of a list, `list_aggregate`, `regexp_full_match`, `printf`, ...);
- DuckDB-only types in casts (`HUGEINT`, unsigned integers, `UNION`).

The rules run only for a DuckDB-dialect spec on another engine (the reference is DuckDB's
meaning); a spec written in another dialect is translated by sqlglot alone.
"""

from __future__ import annotations

from flowc.compiler.codegen.annotate import Schemas, annotate
from flowc.compiler.codegen.rewrites import (
    aggregates,
    by_name,
    casts,
    clauses,
    column_lists,
    dates,
    distinct_on,
    lists,
    numbers,
    ordering,
    patterns,
    strings,
)
from flowc.compiler.codegen.rewrites.context import Context, Refusal, Rule
from sqlglot import exp


def rewrite(tree: exp.Query, source: str, target: str, schemas: Schemas) -> list[Refusal]:
    """Rewrite `tree` (written in `source`) in place so that `target` computes what `source`
    would; what cannot be said in `target` is returned.

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("SELECT ROUND(x / n, 2) AS r FROM t", read="duckdb")
    >>> rewrite(tree, "duckdb", "bigquery", {"t": [("x", "decimal(10, 2)"), ("n", "int")]})
    []
    >>> tree.sql("bigquery")
    'SELECT ROUND(CAST(x AS FLOAT64) / n, 2) AS r FROM t'
    """
    if source != "duckdb" or target == source:
        return []
    context = Context(source, target)
    context.taken = {i.name.lower() for i in tree.find_all(exp.Identifier)}
    context.typed = annotate(tree, schemas, source)
    for rule in RULES:
        rule(tree, context)
    return context.refusals


RULES: tuple[Rule, ...] = (
    column_lists.alias_column_lists,
    distinct_on.distinct_on,
    by_name.union_by_name,
    clauses.group_by_all,
    clauses.order_by_all,
    ordering.null_order,
    clauses.limit_percent,
    casts.duckdb_types,
    dates.make_date,
    lists.list_length,
    lists.list_aggregates,
    patterns.full_match,
    strings.contains,
    strings.null_strings,
    strings.ends_with,
    aggregates.greatest_least,
    aggregates.count_if,
    numbers.logarithm,
    patterns.regexp_replace,
    patterns.regexp_extract,
    strings.split_part,
    strings.string_split,
    dates.epoch,
    dates.date_parts,
    dates.date_trunc,
    dates.strftime,
    aggregates.ordered_set_aggregates,
    aggregates.any_value,
    strings.printf,
    casts.try_cast,
    strings.concat_ws,
    casts.number_text,
    ordering.text_order,
    numbers.division,
    numbers.integer_division,
    numbers.modulo,
    numbers.rounding,
    numbers.averages,
)
