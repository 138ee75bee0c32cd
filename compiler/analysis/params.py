"""The params pass: parameter defaults fit their declared types; unused parameters are flagged.

Undeclared `:name` uses are reported by the SQL pass, which finds them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flowc.compiler import ir
from flowc.compiler.analysis import extract
from flowc.compiler.diagnostics import Diagnostics


def check_params(spec: ir.Spec, diagnostics: Diagnostics) -> ir.Spec:
    if spec.pipeline is None:
        return spec
    used = {
        ref.dotted
        for node in spec.nodes
        if isinstance(node, ir.TransformNode)
        for ref in node.parameters
    } | extract.url_parameters(spec)
    # a Python source gets the pipeline parameters its function names (runtime/io/sources.py)
    used |= {
        name
        for node in spec.nodes
        if isinstance(node, ir.SourceNode) and node.python is not None
        for name in node.python.arguments
    }
    for param in spec.pipeline.params:
        if param.default is not None:
            _check_default(param, param.default, diagnostics)
        if param.name not in used:
            diagnostics.report(
                "F0505",
                param.span,
                name=param.name,
                hint="use it as `:" + param.name + "` or remove it",
            )
    return spec


def _check_default(param: ir.Param, value: ir.Value, diagnostics: Diagnostics) -> None:
    problem = value_problem(param.type, value)
    if problem:
        base = param.type.split("(")[0]
        diagnostics.report("F0502", value.span, name=param.name, type=base, detail=problem)


def value_problem(type_name: str, value: ir.Value) -> str | None:
    """Why a literal does not fit a declared type (`null` fits any), or None when it does.

    >>> from flowc.project.spans import point
    >>> value_problem("date", ir.Str(value="2020-13-01", span=point("f.flow")))
    '"2020-13-01" is not a valid value like "2020-10-01"'
    """
    checker = _CHECKS.get(type_name.split("(")[0].strip().lower())
    if checker is None or isinstance(value, ir.Null):
        return None
    return checker(value)


def _integer(value: ir.Value) -> str | None:
    if isinstance(value, ir.Num) and isinstance(value.value, int):
        return None
    return f"{ir.describe(value)} is not a whole number"


def _number(value: ir.Value) -> str | None:
    return None if isinstance(value, ir.Num) else f"{ir.describe(value)} is not a number"


def _text(value: ir.Value) -> str | None:
    return None if isinstance(value, ir.Str) else f"{ir.describe(value)} is not a string"


def _boolean(value: ir.Value) -> str | None:
    return None if isinstance(value, ir.Bool) else f"{ir.describe(value)} is not `true` or `false`"


def _iso(parse: Callable[[str], object], example: str) -> Callable[[ir.Value], str | None]:
    def check(value: ir.Value) -> str | None:
        if not isinstance(value, ir.Str):
            return f'{ir.describe(value)} is not a string like "{example}"'
        try:
            parse(value.value)
        except ValueError:
            return f'"{value.value}" is not a valid value like "{example}"'
        return None

    return check


_CHECKS: dict[str, Callable[[ir.Value], str | None]] = {
    **dict.fromkeys(("int", "integer", "smallint", "bigint"), _integer),
    **dict.fromkeys(("float", "real", "double", "decimal", "numeric"), _number),
    **dict.fromkeys(("varchar", "char", "text", "string", "uuid", "json"), _text),
    **dict.fromkeys(("boolean", "bool"), _boolean),
    "date": _iso(dt.date.fromisoformat, "2020-10-01"),
    "timestamp": _iso(dt.datetime.fromisoformat, "2020-10-01 06:00:00"),
    "timestamptz": _iso(dt.datetime.fromisoformat, "2020-10-01 06:00:00+00:00"),
    "time": _iso(dt.time.fromisoformat, "06:00:00"),
}
