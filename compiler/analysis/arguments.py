"""Check the arguments of a call (`csv(...)`, `not_null(...)`) against its `Signature`."""

from __future__ import annotations

from flowc.compiler import ir
from flowc.compiler.diagnostics import Diagnostics, did_you_mean
from flowc.compiler.vocabulary import Signature

_KIND_WORDS = {
    "string": "a string",
    "bool": "`true` or `false`",
    "int": "a whole number",
    "ref": "a name",
    "refs": "a list of names",
    "partition": "a list of names (or `date(name)`)",
    "list": "a list",
    "strings": "a string or a list of strings",
    "map": 'a map `{ name = "value" }`',
    "word": "a string",
    "dotted": "`node.column`",
}


def check_call(call: ir.Call, signature: Signature, diagnostics: Diagnostics) -> bool:
    """Report every argument of `call` that does not fit `signature`; True when all fit."""
    before = len(diagnostics)
    _check_positionals(call, signature, diagnostics)
    _check_keywords(call, signature, diagnostics)
    _check_required(call, signature, diagnostics)
    return len(diagnostics) == before


def argument(call: ir.Call, signature: Signature, name: str) -> ir.Value | None:
    """The value passed for parameter `name`, by position or by keyword."""
    positional = [n for n, _ in signature.required + signature.optional]
    if name in positional and positional.index(name) < len(call.args):
        return call.args[positional.index(name)]
    keyword = call.keyword(name)
    return keyword.value if keyword else None


def fits(value: ir.Value, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, ir.Str)
    if kind == "bool":
        return isinstance(value, ir.Bool)
    if kind == "int":
        return isinstance(value, ir.Num) and isinstance(value.value, int)
    if kind == "ref":
        return isinstance(value, ir.Ref) and len(value.parts) == 1
    if kind == "dotted":
        return isinstance(value, ir.Ref) and len(value.parts) == 2
    if kind == "refs":
        return isinstance(value, ir.ListValue) and all(fits(i, "ref") for i in value.items)
    if kind == "list":
        return isinstance(value, ir.ListValue)
    if kind == "strings":
        items = value.items if isinstance(value, ir.ListValue) else (value,)
        return bool(items) and all(isinstance(i, ir.Str) for i in items)
    if kind == "map":
        return isinstance(value, ir.MapValue)
    if kind == "word":
        return choice(value) is not None
    if kind == "partition":
        return isinstance(value, ir.ListValue) and all(
            fits(i, "ref") or (isinstance(i, ir.Call) and date_of(i) is not None)
            for i in value.items
        )
    return choice(value) in kind.split("|")


def date_of(call: ir.Call) -> ir.Ref | None:
    """The column of `date(col)` (a table's partition: by the day of a timestamp)."""
    if call.name == "date" and len(call.args) == 1 and not call.keywords:
        [column] = call.args
        if isinstance(column, ir.Ref) and len(column.parts) == 1:
            return column
    return None


def unwrap_dates(values: tuple[ir.Value, ...]) -> list[ir.Value]:
    """`[day, date(pickup_at)]` as the columns they name: `[day, pickup_at]`."""
    return [(date_of(v) or v) if isinstance(v, ir.Call) else v for v in values]


def choice(value: ir.Value) -> str | None:
    """The word a choice is written as: `"warn"` or the bare `warn`."""
    if isinstance(value, ir.Str):
        return value.value
    if isinstance(value, ir.Ref) and len(value.parts) == 1:
        return value.parts[0]
    return None


def kind_words(kind: str) -> str:
    if kind in _KIND_WORDS:
        return _KIND_WORDS[kind]
    return "one of " + ", ".join(f'"{c}"' for c in kind.split("|"))


def _check_positionals(call: ir.Call, signature: Signature, diagnostics: Diagnostics) -> None:
    slots = list(signature.required + signature.optional)
    for index, value in enumerate(call.args):
        if index < len(slots):
            name, kind = slots[index]
        elif signature.variadic:
            name, kind = f"argument {index + 1}", signature.variadic
        else:
            diagnostics.report(
                "F0213",
                value.span,
                hint=_usage(call.name, signature),
                detail=f"`{call.name}` takes at most {len(slots)} positional argument(s)",
            )
            continue
        _check_value(call, name, kind, value, diagnostics)


def _check_keywords(call: ir.Call, signature: Signature, diagnostics: Diagnostics) -> None:
    seen: dict[str, ir.Keyword] = {}
    positional = [n for n, _ in signature.required + signature.optional][: len(call.args)]
    for keyword in call.keywords:
        kind = signature.parameter(keyword.name)
        if kind is None:
            hint = did_you_mean(keyword.name, signature.keyword_names())
            detail = f"`{call.name}` has no argument `{keyword.name}`"
            diagnostics.report("F0213", keyword.name_span, hint=hint, detail=detail)
        elif keyword.name in seen or keyword.name in positional:
            detail = f"argument `{keyword.name}` of `{call.name}` is given more than once"
            diagnostics.report("F0213", keyword.name_span, detail=detail)
        else:
            _check_value(call, keyword.name, kind, keyword.value, diagnostics)
        seen[keyword.name] = keyword


def _check_required(call: ir.Call, signature: Signature, diagnostics: Diagnostics) -> None:
    for name, _kind in signature.required:
        if argument(call, signature, name) is None:
            detail = f"`{call.name}` needs its `{name}` argument"
            diagnostics.report("F0213", call.span, hint=_usage(call.name, signature), detail=detail)
    if signature.at_least_one_keyword and not call.keywords and not call.args:
        names = " or ".join(f"`{n}`" for n, _ in signature.optional)
        diagnostics.report(
            "F0213",
            call.span,
            hint=_usage(call.name, signature),
            detail=f"`{call.name}` needs {names}",
        )


def _check_value(
    call: ir.Call, name: str, kind: str, value: ir.Value, diagnostics: Diagnostics
) -> None:
    if fits(value, kind):
        return
    got = ir.describe(value)
    word = choice(value)
    hint: str | None
    if word is not None and "|" in kind:
        got = f'"{word}"' if isinstance(value, ir.Str) else f"`{word}`"
        hint = did_you_mean(word, kind.split("|")) or f"write one of: {kind.replace('|', ', ')}"
    else:
        hint = _usage(call.name, None)
    detail = f"argument `{name}` of `{call.name}` must be {kind_words(kind)}, not {got}"
    diagnostics.report("F0213", value.span, hint=hint, detail=detail)


def _usage(name: str, signature: Signature | None) -> str | None:
    examples = {
        "csv": 'csv("data/trips.csv.gz", header = true, delimiter = ",")',
        "parquet": 'parquet("data/trips/*.parquet")',
        "json": 'json("data/events.jsonl")',
        "http": 'http("https://example.org/trips.csv.gz", format = "csv")',
        "table": 'table(warehouse, "schema.table")',
        "not_null": "not_null(col_a, col_b)",
        "unique": "unique(col_a, col_b)",
        "accepted_values": "accepted_values(col, [1, 2])",
        "row_count": "row_count(min = 1, max = 1000)",
        "check": 'check("amount >= 0")',
        "relationship": "relationship(col, other_node.col)",
        "file": 'file("sql/query.sql")',
    }
    return f"for example: {examples[name]}" if name in examples else None
