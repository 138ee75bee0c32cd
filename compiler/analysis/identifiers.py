"""Names compared as the engine compares them.

DuckDB and BigQuery columns ignore case, quoted or not; Postgres folds unquoted names to lower
case and keeps quoted ones (`Engine.folds_unquoted_names`); BigQuery table names keep their
case (`Engine.table_names_keep_case`). A name declared in a .flow file counts as unquoted.
"""

from __future__ import annotations

from flowc.project.engines import ENGINES


def identifier_key(name: str, *, quoted: bool, dialect: str, table: bool = False) -> str:
    """The form under which the engine compares `name` written in SQL (see module docs).

    >>> identifier_key("VendorID", quoted=True, dialect="duckdb")
    'vendorid'
    >>> identifier_key("VendorID", quoted=True, dialect="postgres")
    'VendorID'
    """
    engine = ENGINES.get(dialect)  # another sqlglot dialect (`flowc fmt` of any spec): none
    if engine is not None and quoted and engine.folds_unquoted_names:
        return name
    if engine is not None and table and engine.table_names_keep_case:
        return name
    return name.lower()


def declared_key(name: str, dialect: str, *, table: bool = False) -> str:
    """The key of a name declared in a .flow file: it counts as written unquoted."""
    return identifier_key(name, quoted=False, dialect=dialect, table=table)
