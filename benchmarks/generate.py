"""Generate a synthetic flowc project for the `flowc check` benchmark.

`generate_project(root, n)` writes a folder with `flow.toml`, one spec `specs/bench.flow`
(a pipeline, ~max(5, n/20) CSV sources with declared columns, and n SQL transforms of 20-60
lines each), tiny CSV files under `data/`, and `.bench_manifest.json`: the sources' schemas and
the transforms' SQL in order, for the sqlglot baseline; `.bench_stamp.json` says what was
generated (version, sizes, seed), so that a benchmark can reuse it.

The generator tracks every node's output columns and types, so every SQL it writes references
only columns that exist in its inputs; joins qualify every column with a table alias, and every
output column is explicitly aliased and unique. Key columns (`customer_id`, ...) keep one name
and one type everywhere, which is what makes the joins well typed.

CLI: `python benchmarks/generate.py N OUTDIR [--seed S] [--sources K]`.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

GENERATOR_VERSION = 2
DIALECT = "duckdb"
MANIFEST_NAME = ".bench_manifest.json"
STAMP_NAME = ".bench_stamp.json"
SPEC_RELPATH = "specs/bench.flow"
MIN_LINES = 20
MAX_LINES = 60
MAX_WIDTH = 16
RECENT_WINDOW = 30
RECENT_SHARE = 0.4

KEY_TYPES: dict[str, str] = {
    "customer_id": "bigint",
    "product_id": "int",
    "store_id": "int",
    "region_code": "varchar",
    "order_date": "date",
    "account_id": "bigint",
    "supplier_id": "int",
    "channel_code": "varchar",
}

ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("amount", "decimal(10, 2)"),
    ("unit_price", "decimal(10, 2)"),
    ("tax_amount", "decimal(10, 2)"),
    ("cost", "decimal(10, 2)"),
    ("quantity", "int"),
    ("visits", "int"),
    ("units_sold", "int"),
    ("clicks", "bigint"),
    ("impressions", "bigint"),
    ("discount_rate", "double"),
    ("score", "double"),
    ("weight_kg", "double"),
    ("revenue", "double"),
    ("item_status", "varchar"),
    ("country", "varchar"),
    ("city", "varchar"),
    ("segment", "varchar"),
    ("category", "varchar"),
    ("currency", "varchar"),
    ("is_active", "boolean"),
    ("is_returned", "boolean"),
    ("is_priority", "boolean"),
    ("event_date", "date"),
    ("due_date", "date"),
    ("created_at", "timestamp"),
    ("updated_at", "timestamp"),
    ("shipped_at", "timestamp"),
)

ENTITIES = (
    "orders",
    "customers",
    "products",
    "stores",
    "payments",
    "shipments",
    "returns",
    "inventory",
    "sessions",
    "invoices",
    "reviews",
    "campaigns",
)

STR_VALUES = ("alpha", "beta", "gamma", "delta", "north", "south")


# ----------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    root: str

    @property
    def cat(self) -> str:
        return category(self.type)

    @property
    def is_key(self) -> bool:
        return self.name in KEY_TYPES


@dataclass
class Node:
    name: str
    kind: str
    columns: list[Column]
    sql: str = ""
    inputs: list[str] = field(default_factory=list)
    not_null: list[str] = field(default_factory=list)

    def key_columns(self) -> list[Column]:
        return [c for c in self.columns if c.is_key]

    def non_keys(self) -> list[Column]:
        return [c for c in self.columns if not c.is_key]

    def of_cat(self, *cats: str) -> list[Column]:
        return [c for c in self.columns if c.cat in cats and not c.is_key]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass
class Built:
    """A transform body under construction: SQL lines and the output columns."""

    lines: list[str]
    columns: list[Column]
    not_null: list[str] = field(default_factory=list)


class Unfit(Exception):
    """The chosen inputs do not suit the chosen template."""


class Namer:
    """Hands out unique output column names."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self.taken: set[str] = set(taken)

    def take(self, base: str) -> str:
        name, i = base, 2
        while name in self.taken:
            name = f"{base}_{i}"
            i += 1
        self.taken.add(name)
        return name


