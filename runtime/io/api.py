"""JSON APIs: `http(url, format = "json", records = "...", paginate = ...)` sources.

Each response body is one JSON document; its rows are the array at the dotted path `records`
(`""`: the body itself). A record's nested objects are flattened, their keys joined by `_`
(`{"fare": {"total": 3}}` has the column `fare_total`); lists and objects left over are
kept as JSON text. Values are read as text and cast to the declared columns, so a value
either fits its declared type or fails naming the page, the row and the column.

Further pages, by `paginate`:
- `next`: the URL at the path `next` of the body (relative to the page's URL); none: the end.
- `link`: the `rel="next"` URL of the `Link` header (RFC 8288); none: the end.
- `cursor`: the value at the path `cursor`, sent as the query parameter `cursor_param`;
  none, empty, or a page without records: the end.
- `offset`: `offset_param` (0, then the records so far) and `size_param` (`page_size`, 100
  unless given); a page with fewer records than that: the end.
- `page`: `page_param` from 1 (and `size_param` when `page_size` is given); a page without
  records (or fewer than `page_size`): the end.

Every page is fetched under the node's retry policy (download.py), and a page URL seen before
fails the load (a server that pages in a circle would never end).
"""

from __future__ import annotations

import itertools
import json
import re
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
from flowc.compiler.plan import Api
from flowc.runtime.errors import StepError
from flowc.runtime.io.columns import ColumnLike, Conformer, declared_schema
from flowc.runtime.io.download import BrokenBody, Policy, Url, open_url, retried

DEFAULT_PAGE_SIZE = 100
_LINK = re.compile(r'<(?P<url>[^>]*)>\s*;[^,]*?\brel="?(?P<rel>[^",;]*)"?')
Page = tuple[Any, str | None]  # the body, and its `Link` header


def read_api(
    urls: Sequence[Url], api: Api, *, columns: Sequence[ColumnLike] | None, policy: Policy
) -> pa.RecordBatchReader:
    """Every record of every page of every URL, in order, as one stream."""
    batches = itertools.chain.from_iterable(_batches(u, api, columns, policy) for u in urls)
    schema = declared_schema(columns) if columns else None
    if schema is None:
        first = next(batches, None)
        if first is None:
            return pa.RecordBatchReader.from_batches(pa.schema([]), iter(()))
        schema = first.schema
        batches = itertools.chain([first], batches)
    return pa.RecordBatchReader.from_batches(schema, batches)


def _batches(
    url: Url, api: Api, columns: Sequence[ColumnLike] | None, policy: Policy
) -> Iterator[pa.RecordBatch]:
    row = 1
    for page, records in _pages(url, api, policy):
        if not records:
            continue
        flat = [_flattened(r) for r in records]
        if columns is None:
            yield pa.RecordBatch.from_pylist(flat)
        else:
            conformer = Conformer(tuple(columns), page.shown, missing="null")
            yield conformer.batch(_text_batch(flat, columns), row)
        row += len(records)


def _pages(url: Url, api: Api, policy: Policy) -> Iterator[tuple[Url, list[Any]]]:
    page: Url | None = _first_page(url, api)
    seen: set[str] = set()
    count = 0
    while page is not None:
        if page.actual in seen:
            raise StepError(f"{page.shown}: the API pages in a circle (this page came before)")
        seen.add(page.actual)
        body, link = retried(lambda p=page: _get(p.actual, policy), page.shown, policy)  # type: ignore[misc]
        records = _records(body, api.records, page.shown)
        yield page, records
        count += len(records)
        page = _next_page(url, page, api, body, link, records, count)


def _first_page(url: Url, api: Api) -> Url:
    if api.paginate == "offset":
        return _with_query(url, {api.offset_param: "0", api.size_param: str(_size(api))})
    if api.paginate == "page":
        return _with_query(url, {api.page_param: "1", **_sized(api)})
    return url


