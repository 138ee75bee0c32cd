"""What is known about each engine, in one frozen record each (ARCHITECTURE.md, "Engines").

The compiler reads these facts to write SQL for a target, the runtime to pick an adapter and
to know what the engine can do, `flow.toml` checking to know a connection's keys. Adding an
engine is one record here and one adapter in `flowc.runtime.engines`.

>>> ENGINES["postgres"].title
'Postgres'
>>> ENGINES["bigquery"].parameter("since")
'@since'
>>> sorted(ENGINES)
['bigquery', 'duckdb', 'postgres']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EngineName = Literal["duckdb", "postgres", "bigquery"]


@dataclass(frozen=True)
class Engine:
    """The facts about one engine. Capability flags say what it can do; code asks the flag,
    never the engine's name."""

    name: EngineName
    title: str  # as people write it, in messages
    sqlglot_dialect: str  # the dialect sqlglot reads and writes for it
    placeholder: str  # how a bound parameter is written in its SQL, `{}` for the name
    # `@name` in a spec's SQL is a parameter, as `:name` is on every engine (BigQuery)
    at_sign_parameters: bool
    # table names compare with their case, quoted or not, though columns ignore it (BigQuery)
    table_names_keep_case: bool
    # the clauses of a SELECT in which the names of its SELECT list's aliases can be used
    alias_clauses: frozenset[str]
    # columns every table has without declaring them
    pseudo_columns: frozenset[str]
    # settings of a `flow.toml` connection of this type, with the value types each accepts
    settings: dict[str, tuple[type, ...]]
    required_settings: tuple[str, ...]
    # settings that a `url` setting replaces: a connection gives the URL or these, never both
    # (empty: the engine takes no connection URL)
    url_replaces: tuple[str, ...]
    # where TEMP tables live, by name (None: the engine has no such schema to qualify with)
    temp_schema: str | None
    # the type and places of a `decimal` declared without them (None: kept as written)
    default_decimal: tuple[str, int] | None
    # DDL and DML run in one transaction that a failed run rolls back (BigQuery: no)
    transactional_ddl: bool
    # unquoted names fold to lower case and quoted ones compare exactly (Postgres); else
    # names compare ignoring case, quoted or not, and keep the case of their definition
    folds_unquoted_names: bool
    # `FROM 'data/*.csv'` reads that file (DuckDB); else a quoted name is a table's
    reads_files_in_from: bool
    # `UNNEST(list) AS u` names its one column `u` (DuckDB)
    unnest_alias_names_column: bool

    def parameter(self, name: str) -> str:
        """How the parameter `name` is written in this engine's SQL."""
        return self.placeholder.format(name)


DUCKDB = Engine(
    name="duckdb",
    title="DuckDB",
    sqlglot_dialect="duckdb",
    placeholder="${}",
    at_sign_parameters=False,
    table_names_keep_case=False,
    alias_clauses=frozenset(
        {"expressions", "where", "group", "having", "qualify", "order", "windows"}
    ),
    pseudo_columns=frozenset({"rowid"}),
    settings={
        "path": (str,),
        "read_only": (bool, str),
        "memory_limit": (str,),
        "lock_timeout": (str,),
        "threads": (int, str),
        "temp_directory": (str,),
    },
    required_settings=(),
    url_replaces=(),
    temp_schema="temp",
    default_decimal=("DECIMAL(18, 3)", 3),
    transactional_ddl=True,
    folds_unquoted_names=False,
    reads_files_in_from=True,
    unnest_alias_names_column=True,
)

POSTGRES = Engine(
    name="postgres",
    title="Postgres",
    sqlglot_dialect="postgres",
    placeholder="%({})s",
    at_sign_parameters=False,
    table_names_keep_case=False,
    alias_clauses=frozenset({"group", "order"}),
    pseudo_columns=frozenset({"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"}),
    settings={
        **dict.fromkeys(("url", "host", "dbname", "user", "password", "schema"), (str,)),
        "port": (int, str),
        "sslmode": (str,),
        "fold_names": (bool, str),
    },
    required_settings=("host", "dbname", "user"),
    url_replaces=("host", "port", "dbname", "user", "password"),
    temp_schema="pg_temp",
    default_decimal=None,
    transactional_ddl=True,
    folds_unquoted_names=True,
    reads_files_in_from=False,
    unnest_alias_names_column=False,
)

BIGQUERY = Engine(
    name="bigquery",
    title="BigQuery",
    sqlglot_dialect="bigquery",
    placeholder="@{}",
    at_sign_parameters=True,
    table_names_keep_case=True,
    alias_clauses=frozenset({"group", "having", "qualify", "order"}),
    pseudo_columns=frozenset({"_partitiontime", "_partitiondate", "_table_suffix", "_file_name"}),
    settings=dict.fromkeys(
        ("project", "dataset", "location", "credentials", "api_endpoint"), (str,)
    ),
    required_settings=("project",),
    url_replaces=(),
    temp_schema=None,
    default_decimal=("NUMERIC", 9),
    transactional_ddl=False,
    folds_unquoted_names=False,
    reads_files_in_from=False,
    unnest_alias_names_column=False,
)

ENGINES: dict[str, Engine] = {engine.name: engine for engine in (DUCKDB, POSTGRES, BIGQUERY)}