def category(sql_type: str) -> str:
    t = sql_type.lower()
    if t.startswith(("int", "bigint", "double", "decimal")):
        return "num"
    return {"varchar": "str", "boolean": "bool", "date": "date", "timestamp": "ts"}[t]


# ----------------------------------------------------------------------------- SQL pieces


def indent(lines: Sequence[str], n: int) -> list[str]:
    pad = " " * n
    return [pad + line for line in lines]


def select_list(items: Sequence[str], pad: int) -> list[str]:
    """`items` are (possibly multi-line) select items; join them with commas."""
    out: list[str] = []
    for i, item in enumerate(items):
        parts = item.split("\n")
        if i < len(items) - 1:
            parts[-1] += ","
        out.extend(indent(parts, pad))
    return out


def aliased(expr: str, name: str) -> str:
    return f"{expr} AS {name}"


def literal_for(col: Column, rng: random.Random) -> str:
    if col.cat == "num":
        return str(rng.choice((0, 1, 10, 100, 500)))
    if col.cat == "str":
        return f"'{rng.choice(STR_VALUES)}'"
    if col.cat == "date":
        return f"DATE '2020-0{rng.randint(1, 9)}-01'"
    if col.cat == "ts":
        return f"TIMESTAMP '2020-0{rng.randint(1, 9)}-15 00:00:00'"
    return rng.choice(("TRUE", "FALSE"))


def predicate(col: Column, ref: str, rng: random.Random) -> str:
    lit = literal_for(col, rng)
    options: dict[str, list[str]] = {
        "num": [f"{ref} > {lit}", f"{ref} IS NOT NULL", f"COALESCE({ref}, 0) >= {lit}"],
        "str": [f"{ref} IS NOT NULL", f"{ref} <> {lit}", f"LOWER({ref}) LIKE '%a%'"],
        "bool": [f"COALESCE({ref}, FALSE)", f"NOT COALESCE({ref}, FALSE)", f"{ref} IS NOT NULL"],
        "date": [f"{ref} >= {lit}", f"{ref} IS NOT NULL"],
        "ts": [f"{ref} >= {lit}", f"{ref} < TIMESTAMP '2030-01-01 00:00:00'"],
    }
    return rng.choice(options[col.cat])


def where_clause(node: Node, alias: str, rng: random.Random, keyword: str = "WHERE") -> list[str]:
    cols = rng.sample(node.columns, k=min(len(node.columns), rng.randint(1, 3)))
    preds = [predicate(c, f"{alias}.{c.name}", rng) for c in cols]
    lines = [f"{keyword} {preds[0]}"]
    lines += [f"    {rng.choice(('AND', 'AND', 'OR'))} {p}" for p in preds[1:]]
    return lines


def tier_case(ref: str, name: str, rng: random.Random) -> str:
    hi, mid = rng.choice(((1000, 100), (500, 50), (100, 10)))
    return "\n".join(
        [
            "CASE",
            f"    WHEN {ref} IS NULL THEN 'missing'",
            f"    WHEN {ref} > {hi} THEN 'high'",
            f"    WHEN {ref} > {mid} THEN 'medium'",
            "    ELSE 'low'",
            f"END AS {name}",
        ]
    )


def row_derivation(col: Column, ref: str, rng: random.Random) -> tuple[str, str, str]:
    """A row-level expression over `col`: (expression, name prefix, result type)."""
    options: dict[str, list[tuple[str, str, str]]] = {
        "num": [
            (f"ROUND(CAST({ref} AS DOUBLE) * 1.1, 2)", "adj", "double"),
            (f"COALESCE({ref}, 0)", "filled", col.type),
            ("", "tier", "varchar"),
        ],
        "str": [
            (f"UPPER(TRIM({ref}))", "norm", "varchar"),
            (f"COALESCE({ref}, 'unknown')", "clean", "varchar"),
            (f"LENGTH({ref})", "len", "bigint"),
        ],
        "bool": [
            (f"CASE WHEN {ref} THEN 1 ELSE 0 END", "flag", "int"),
            (f"COALESCE({ref}, FALSE)", "has", "boolean"),
        ],
        "date": [(f"EXTRACT(YEAR FROM {ref})", "year", "bigint")],
        "ts": [
            (f"CAST({ref} AS DATE)", "day", "date"),
            (f"EXTRACT(HOUR FROM {ref})", "hour", "bigint"),
        ],
    }
    return rng.choice(options[col.cat])


