"""The schedule pass: the cron expression (checked by croniter) and durations.

Durations are written as a number and a unit, combined largest first: `500ms`, `10s`,
`5m`, `1h30m`, `2d`.
"""

from __future__ import annotations

import re
from datetime import timedelta

from flowc.compiler import ir
from flowc.compiler.diagnostics import Diagnostics

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def check_schedule(spec: ir.Spec, diagnostics: Diagnostics) -> ir.Spec:
    pipeline = spec.pipeline
    if pipeline is None:
        return spec
    if pipeline.schedule is not None:
        _check_cron(pipeline.schedule, diagnostics)
    durations = [pipeline.retry_delay, pipeline.timeout]
    durations += [d for node in spec.nodes for d in (node.retry_delay, node.timeout)]
    durations += [n.lookback for n in spec.nodes if isinstance(n, ir.TransformNode)]
    for value in durations:
        if value is not None:
            check_duration(value, diagnostics)
    return spec


def parse_duration(text: str) -> timedelta | None:
    """`"1h30m"` -> 1:30:00; None if it is not a duration.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    """
    parts = _DURATION.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return None
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def check_duration(value: ir.Str, diagnostics: Diagnostics) -> None:
    if parse_duration(value.value) is None:
        diagnostics.report(
            "F0702", value.span, value=value.value, hint='write e.g. "30s", "10m", "1h30m" or "2d"'
        )


def _check_cron(value: ir.Str, diagnostics: Diagnostics) -> None:
    from croniter import croniter  # imported here: only specs with a schedule pay for it

    fields = value.value.split()
    if not value.value.startswith("@") and len(fields) != 5:
        detail = (
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
        diagnostics.report("F0701", value.span, expr=value.value, detail=detail, hint=_CRON_HINT)
        return
    try:
        croniter(value.value)
    except (ValueError, KeyError) as error:
        diagnostics.report(
            "F0701",
            value.span,
            expr=value.value,
            detail=str(error) or "not a cron expression",
            hint=_CRON_HINT,
        )


_CRON_HINT = 'five fields: minute hour day-of-month month day-of-week, e.g. "0 6 * * *"'
