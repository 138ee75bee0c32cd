"""The extract pass: what an `http(...)` source fetches, checked before anything runs.

`http` takes one URL or a list of them; `{name}` in a URL is filled from `each` (a map of
lists: one URL per combination, in the order written) or, at run time, from the pipeline
parameter of that name. `${VAR}` is the environment variable (a secret: messages show the
URL as written). A JSON API (`format = "json", records = "data"`) may page its results
(`paginate = next | link | cursor | offset | page`). docs/language.md describes them.

This module only checks and expands; downloading is runtime/io/download.py and runtime/io/api.py.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from flowc.compiler import ir, plan
from flowc.compiler.diagnostics import Diagnostics, did_you_mean
from flowc.project.spans import Span

PAGINATIONS = ("next", "link", "cursor", "offset", "page")
# a `{name}` that is not the `{` of `${VAR}`
PLACEHOLDER = re.compile(r"(?<!\$)\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}")
# keywords of `http` that say how to read a JSON API, and the paginations each belongs to
_API_KEYWORDS = {
    "next": ("next",),
    "cursor": ("cursor",),
    "cursor_param": ("cursor",),
    "offset_param": ("offset",),
    "page_param": ("page",),
    "size_param": ("offset", "page"),
    "page_size": ("offset", "page"),
}
_NEEDS = {"next": "next", "cursor": "cursor"}  # the path a pagination cannot do without


def check_http(spec: ir.Spec, diagnostics: Diagnostics) -> None:
    """Report every misuse of `http(...)`'s URL templates and API options."""
    params = {p.name for p in spec.pipeline.params} if spec.pipeline else set()
    for node in spec.nodes:
        if isinstance(node, ir.SourceNode) and node.from_ and node.from_.name == "http":
            _check_one(node.name, node.from_, params, diagnostics)


def _check_one(node: str, call: ir.Call, params: set[str], diagnostics: Diagnostics) -> None:
    each = _each(call)
    for value in _url_values(call):
        for found in PLACEHOLDER.finditer(value.value):
            name = found["name"]
            if name not in each and name not in params:
                hint = did_you_mean(name, [*each, *params]) or (
                    f"add `each = {{ {name} = [...] }}` to `http`, or a parameter `{name}`"
                )
                diagnostics.report("F0223", value.span, hint=hint, name=name, node=node)
    used = {f["name"] for v in _url_values(call) for f in PLACEHOLDER.finditer(v.value)}
    for key, span in _each_spans(call).items():
        if key not in used:
            detail = f"`each` gives `{key}`, which no URL of `{node}` uses as `{{{key}}}`"
            diagnostics.report("F0225", span, hint=f"write `{{{key}}}` in the URL", detail=detail)
    _check_maps(node, call, diagnostics)
    _check_api(node, call, diagnostics)


def _check_maps(node: str, call: ir.Call, diagnostics: Diagnostics) -> None:
    """`each` values are lists of strings or numbers; `headers` values are strings."""
    for name, fits, wants in (
        ("each", _each_value, 'a list of one or more strings or numbers (`month = ["10", "11"]`)'),
        ("headers", lambda v: isinstance(v, ir.Str), 'a string (`Accept = "text/csv"`)'),
    ):
        keyword = call.keyword(name)
        if keyword is None or not isinstance(keyword.value, ir.MapValue):
            continue
        for entry in keyword.value.entries:
            if not fits(entry.value):
                got = ir.describe(entry.value)
                detail = f"`{entry.key}` of `{name}` in `{node}` must be {wants}, not {got}"
                diagnostics.report("F0225", entry.value.span, detail=detail)
            elif name == "headers" and _literal_secret(entry):
                detail = (
                    f"header `{entry.key}` of `{node}` holds a secret as written: it would be"
                    " in the plan, the run history and the repository"
                )
                hint = "write `${NAME}` and set NAME in the environment or in `.env`"
                diagnostics.report("F0225", entry.value.span, hint=hint, detail=detail)


def _literal_secret(entry: ir.MapEntry) -> bool:
    """A credential header (`Authorization`, `X-Api-Key`, ...) with no `${VAR}` in it."""
    key = entry.key.lower()
    secret = key in ("authorization", "proxy-authorization", "cookie") or any(
        word in key for word in ("token", "key", "secret", "password")
    )
    return secret and isinstance(entry.value, ir.Str) and "${" not in entry.value.value


def _each_value(value: ir.Value) -> bool:
    return (
        isinstance(value, ir.ListValue)
        and bool(value.items)
        and all(isinstance(i, ir.Str | ir.Num) for i in value.items)
    )