def derive_row(col: Column, ref: str, namer: Namer, rng: random.Random) -> tuple[str, Column]:
    expr, prefix, typ = row_derivation(col, ref, rng)
    name = namer.take(f"{prefix}_{col.root}")
    item = tier_case(ref, name, rng) if prefix == "tier" else aliased(expr, name)
    return item, Column(name, typ, col.root)


def aggregation(col: Column, ref: str, rng: random.Random) -> tuple[str, str, str]:
    """An aggregate over `col`: (expression, name prefix, result type)."""
    options: dict[str, list[tuple[str, str, str]]] = {
        "num": [
            (f"SUM({ref})", "sum", "double" if col.type == "double" else "decimal(38, 2)"),
            (f"AVG(CAST({ref} AS DOUBLE))", "avg", "double"),
            (f"MAX({ref})", "max", col.type),
            (f"MIN({ref})", "min", col.type),
        ],
        "str": [
            (f"COUNT(DISTINCT {ref})", "n_distinct", "bigint"),
            (f"MAX({ref})", "top", "varchar"),
        ],
        "bool": [(f"SUM(CASE WHEN {ref} THEN 1 ELSE 0 END)", "n", "bigint")],
        "date": [(f"MIN({ref})", "first", col.type), (f"MAX({ref})", "last", col.type)],
        "ts": [(f"MIN({ref})", "first", col.type), (f"MAX({ref})", "last", col.type)],
    }
    return rng.choice(options[col.cat])


def derive_agg(col: Column, ref: str, namer: Namer, rng: random.Random) -> tuple[str, Column]:
    expr, prefix, typ = aggregation(col, ref, rng)
    name = namer.take(f"{prefix}_{col.root}")
    return aliased(expr, name), Column(name, typ, col.root)


def passthrough(cols: Sequence[Column], alias: str) -> list[str]:
    return [aliased(f"{alias}.{c.name}", c.name) for c in cols]


def sample_cols(rng: random.Random, cols: Sequence[Column], lo: int, hi: int) -> list[Column]:
    k = min(len(cols), rng.randint(lo, hi))
    picked = set(rng.sample(range(len(cols)), k=k))
    return [c for i, c in enumerate(cols) if i in picked]


def measures(node: Node) -> list[Column]:
    """Numeric columns to aggregate: non-key ones, else numeric keys; none is unfit."""
    found = node.of_cat("num") or [k for k in node.key_columns() if k.cat == "num"]
    if not found:
        raise Unfit(f"{node.name} has no numeric column")
    return found


def order_column(node: Node, rng: random.Random) -> Column:
    return rng.choice(node.of_cat("ts", "date") or node.columns)


# ----------------------------------------------------------------------------- templates


def tpl_aggregate(ins: list[Node], key: Column, rng: random.Random) -> Built:
    """GROUP BY one or two keys with aggregates, WHERE and HAVING."""
    a = ins[0]
    others = [k for k in a.key_columns() if k != key]
    keys = [key, *rng.sample(others, k=min(1, len(others)))]
    namer = Namer(k.name for k in keys)
    items = passthrough(keys, "a")
    cols = list(keys)
    rows = namer.take("n_rows")
    items.append(aliased("COUNT(*)", rows))
    cols.append(Column(rows, "bigint", "rows"))
    for col in sample_cols(rng, a.non_keys(), 5, 10):
        item, out = derive_agg(col, f"a.{col.name}", namer, rng)
        items.append(item)
        cols.append(out)
    for _ in range(rng.randint(1, 2)):
        item, out = conditional_sum(a, namer, rng)
        items.append(item)
        cols.append(out)
    lines = ["SELECT", *select_list(items, 4), f"FROM {a.name} AS a"]
    lines += where_clause(a, "a", rng)
    lines += ["GROUP BY", *select_list([f"a.{k.name}" for k in keys], 4)]
    lines += ["HAVING COUNT(*) >= 1"]
    return Built(lines, cols, [k.name for k in keys])


