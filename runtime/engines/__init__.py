"""Engine adapters, one module per engine, each with a `DIALECT` constant and one class
implementing `flowc.runtime.engines.base.Engine`; `open_engine` picks the adapter a connection's
type names. An adapter's module is imported only when a run uses it, so a DuckDB run never
pays for a Postgres or BigQuery client library."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flowc.project import config
from flowc.runtime.engines.base import Engine
from flowc.runtime.errors import StepError


def open_engine(
    connection: config.Connection,
    root: Path,
    on_wait: Callable[[int | None], None] | None = None,
) -> Engine:
    """An engine on `connection` of a profile; paths in its settings are relative to `root`.
    `on_wait` hears the pid of another process that holds a DuckDB file the engine waits for."""
    settings = connection.settings
    if isinstance(settings, config.DuckDBSettings):
        from flowc.runtime.engines.duckdb import DuckDBEngine

        return DuckDBEngine.from_settings(settings, root, on_wait)
    if isinstance(settings, config.PostgresSettings):
        from flowc.runtime.engines.postgres import PostgresEngine

        return PostgresEngine.from_settings(settings, root)
    if isinstance(settings, config.BigQuerySettings):
        from flowc.runtime.engines.bigquery import BigQueryEngine

        return BigQueryEngine.from_settings(settings, root)
    raise StepError(f"connection `{connection.name}` has an unknown type {connection.type}")
