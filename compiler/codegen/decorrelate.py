"""Decorrelation: a correlated scalar aggregate becomes a grouped derived table, for Postgres.

Postgres runs a correlated subquery once per outer row and never rewrites it into a join
(TPC-H q20: 8,000 scans of `lineitem` at scale factor 0.01, about two minutes); DuckDB and
BigQuery decorrelate such queries themselves. So for Postgres, a WHERE conjunct comparing with
a scalar subquery

    x < (SELECT 0.2 * avg(l_quantity) FROM lineitem WHERE l_partkey = p_partkey AND c)

becomes, with the subquery grouped by its correlated columns and cross-joined,

    FROM ..., (SELECT l_partkey AS _k0, 0.2 * avg(l_quantity) AS _v FROM lineitem WHERE c
               GROUP BY l_partkey) AS _flowc_sq1
    WHERE ... AND x < _flowc_sq1._v AND _flowc_sq1._k0 = p_partkey

Exact, because: a comparison with NULL filters the row, and an outer row without a group
(its aggregate over no rows is NULL, for every aggregate but COUNT, which is left alone) has no
partner in the join either; a group is one row per key, so no row is repeated. Applied only
where all of that is plain from the tree: the subquery is one aggregate expression over its own
FROM, without GROUP BY, HAVING, DISTINCT, LIMIT, window or nested subquery, correlated only by
equalities between a column of its own and one of the enclosing query (the schema pass marks
the latter `OUTER`), and the comparison is a top-level conjunct of the enclosing WHERE.
"""

from __future__ import annotations

import itertools

from flowc.compiler.analysis.schema import OUTER, RESOLVED
from sqlglot import exp

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_UNSUPPORTED = ("group", "having", "distinct", "limit", "offset", "order", "qualify", "with_")


def decorrelate(tree: exp.Query) -> None:
    """Rewrite, in place, each correlated scalar aggregate of `tree` that can be a join."""
    counter = itertools.count(1)
    for select in reversed(list(tree.find_all(exp.Select))):
        where = select.args.get("where")
        if not isinstance(where, exp.Where) or not select.args.get("from_"):
            continue
        for conjunct in list(
            where.this.flatten() if isinstance(where.this, exp.And) else [where.this]
        ):
            subquery = _scalar_subquery(conjunct)
            if subquery is not None:
                _join_grouped(select, subquery, f"_flowc_sq{next(counter)}")


def _scalar_subquery(conjunct: exp.Expr) -> exp.Subquery | None:
    if not isinstance(conjunct, _COMPARISONS):
        return None
    sides = [conjunct.this, conjunct.expression]
    found = [s for s in sides if isinstance(s, exp.Subquery)]
    if len(found) != 1 or any(s.find(exp.Subquery, exp.Exists) for s in sides if s is not found[0]):
        return None
    return found[0] if _groupable(found[0]) else None


def _groupable(subquery: exp.Subquery) -> bool:
    inner = subquery.this
    if not isinstance(inner, exp.Select) or len(inner.expressions) != 1:
        return False
    if any(inner.args.get(arg) for arg in _UNSUPPORTED) or not inner.args.get("from_"):
        return False
    value = inner.expressions[0]
    body = value.this if isinstance(value, exp.Alias) else value
    if not body.find(exp.AggFunc) or body.find(exp.Count, exp.Window, exp.Subquery):
        return False
    if inner.find(exp.Subquery, exp.Exists, exp.In) or _outer_columns(body):
        return False
    correlations, rest = _split(inner)
    if not correlations or any(_outer_columns(c) for c in rest):
        return False
    return not any(_outer_columns(j) for j in inner.args.get("joins") or [])


def _split(inner: exp.Select) -> tuple[list[tuple[exp.Column, exp.Column]], list[exp.Expr]]:
    """The WHERE conjuncts of `inner`: (own column, outer column) equalities, and the rest."""
    where = inner.args.get("where")
    if not isinstance(where, exp.Where):
        return [], []
    conjuncts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    correlations: list[tuple[exp.Column, exp.Column]] = []
    rest: list[exp.Expr] = []
    for conjunct in conjuncts:
        pair = _correlation(conjunct)
        if pair is None:
            rest.append(conjunct)
        else:
            correlations.append(pair)
    return correlations, rest


def _correlation(conjunct: exp.Expr) -> tuple[exp.Column, exp.Column] | None:
    if not isinstance(conjunct, exp.EQ):
        return None
    left, right = conjunct.this, conjunct.expression
    if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
        return None
    if not (RESOLVED in left.meta and RESOLVED in right.meta):
        return None  # a column flowc could not resolve: it cannot tell whose it is
    if left.meta.get(OUTER) and not right.meta.get(OUTER):
        return right, left
    if right.meta.get(OUTER) and not left.meta.get(OUTER):
        return left, right
    return None


def _outer_columns(node: exp.Expr) -> bool:
    return any(column.meta.get(OUTER) for column in node.find_all(exp.Column))


def _join_grouped(select: exp.Select, subquery: exp.Subquery, name: str) -> None:
    inner = subquery.this
    assert isinstance(inner, exp.Select)
    correlations, rest = _split(inner)
    value = inner.expressions[0]
    body = value.this if isinstance(value, exp.Alias) else value
    keys = [own.copy() for own, _ in correlations]
    grouped = exp.Select(
        expressions=[
            *(exp.alias_(key, f"_k{i}") for i, key in enumerate(keys)),
            exp.alias_(body.copy(), "_v"),
        ],
        from_=inner.args["from_"].copy(),
        joins=[j.copy() for j in inner.args.get("joins") or []] or None,
        where=exp.Where(this=exp.and_(*(c.copy() for c in rest))) if rest else None,
        group=exp.Group(expressions=[k.copy() for k in keys]),
    )
    subquery.replace(exp.column("_v", table=name))
    select.join(grouped.subquery(name), join_type="cross", copy=False)
    matches = [
        exp.EQ(this=exp.column(f"_k{i}", table=name), expression=outer.copy())
        for i, (_, outer) in enumerate(correlations)
    ]
    select.where(*matches, copy=False)