def conditional_sum(a: Node, namer: Namer, rng: random.Random) -> tuple[str, Column]:
    """`SUM(CASE WHEN <predicate> THEN measure ELSE 0 END)`, written over several lines."""
    m = rng.choice(measures(a))
    cond = rng.choice(a.columns)
    name = namer.take(f"cond_{m.root}")
    body = [
        "SUM(",
        "    CASE",
        f"        WHEN {predicate(cond, f'a.{cond.name}', rng)} THEN a.{m.name}",
        "        ELSE 0",
        "    END",
        f") AS {name}",
    ]
    typ = "double" if m.type == "double" else "decimal(38, 2)"
    return "\n".join(body), Column(name, typ, m.root)


def tpl_window(ins: list[Node], key: Column, rng: random.Random) -> Built:
    """A CTE with ROW_NUMBER / running SUM / LAG windows, filtered on the row number."""
    a = ins[0]
    order = order_column(a, rng)
    keep = a.key_columns() + sample_cols(rng, a.of_cat("num", "str", "bool"), 2, 5)
    keep = _dedupe([*keep, order])[: MAX_WIDTH - 5]
    namer = Namer(c.name for c in keep)
    part, by = f"PARTITION BY a.{key.name}", f"ORDER BY a.{order.name} DESC"
    rn = namer.take("row_num")
    inner = [*passthrough(keep, "a"), f"ROW_NUMBER() OVER (\n    {part}\n    {by}\n) AS {rn}"]
    outs = [Column(rn, "bigint", "row_num")]
    for m in sample_cols(rng, measures(a), 1, 2):
        items, cols = _window_measure(m, part, by, namer, rng)
        inner += items
        outs += cols
    lines = ["WITH ranked AS (", "    SELECT", *select_list(inner, 8), f"    FROM {a.name} AS a"]
    lines += [*indent(where_clause(a, "a", rng), 4), ")"]
    final = passthrough([*keep, *outs], "r")
    lines += ["SELECT", *select_list(final, 4), "FROM ranked AS r", f"WHERE r.{rn} <= 3"]
    return Built(lines, [*keep, *outs], [rn])


def _window_measure(
    m: Column, part: str, by: str, namer: Namer, rng: random.Random
) -> tuple[list[str], list[Column]]:
    ref = f"a.{m.name}"
    total, running = namer.take(f"total_{m.root}"), namer.take(f"running_{m.root}")
    frame = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    items = [
        f"SUM({ref}) OVER ({part}) AS {total}",
        f"SUM({ref}) OVER (\n    {part}\n    {by}\n    {frame}\n) AS {running}",
    ]
    cols = [Column(total, "double", m.root), Column(running, "double", m.root)]
    if rng.random() < 0.5:
        prev = namer.take(f"prev_{m.root}")
        items.append(f"LAG({ref}) OVER ({part} {by}) AS {prev}")
        cols.append(Column(prev, m.type, m.root))
    return items, cols


def tpl_enrich(ins: list[Node], key: Column, rng: random.Random) -> Built:
    """Filter one input in a CTE, aggregate another per key in a CTE, LEFT JOIN them."""
    a, b = ins[0], ins[1]
    keep = _dedupe(
        a.key_columns() + sample_cols(rng, a.of_cat("num", "str", "bool", "date", "ts"), 2, 6)
    )
    namer = Namer(c.name for c in keep)
    stats_items: list[str] = []
    stats_cols: list[Column] = []
    for col in sample_cols(rng, b.non_keys(), 2, 4):
        item, out = derive_agg(col, f"b.{col.name}", namer, rng)
        stats_items.append(item)
        stats_cols.append(out)
    lines = ["WITH base AS (", "    SELECT", *select_list(passthrough(keep, "a"), 8)]
    lines += [f"    FROM {a.name} AS a", *indent(where_clause(a, "a", rng), 4), "),"]
    lines += [
        "stats AS (",
        "    SELECT",
        *select_list([f"b.{key.name} AS {key.name}", *stats_items], 8),
    ]
    lines += [f"    FROM {b.name} AS b", f"    GROUP BY b.{key.name}", ")"]
    final = passthrough(keep, "x") + passthrough(stats_cols, "s")
    extra = _tier_over(stats_cols, "s", namer, rng)
    final += [item for item, _ in extra]
    lines += ["SELECT", *select_list(final, 4), "FROM base AS x", "LEFT JOIN stats AS s"]
    lines += [f"    ON x.{key.name} = s.{key.name}"]
    return Built(lines, [*keep, *stats_cols, *(c for _, c in extra)], [key.name])