def _check_api(node: str, call: ir.Call, diagnostics: Diagnostics) -> None:
    paginate = call.keyword("paginate")
    kind = _text(paginate.value) if paginate else None
    if paginate and kind not in PAGINATIONS:
        hint = did_you_mean(kind or "", PAGINATIONS) or "write one of: " + ", ".join(PAGINATIONS)
        got = f'"{kind}"' if kind is not None else ir.describe(paginate.value)
        diagnostics.report("F0224", paginate.value.span, hint=hint, kind=got)
        return
    fmt = call.keyword("format")
    is_json = fmt is not None and _text(fmt.value) == "json"
    records = call.keyword("records")
    for keyword in (records, paginate):
        if keyword and not is_json:
            detail = f'`{keyword.name}` of `{node}` reads a JSON API: it needs `format = "json"`'
            hint = 'add `format = "json"`'
            diagnostics.report("F0225", keyword.name_span, hint=hint, detail=detail)
    if paginate and not records:
        detail = f"`paginate` of `{node}` needs `records`, the path to each page's rows"
        hint = 'add `records = "data"`'
        diagnostics.report("F0225", paginate.name_span, hint=hint, detail=detail)
    for name, kinds in _API_KEYWORDS.items():
        keyword = call.keyword(name)
        if keyword and kind not in kinds:
            says = " or ".join(f'`paginate = "{k}"`' for k in kinds)
            detail = f"`{name}` of `{node}` applies to {says} only"
            diagnostics.report("F0225", keyword.name_span, hint=f"add {says}", detail=detail)
    needed = _NEEDS.get(kind or "")
    if paginate and needed and not call.keyword(needed):
        detail = f'`paginate = "{kind}"` of `{node}` needs `{needed}`, the path to it in the body'
        hint = f'add `{needed} = "meta.{needed}"` (where the body has it)'
        diagnostics.report("F0225", paginate.value.span, hint=hint, detail=detail)


def url_parameters(spec: ir.Spec) -> set[str]:
    """The `{name}`s of `http` URLs that no `each` gives: pipeline parameters, used there."""
    used: set[str] = set()
    for node in spec.nodes:
        if isinstance(node, ir.SourceNode) and node.from_ and node.from_.name == "http":
            each = _each(node.from_)
            values = _url_values(node.from_)
            used |= {f["name"] for v in values for f in PLACEHOLDER.finditer(v.value)} - set(each)
    return used


def urls(call: ir.Call) -> list[str]:
    """Every URL of an `http` call, `each` expanded (the last key varying fastest)."""
    each = _each(call)
    return [
        fill(value.value, combination)
        for value in _url_values(call)
        for combination in _combinations(each)
    ]


def fill(url: str, values: dict[str, str]) -> str:
    """`url` with each `{name}` of `values` replaced; other `{name}`s stay."""
    return PLACEHOLDER.sub(lambda m: values.get(m["name"], m[0]), url)


def api(call: ir.Call) -> plan.Api | None:
    """How to read a JSON API, or None for a file (CSV, Parquet, JSON lines)."""
    records = call.keyword("records")
    if records is None:
        return None
    fields = {name: _scalar(call, name) for name in ("records", "paginate", *_API_KEYWORDS)}
    given = {k: v for k, v in fields.items() if v is not None}
    return plan.Api.model_validate(given)


def _scalar(call: ir.Call, name: str) -> str | int | None:
    keyword = call.keyword(name)
    if keyword is None:
        return None
    value = keyword.value
    if isinstance(value, ir.Num) and isinstance(value.value, int):
        return value.value
    return _text(value)


def _url_values(call: ir.Call) -> list[ir.Str]:
    given: ir.Value | None = call.args[0] if call.args else None
    keyword = call.keyword("url")
    if given is None and keyword is not None:
        given = keyword.value
    if isinstance(given, ir.Str):
        return [given]
    if isinstance(given, ir.ListValue):
        return [i for i in given.items if isinstance(i, ir.Str)]
    return []


def _each(call: ir.Call) -> dict[str, list[str]]:
    keyword = call.keyword("each")
    if keyword is None or not isinstance(keyword.value, ir.MapValue):
        return {}
    return {e.key: _strings(e.value) for e in keyword.value.entries}


def _each_spans(call: ir.Call) -> dict[str, Span]:
    keyword = call.keyword("each")
    if keyword is None or not isinstance(keyword.value, ir.MapValue):
        return {}
    return {e.key: e.key_span for e in keyword.value.entries}


def _combinations(each: dict[str, list[str]]) -> Iterator[dict[str, str]]:
    keys = list(each)
    for values in itertools.product(*(each[k] for k in keys)):
        yield dict(zip(keys, values, strict=True))


def _strings(value: ir.Value) -> list[str]:
    items = value.items if isinstance(value, ir.ListValue) else (value,)
    return [str(v.value) for v in items if isinstance(v, ir.Str | ir.Num)]


def string_map(value: ir.Value) -> dict[str, str]:
    if not isinstance(value, ir.MapValue):
        return {}
    return {e.key: e.value.value for e in value.entries if isinstance(e.value, ir.Str)}


def _text(value: ir.Value) -> str | None:
    if isinstance(value, ir.Str):
        return value.value
    if isinstance(value, ir.Ref) and len(value.parts) == 1:
        return value.parts[0]
    return None
