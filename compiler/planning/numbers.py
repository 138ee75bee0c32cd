"""Declared decimals that an engine rounds: said in the plan, not found in the data later.

A `decimal` (or `numeric`) declared without a precision is each engine's own default: DuckDB's
DECIMAL(18, 3), BigQuery's NUMERIC (9 places), Postgres' NUMERIC of any scale. The same
spec would then keep 3, 9 or every decimal place of the same values, so a step that creates
such a column on DuckDB or BigQuery carries a note in the plan (`flowc explain` shows it);
Postgres keeps every place. Notes are no part of a step's fingerprint: they describe it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from flowc.compiler import plan
from flowc.project.engines import ENGINES

_BARE_DECIMAL = re.compile(r"^\s*(decimal|numeric)\s*$", re.IGNORECASE)


def rounding_notes(columns: Sequence[plan.Column] | None, dialect: str) -> list[str]:
    """What `dialect` rounds of `columns` as declared.

    >>> [note] = rounding_notes([plan.Column(name="fare", type="numeric")], "duckdb")
    >>> note[:68]
    '`fare numeric` declares no precision: on duckdb it is DECIMAL(18, 3)'
    >>> rounding_notes([plan.Column(name="fare", type="numeric")], "postgres")
    []
    """
    engine = ENGINES.get(dialect)
    if engine is None or engine.default_decimal is None:
        return []
    engine_type, places = engine.default_decimal
    return [
        f"`{c.name} {c.type}` declares no precision: on {dialect} it is {engine_type}, which "
        f"holds {places} decimal places; the engine rounds values with more, flowc's loads "
        "refuse them (declare `decimal(p, s)` to keep more)"
        for c in columns or ()
        if _BARE_DECIMAL.match(c.type)
    ]