def _tier_over(
    cols: Sequence[Column], alias: str, namer: Namer, rng: random.Random
) -> list[tuple[str, Column]]:
    nums = [c for c in cols if c.cat == "num"]
    if not nums:
        return []
    col = rng.choice(nums)
    name = namer.take(f"tier_{col.root}")
    return [(tier_case(f"{alias}.{col.name}", name, rng), Column(name, "varchar", col.root))]


def tpl_join(ins: list[Node], key: Column, rng: random.Random) -> Built:
    """Two or three inputs joined on shared keys; every column qualified with its alias."""
    a, b = ins[0], ins[1]
    keep_a = _dedupe(a.key_columns() + sample_cols(rng, a.non_keys(), 2, 5))
    namer = Namer(c.name for c in keep_a)
    items, cols = passthrough(keep_a, "a"), list(keep_a)
    joins = [f"INNER JOIN {b.name} AS b", f"    ON a.{key.name} = b.{key.name}"]
    _take_from(b, "b", namer, items, cols, rng)
    if len(ins) > 2:
        c = ins[2]
        ckey = _shared_key(a, c, rng)
        joins += [f"LEFT JOIN {c.name} AS c", f"    ON a.{ckey.name} = c.{ckey.name}"]
        _take_from(c, "c", namer, items, cols, rng)
    status = namer.take("match_status")
    items.append(
        f"CASE\n    WHEN b.{key.name} IS NULL THEN 'unmatched'\n    ELSE 'matched'\nEND AS {status}"
    )
    cols.append(Column(status, "varchar", "match_status"))
    lines = ["SELECT", *select_list(items, 4), f"FROM {a.name} AS a", *joins]
    lines += where_clause(a, "a", rng)
    return Built(lines, cols, [key.name])


def _take_from(
    node: Node, alias: str, namer: Namer, items: list[str], cols: list[Column], rng: random.Random
) -> None:
    """Append a few columns of a joined input: new keys as-is, others renamed or derived."""
    for col in [k for k in node.key_columns() if k.name not in namer.taken]:
        items.append(aliased(f"{alias}.{col.name}", namer.take(col.name)))
        cols.append(col)
    for col in sample_cols(rng, node.non_keys(), 1, 3):
        ref = f"{alias}.{col.name}"
        if rng.random() < 0.5:
            item, out = derive_row(col, ref, namer, rng)
        else:
            out = Column(namer.take(f"{alias}_{col.name}"), col.type, col.root)
            item = aliased(ref, out.name)
        items.append(item)
        cols.append(out)


def tpl_star(ins: list[Node], key: Column, rng: random.Random) -> Built:
    """`SELECT f.*` plus derived columns, over a filtered `SELECT *` CTE of one input."""
    a = ins[0]
    namer = Namer(c.name for c in a.columns)
    items, cols = ["f.*"], list(a.columns)
    for col in sample_cols(rng, a.non_keys(), 3, 5):
        item, out = derive_row(col, f"f.{col.name}", namer, rng)
        items.append(item)
        cols.append(out)
    lines = ["WITH filtered AS (", "    SELECT *", f"    FROM {a.name} AS a"]
    lines += [*indent(where_clause(a, "a", rng), 4), ")"]
    lines += ["SELECT", *select_list(items, 4), "FROM filtered AS f"]
    lines += where_clause(a, "f", rng)
    return Built(lines, cols, [key.name])