def _next_page(
    first: Url, page: Url, api: Api, body: Any, link: str | None, records: list[Any], count: int
) -> Url | None:
    kind = api.paginate
    if kind == "next":
        found = _at(body, api.next or "")
        return _joined(page, str(found)) if found else None
    if kind == "link":
        target = next_link(link)
        return _joined(page, target) if target else None
    if kind == "cursor":
        cursor = _at(body, api.cursor or "")
        if cursor in (None, "") or not records:
            return None
        return _with_query(first, {api.cursor_param: str(cursor)})
    if kind == "offset":
        if len(records) < _size(api):
            return None
        return _with_query(first, {api.offset_param: str(count), api.size_param: str(_size(api))})
    if kind == "page":
        if not records or (api.page_size is not None and len(records) < api.page_size):
            return None
        number = int(_query_value(page.actual, api.page_param) or "1") + 1
        return _with_query(first, {api.page_param: str(number), **_sized(api)})
    return None


def next_link(header: str | None) -> str | None:
    """The `rel="next"` target of a `Link` header.

    >>> next_link('<https://x/p?page=2>; rel="next", <https://x/p?page=9>; rel="last"')
    'https://x/p?page=2'
    """
    for found in _LINK.finditer(header or ""):
        if "next" in found["rel"].split():
            return found["url"]
    return None


def _size(api: Api) -> int:
    return api.page_size or DEFAULT_PAGE_SIZE


def _sized(api: Api) -> dict[str, str]:
    return {api.size_param: str(api.page_size)} if api.page_size is not None else {}


def _joined(page: Url, target: str) -> Url:
    """A next URL, relative to `page`; shown as the server gave it, but a token it echoes
    back (an `${VAR}` value of the spec's URL or headers) written as `${VAR}`."""
    absolute = urllib.parse.urljoin(page.actual, target)
    return Url(absolute, page.masked(urllib.parse.urljoin(page.shown, target)), page.masks)


def _with_query(url: Url, values: dict[str, str]) -> Url:
    return Url(_set_query(url.actual, values), _set_query(url.shown, values), url.masks)


def _set_query(url: str, values: dict[str, str]) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
    query = [(k, v) for k, v in query if k not in values] + list(values.items())
    # `safe` keeps a `${VAR}` of the shown URL readable
    encoded = urllib.parse.urlencode(query, safe="${}")
    return urllib.parse.urlunsplit(parts._replace(query=encoded))


def _query_value(url: str, name: str) -> str | None:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    return query.get(name, [None])[0]


def _get(url: str, policy: Policy) -> Page:
    """One attempt at one page: its body parsed (a body cut short is `BrokenBody`)."""
    with open_url(url, policy) as response:
        data = response.read()
        link = response.headers.get("Link")
    try:
        return json.loads(data), link
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BrokenBody(f"the body is not JSON ({error})") from None


def _records(body: Any, path: str, shown: str) -> list[Any]:
    found = _at(body, path)
    if found is None:
        return []
    if not isinstance(found, list):
        what = type(found).__name__
        raise StepError(f'{shown}: `records = "{path}"` is a {what} there, not a list of rows')
    return found


def _at(body: Any, path: str) -> Any:
    """The value at a dotted path (`meta.next`), or None where the body has none."""
    value = body
    for key in [k for k in path.split(".") if k]:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _flattened(record: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(record, dict):
        return {prefix or "value": record}
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_flattened(value, name))
        else:
            flat[name] = value
    return flat


def _text_batch(flat: list[dict[str, Any]], columns: Sequence[ColumnLike]) -> pa.RecordBatch:
    """The declared columns of `flat` as text, matched case-insensitively (as CSV headers)."""
    folded = [{k.lower(): v for k, v in r.items()} for r in flat]
    arrays = []
    for column in columns:
        wanted = column.name.lower()
        values = [_text(r.get(wanted)) for r in folded]
        arrays.append(pa.array(values, pa.string()))
    return pa.RecordBatch.from_arrays(arrays, names=[c.name for c in columns])


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
