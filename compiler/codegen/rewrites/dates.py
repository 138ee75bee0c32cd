"""Dates and times: `make_date`, `epoch`, weekday and week numbers, `date_trunc`, `strftime`.

DuckDB numbers weekdays from Sunday = 0, its weeks are ISO weeks starting on Monday, and its
TIMESTAMP is BigQuery's DATETIME; the rules say each in the target's terms.
"""

from __future__ import annotations

from flowc.compiler.codegen.rewrites.context import Context
from flowc.compiler.codegen.rewrites.trees import AWARE, NAIVE, bottom_up, call, filled, of_type
from sqlglot import exp


def make_date(tree: exp.Query, context: Context) -> None:
    """Postgres spells DuckDB's `make_date(y, m, d)` the same, with integers (sqlglot
    writes `DATE_FROM_PARTS`, which it lacks)."""
    if not context.postgres:
        return
    for node in bottom_up(tree, exp.DateFromParts):
        parts = [node.args.get(k) for k in ("year", "month", "day")]
        if any(p is None for p in parts):
            continue
        args = [
            p.copy() if of_type(p, exp.DType.INT) else exp.Cast(this=p.copy(), to=_INT)
            for p in parts
            if p is not None
        ]
        node.replace(call("MAKE_DATE", *args))


_INT = exp.DataType.build("int")


def epoch(tree: exp.Query, context: Context) -> None:
    """BigQuery has no `TIME_TO_UNIX`: DuckDB's `epoch` is the seconds since 1970 as a
    double, of a date or a timestamp."""
    if not context.bigquery:
        return
    for node in bottom_up(tree, exp.TimeToUnix):
        template = "UNIX_MICROS(TIMESTAMP(__t)) / 1000000"
        node.replace(filled(template, "bigquery", t=node.this))


_DOW_BIGQUERY = "EXTRACT(DAYOFWEEK FROM __d) - 1"


_ISODOW_BIGQUERY = "MOD(EXTRACT(DAYOFWEEK FROM __d) + 5, 7) + 1"


_PARTS_BIGQUERY = {"DOY": "DAYOFYEAR", "WEEK": "ISOWEEK", "ISOYEAR": "ISOYEAR"}


def date_parts(tree: exp.Query, context: Context) -> None:
    """DuckDB numbers weekdays from Sunday = 0 (`dayofweek`, `extract(dow ...)`) and
    `week` is the ISO week; Postgres' `EXTRACT` says the same, BigQuery counts from Sunday
    = 1 and has other names."""
    for node in bottom_up(tree, exp.DayOfWeek, exp.DayOfWeekIso, exp.WeekOfYear, exp.Quarter):
        part = {exp.DayOfWeek: "DOW", exp.DayOfWeekIso: "ISODOW", exp.WeekOfYear: "WEEK"}.get(
            type(node), "QUARTER"
        )
        if context.postgres:
            node.replace(exp.Extract(this=exp.var(part), expression=node.this.copy()))
        elif isinstance(node, exp.DayOfWeek):
            node.replace(filled(_DOW_BIGQUERY, "bigquery", d=node.this))
    if not context.bigquery:
        return
    for node in bottom_up(tree, exp.Extract):
        part = node.this.name.upper()
        if part == "DOW":
            node.replace(filled(_DOW_BIGQUERY, "bigquery", d=node.expression))
        elif part == "ISODOW":
            node.replace(filled(_ISODOW_BIGQUERY, "bigquery", d=node.expression))
        elif part in _PARTS_BIGQUERY:
            node.set("this", exp.var(_PARTS_BIGQUERY[part]))
        elif part in ("EPOCH", "MILLISECOND", "MILLISECONDS", "MICROSECOND", "MICROSECONDS"):
            context.refuse(
                node,
                f"`extract({part.lower()} ...)`",
                "use `epoch(...)`, or extract the second and compute the rest",
            )


_TRUNC_UNITS = {"year", "quarter", "month", "week", "day", "hour", "minute", "second"}


def date_trunc(tree: exp.Query, context: Context) -> None:
    """DuckDB's `date_trunc` of a date or a timestamp is a timestamp, its week starts on
    Monday. BigQuery: DATETIME_TRUNC (a DuckDB timestamp is a BigQuery DATETIME), WEEK is
    Sunday's; Postgres truncates a date as a timestamp with time zone."""
    for node in bottom_up(tree, exp.TimestampTrunc, exp.DateTrunc):
        value = node.this
        unit = node.args.get("unit")
        name = (unit.name if unit is not None else "").lower()
        if not of_type(value, exp.DType.DATE, *NAIVE):
            continue
        if context.postgres:
            if of_type(value, exp.DType.DATE):
                value.replace(exp.Cast(this=value.copy(), to=exp.DataType.build("timestamp")))
            continue
        if name not in _TRUNC_UNITS:
            context.refuse(
                node,
                f"`date_trunc('{name}', ...)`",
                "truncate to year, quarter, month, week, day, hour, minute or second",
            )
            continue
        stamp = call("DATETIME", value.copy()) if of_type(value, exp.DType.DATE) else value.copy()
        part = exp.var("WEEK(MONDAY)" if name == "week" else name.upper())
        node.replace(call("DATETIME_TRUNC", stamp, part))


def strftime(tree: exp.Query, context: Context) -> None:
    """BigQuery formats a DATETIME (DuckDB's timestamp) with FORMAT_DATETIME: sqlglot
    writes FORMAT_DATE unless it knows the argument's type."""
    if not context.bigquery:
        return
    for node in bottom_up(tree, exp.TimeToStr):
        value = node.this
        if of_type(value, *NAIVE):
            value.replace(exp.TsOrDsToDatetime(this=value.copy()))
        elif of_type(value, *AWARE):
            value.replace(exp.TsOrDsToTimestamp(this=value.copy()))