def tpl_union(ins: list[Node], key: Column, rng: random.Random) -> Built:
    """UNION ALL of two inputs' measure per key in a CTE, then aggregated per key and origin."""
    a, b = ins[0], ins[1]
    ma, mb = rng.choice(measures(a)), rng.choice(measures(b))
    arms = []
    for alias, node, m in (("a", a, ma), ("b", b, mb)):
        arm = ["    SELECT", f"        {alias}.{key.name} AS {key.name},"]
        arm += [f"        CAST({alias}.{m.name} AS DOUBLE) AS measure,"]
        arm += [f"        '{node.name}' AS origin", f"    FROM {node.name} AS {alias}"]
        arms.append(arm + indent(where_clause(node, alias, rng), 4))
    lines = ["WITH combined AS (", *arms[0], "    UNION ALL", *arms[1], ")"]
    namer = Namer([key.name, "origin"])
    names = [namer.take(n) for n in ("n_rows", "sum_measure", "avg_measure", "max_measure")]
    aggs = ["COUNT(*)", "SUM(u.measure)", "AVG(u.measure)", "MAX(u.measure)"]
    items = [f"u.{key.name} AS {key.name}", "u.origin AS origin"]
    items += [aliased(e, n) for e, n in zip(aggs, names, strict=True)]
    tier = namer.take("tier_measure")
    items.append(tier_case("SUM(u.measure)", tier, rng))
    lines += ["SELECT", *select_list(items, 4), "FROM combined AS u"]
    lines += ["GROUP BY", f"    u.{key.name},", "    u.origin"]
    cols = [key, Column("origin", "varchar", "origin")]
    cols += [Column(n, "bigint" if n == names[0] else "double", "measure") for n in names]
    return Built(lines, [*cols, Column(tier, "varchar", "measure")], [key.name, "origin"])


def _dedupe(cols: Iterable[Column]) -> list[Column]:
    seen: dict[str, Column] = {}
    for c in cols:
        seen.setdefault(c.name, c)
    return list(seen.values())


def _shared_key(a: Node, b: Node, rng: random.Random) -> Column:
    names = sorted({k.name for k in a.key_columns()} & {k.name for k in b.key_columns()})
    return a.column(rng.choice(names))


Template = Callable[[list[Node], Column, random.Random], Built]

# (template, number of inputs, weight)
TEMPLATES: tuple[tuple[str, Template, int, int], ...] = (
    ("agg", tpl_aggregate, 1, 3),
    ("window", tpl_window, 1, 3),
    ("star", tpl_star, 1, 1),
    ("enrich", tpl_enrich, 2, 4),
    ("join", tpl_join, 2, 3),
    ("join3", tpl_join, 3, 2),
    ("union", tpl_union, 2, 1),
)


# ----------------------------------------------------------------------------- the graph


@dataclass
class Graph:
    sources: list[Node] = field(default_factory=list)
    transforms: list[Node] = field(default_factory=list)
    by_key: dict[str, list[Node]] = field(default_factory=dict)

    def add(self, node: Node) -> None:
        (self.sources if node.kind == "source" else self.transforms).append(node)
        for key in node.key_columns():
            self.by_key.setdefault(key.name, []).append(node)


def pick_recent_or_any(pool: Sequence[Node], rng: random.Random) -> Node:
    """Mostly any earlier node, sometimes a recent one: a layered DAG of moderate depth."""
    if rng.random() < RECENT_SHARE:
        return rng.choice(pool[-RECENT_WINDOW:])
    return rng.choice(pool)


def pick_primary(g: Graph, rng: random.Random) -> Node:
    if not g.transforms or rng.random() < 0.2:
        return rng.choice(g.sources)
    return pick_recent_or_any(g.transforms, rng)


def pick_partner(g: Graph, key: Column, taken: Sequence[Node], rng: random.Random) -> Node:
    names = {n.name for n in taken}
    pool = [n for n in g.by_key.get(key.name, []) if n.name not in names]
    if not pool:
        raise Unfit(f"no partner with key {key.name}")
    return pick_recent_or_any(pool, rng)


def pick_inputs(g: Graph, arity: int, rng: random.Random) -> tuple[list[Node], Column]:
    primary = pick_primary(g, rng)
    keys = primary.key_columns()
    key = rng.choice(keys)
    ins = [primary]
    if arity >= 2:
        ins.append(pick_partner(g, key, ins, rng))
    if arity >= 3:
        ins.append(pick_partner(g, rng.choice(keys), ins, rng))
    return ins, key


def check_fit(kind: str, ins: list[Node]) -> None:
    if kind == "star" and len(ins[0].columns) > MAX_WIDTH - 4:
        raise Unfit("too wide for SELECT *")


