"""Names compared as the engine compares them.

DuckDB and BigQuery columns ignore case, quoted or not; Postgres folds unquoted names to lower
case and keeps quoted ones; BigQuery table names keep their case. A name declared in a .flow
file counts as unquoted.
"""

from __future__ import annotations


def identifier_key(name: str, *, quoted: bool, dialect: str, table: bool = False) -> str:
    """The form under which the engine compares `name` written in SQL (see module docs).

    >>> identifier_key("VendorID", quoted=True, dialect="duckdb")
    'vendorid'
    >>> identifier_key("VendorID", quoted=True, dialect="postgres")
    'VendorID'
    """
    if dialect == "postgres" and quoted:
        return name
    if dialect == "bigquery" and table:
        return name
    return name.lower()


def declared_key(name: str, dialect: str, *, table: bool = False) -> str:
    """The key of a name declared in a .flow file: it counts as written unquoted."""
    return identifier_key(name, quoted=False, dialect=dialect, table=table)
