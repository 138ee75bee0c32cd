"""Types for the rewrites: sqlglot's `annotate_types`, carried onto the tree being rewritten.

The dialect rewrites (`compiler/codegen/rewrites/`) depend on types: DuckDB's `ROUND` of a double
is not Postgres' (which has no `round(double precision, integer)`), `x % 2` of a double has
no Postgres operator, an alias list over `SELECT *` needs the star's columns. sqlglot types
an expression only once its columns are qualified, and qualifying rewrites the tree (stars
expanded, outputs aliased, names normalized). So the tree is copied, the copy qualified and
typed against the input schemas, and the types are carried back onto the original nodes,
which the copy mirrors node for node (`Expr.copy` keeps the structure, qualifying edits
nodes in place). The original's SQL does not change; its nodes gain a `type` (which sqlglot's
generators consult too) and each query its output names (`OUTPUTS`, stars expanded).

What cannot be typed stays untyped (`type` None or UNKNOWN): a query sqlglot cannot qualify,
a column of an input whose columns are unknown. The rewrites treat that as "may be anything".

Schemas map each node a query reads to its columns as (name, type) pairs, types in flowc's
spelling (`int`, `decimal(10, 2)`, `unknown`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

Schemas = Mapping[str, Sequence[tuple[str, str]]]  # node -> its columns (name, type)
OUTPUTS = "flowc_outputs"  # meta of a query: its output names (None: unnamed), stars expanded


def annotate(tree: exp.Query, schemas: Schemas, dialect: str) -> bool:
    """Type the nodes of `tree` (written in `dialect`) in place; False when sqlglot could not
    qualify it (then nothing is typed).

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("SELECT x / 2 AS h FROM t", read="duckdb")
    >>> annotate(tree, {"t": [("x", "int")]}, "duckdb")
    True
    >>> tree.selects[0].this.type.sql(), tree.meta[OUTPUTS]
    ('DOUBLE', ('h',))
    """
    copy = tree.copy()
    originals = {id(c): o for o, c in zip(tree.walk(), copy.walk(), strict=True)}
    if not _typed(copy, schemas, dialect):
        return False
    known = {name.lower() for name, columns in schemas.items() if columns}
    for node in copy.walk():
        original = originals.get(id(node))
        if original is None:
            continue
        if node.type is not None:
            original.type = node.type
        names = _outputs(node, originals, known) if isinstance(node, exp.Query) else None
        if names is not None:
            original.meta[OUTPUTS] = names
    return True


def output_types(tree: exp.Query, schemas: Schemas, dialect: str) -> list[tuple[str, str]]:
    """The (name, type) of each column `tree` outputs (type `unknown` where it cannot tell;
    no columns when sqlglot cannot qualify the query).

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("SELECT x / 2 AS h, x FROM t", read="duckdb")
    >>> output_types(tree, {"t": [("x", "int")]}, "duckdb")
    [('h', 'double'), ('x', 'int')]
    """
    copy = tree.copy()
    if not _typed(copy, schemas, dialect):
        return []
    return [(s.alias_or_name, type_name(s, dialect)) for s in copy.selects]


def type_name(node: exp.Expr, dialect: str) -> str:
    """A node's type in flowc's spelling, `unknown` when it has none."""
    kind = node.type
    if kind is None or kind.is_type(exp.DType.UNKNOWN, exp.DType.NULL):
        return "unknown"
    return kind.sql(dialect=dialect).lower()


def _typed(copy: exp.Query, schemas: Schemas, dialect: str) -> bool:
    try:
        schema = MappingSchema(_mapping(schemas), dialect=dialect, normalize=True)
        qualify(
            copy,
            schema=schema,
            dialect=dialect,
            expand_alias_refs=False,
            validate_qualify_columns=False,
            quote_identifiers=False,
        )
        annotate_types(copy, schema=schema, dialect=dialect)
    except (SqlglotError, KeyError, ValueError, TypeError, AttributeError, RecursionError):
        return False  # sqlglot's optimizer is not total over every dialect's syntax
    return True


def _mapping(schemas: Schemas) -> dict[str, object]:
    found: dict[str, object] = {}
    for node, columns in schemas.items():
        if not columns:
            continue  # columns unknown: sqlglot leaves its columns untyped
        found[node] = {name: kind if kind != "unknown" else "UNKNOWN" for name, kind in columns}
    return found


def _outputs(
    query: exp.Query, originals: Mapping[int, exp.Expr], known: set[str]
) -> tuple[str | None, ...] | None:
    """The names `query` outputs as the original tree writes them: an item's alias or
    column name, a star's columns by their names; None for an unnamed expression. The copy
    aliases every item (with the outer names of a derived table's column list, too), so
    each name is read off the original node the copy's item came from. None when a star
    could not be expanded (its columns are unknown)."""
    select: exp.Expr = query
    while isinstance(select, exp.SetOperation | exp.Subquery):
        select = select.this
    if not isinstance(select, exp.Select):
        return None
    names: list[str | None] = []
    for item in select.expressions:
        inner = item.this if isinstance(item, exp.Alias) else item
        if isinstance(inner, exp.Star) or (isinstance(inner, exp.Column) and inner.is_star):
            return None
        original = originals.get(id(inner))
        if original is None and not _expanded_from_known(inner, select, known):
            return None  # sqlglot made the columns of a table it knows nothing of
        names.append(_written_name(original) if original is not None else inner.output_name)
    return tuple(names)


def _expanded_from_known(column: exp.Expr, select: exp.Select, known: set[str]) -> bool:
    """Whether a column the copy's star expansion made comes from a table whose columns
    are known (or from a query's output), not one sqlglot had to guess."""
    if not isinstance(column, exp.Column) or not column.table:
        return False
    sources = [select.args.get("from_"), *(select.args.get("joins") or [])]
    for source in sources:
        table = source.this if isinstance(source, exp.From | exp.Join) else None
        if isinstance(table, exp.Table) and table.alias_or_name == column.table:
            return table.name.lower() in known
    return True


def _written_name(node: exp.Expr) -> str | None:
    parent = node.parent
    if isinstance(parent, exp.Alias) and isinstance(parent.parent, exp.Select):
        return parent.alias
    if isinstance(node, exp.Alias):
        return node.alias
    if isinstance(node, exp.Column) and isinstance(parent, exp.Select):
        return node.name
    return None