def build_transform(g: Graph, index: int, rng: random.Random) -> Node:
    weights = [w for *_, w in TEMPLATES]
    for _ in range(200):
        kind, fn, arity, _w = rng.choices(TEMPLATES, weights=weights)[0]
        try:
            ins, key = pick_inputs(g, arity, rng)
            check_fit(kind, ins)
            built = fn(ins, key, rng)
        except Unfit:
            continue
        if MIN_LINES <= len(built.lines) + 1 <= MAX_LINES and len(built.columns) <= MAX_WIDTH + 4:
            return finish_transform(f"t{index:05d}_{kind}", ins, built, rng)
    raise RuntimeError(f"could not build transform {index}")


def finish_transform(name: str, ins: list[Node], built: Built, rng: random.Random) -> Node:
    comment = f"-- {name}: reads {', '.join(n.name for n in ins)}"
    node = Node(name, "transform", built.columns, "\n".join([comment, *built.lines]))
    node.inputs = [n.name for n in ins]
    if rng.random() < 0.1:
        node.not_null = built.not_null[:2]
    names = [c.name for c in node.columns]
    assert len(names) == len(set(names)), f"duplicate output column in {name}"
    return node


# ----------------------------------------------------------------------------- sources


def build_source(index: int, rng: random.Random) -> Node:
    entity = ENTITIES[index % len(ENTITIES)]
    key_names = list(KEY_TYPES)
    first = key_names[index % len(key_names)]
    others = rng.sample([k for k in key_names if k != first], k=rng.randint(1, 2))
    cols = [Column(k, KEY_TYPES[k], k) for k in [first, *others]]
    cols += source_attributes(rng, rng.randint(8, 15) - len(cols))
    return Node(f"src_{index}_{entity}", "source", cols)


def source_attributes(rng: random.Random, count: int) -> list[Column]:
    by_cat: dict[str, list[tuple[str, str]]] = {}
    for name, typ in ATTRIBUTES:
        by_cat.setdefault(category(typ), []).append((name, typ))
    chosen = [rng.choice(by_cat[c]) for c in ("num", "str", "bool", "ts")]
    rest = [a for a in ATTRIBUTES if a not in chosen]
    chosen += rng.sample(rest, k=max(0, count - len(chosen)))
    order = {a: i for i, a in enumerate(ATTRIBUTES)}
    return [Column(n, t, n) for n, t in sorted(chosen, key=lambda a: order[a])]


def sample_value(col: Column, row: int, rng: random.Random) -> str:
    if col.cat == "num":
        whole = rng.randint(1, 50) if col.is_key else rng.randint(0, 900)
        return (
            f"{whole}.{rng.randint(0, 99):02d}"
            if col.type.startswith(("dec", "dou"))
            else str(whole)
        )
    if col.cat == "str":
        return rng.choice(STR_VALUES)
    if col.cat == "bool":
        return rng.choice(("true", "false"))
    if col.cat == "date":
        return f"2020-0{1 + row % 9}-{10 + row:02d}"
    return f"2020-0{1 + row % 9}-{10 + row:02d} 0{row % 10}:30:00"


def csv_text(node: Node, rng: random.Random, rows: int = 5) -> str:
    lines = [",".join(c.name for c in node.columns)]
    lines += [",".join(sample_value(c, r, rng) for c in node.columns) for r in range(rows)]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- rendering


def render_pipeline(n_sources: int, n_transforms: int, seed: int) -> list[str]:
    return [
        f"# Generated by benchmarks/generate.py (version {GENERATOR_VERSION}, seed {seed}).",
        "pipeline bench {",
        f'  description = "Synthetic benchmark: {n_sources} sources, {n_transforms} transforms"',
        f'  dialect     = "{DIALECT}"',
        "}",
        "",
    ]


def render_source(node: Node) -> list[str]:
    width = max(len(c.name) for c in node.columns)
    lines = [f"source {node.name} {{", f'  from = csv("data/{node.name}.csv", header = true)']
    lines.append("  columns {")
    for c in node.columns:
        suffix = "  not null" if c.is_key else ""
        lines.append(f"    {c.name.ljust(width)}  {c.type}{suffix}")
    return [*lines, "  }", "}", ""]


def render_transform(node: Node) -> list[str]:
    lines = [f"transform {node.name} {{", '  sql = """']
    lines += [*indent(node.sql.split("\n"), 4), '  """']
    if node.not_null:
        lines += ["  expect {", f"    not_null({', '.join(node.not_null)})", "  }"]
    return [*lines, "}", ""]


def manifest(g: Graph, n_transforms: int, seed: int) -> dict[str, object]:
    return {
        "generator_version": GENERATOR_VERSION,
        "n_transforms": n_transforms,
        "seed": seed,
        "dialect": DIALECT,
        "spec": SPEC_RELPATH,
        "sources": [
            {"name": s.name, "columns": [[c.name, c.type] for c in s.columns]} for s in g.sources
        ],
        "transforms": [
            {
                "name": t.name,
                "inputs": t.inputs,
                "sql": t.sql,
                "columns": [c.name for c in t.columns],
            }
            for t in g.transforms
        ],
    }


FLOW_TOML = """\
[project]
name = "{name}"
default_profile = "dev"

[profiles.dev.local]
type = "duckdb"
path = ".flowc/local.duckdb"
"""


# ----------------------------------------------------------------------------- entry points


def build_graph(n_transforms: int, seed: int, n_sources: int | None = None) -> Graph:
    rng = random.Random(seed)
    g = Graph()
    for k in range(n_sources if n_sources is not None else max(5, n_transforms // 20)):
        g.add(build_source(k, rng))
    for i in range(1, n_transforms + 1):
        g.add(build_transform(g, i, rng))
    return g


def write_project(root: Path, g: Graph, n_transforms: int, seed: int) -> Path:
    (root / "specs").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "flow.toml").write_text(FLOW_TOML.format(name=f"bench_{n_transforms}"))
    lines = render_pipeline(len(g.sources), n_transforms, seed)
    data_rng = random.Random(seed + 1)
    for src in g.sources:
        lines += render_source(src)
        (root / "data" / f"{src.name}.csv").write_text(csv_text(src, data_rng))
    for t in g.transforms:
        lines += render_transform(t)
    text = "\n".join(lines).rstrip("\n") + "\n"
    (root / SPEC_RELPATH).write_text(text)
    body = json.dumps(manifest(g, n_transforms, seed), indent=1)
    (root / MANIFEST_NAME).write_text(body + "\n")
    meta = stamp(g, n_transforms, seed, text.count("\n"))
    (root / STAMP_NAME).write_text(json.dumps(meta) + "\n")
    return root


def stamp(g: Graph, n_transforms: int, seed: int, spec_lines: int) -> dict[str, int]:
    """What identifies a generated project (for reuse), kept apart from the big manifest."""
    return {
        "generator_version": GENERATOR_VERSION,
        "n_transforms": n_transforms,
        "n_sources": len(g.sources),
        "seed": seed,
        "spec_lines": spec_lines,
    }


def generate_project(
    root: Path, n_transforms: int, seed: int = 0, n_sources: int | None = None
) -> Path:
    """Write a benchmark project with `n_transforms` SQL transforms under `root`; return root."""
    return write_project(root, build_graph(n_transforms, seed, n_sources), n_transforms, seed)


def depth_of(g: Graph) -> int:
    depth: dict[str, int] = {s.name: 0 for s in g.sources}
    for t in g.transforms:
        depth[t.name] = 1 + max(depth[i] for i in t.inputs)
    return max(depth.values())


def summary(root: Path, g: Graph) -> str:
    spec_lines = json.loads((root / STAMP_NAME).read_text())["spec_lines"]
    sql_lines = [t.sql.count("\n") + 1 for t in g.transforms]
    widths = [len(t.columns) for t in g.transforms]
    return (
        f"{root}: {len(g.sources)} sources, {len(g.transforms)} transforms, "
        f"{spec_lines} lines in {SPEC_RELPATH}; SQL lines {min(sql_lines)}-{max(sql_lines)} "
        f"(mean {sum(sql_lines) / len(sql_lines):.1f}); output columns "
        f"{min(widths)}-{max(widths)}; DAG depth {depth_of(g)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("n_transforms", type=int)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sources", type=int, default=None, help="default: max(5, N // 20)")
    args = parser.parse_args(argv)
    g = build_graph(args.n_transforms, args.seed, args.sources)
    root = write_project(args.outdir, g, args.n_transforms, args.seed)
    print(summary(root, g))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
