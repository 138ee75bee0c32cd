"""`http(url, format)` sources: the body downloaded to a temporary file, with retries.

The body is streamed to disk (never held in memory), then read by the file readers like a
local file, and the file is deleted once its batches have been read. Downloading first
means a retry starts over cleanly, and that only a whole body is ever read: a body is
complete or the download fails. Incomplete are a body shorter than its `Content-Length`, a
broken chunked encoding, a connection dropped or reset halfway, and a compressed body that
does not decompress to its end: gzip (whose length and CRC are checked) or zstd, recognised
by their first bytes whatever the URL, and decompressed here. (A body that has neither a
`Content-Length` nor chunks ends where the server closes: its truncation cannot be seen,
unless it is compressed.)

Transient failures (those, connection errors, timeouts, HTTP 408, 425, 429 and 5xx) are
retried with exponential back-off by tenacity: at least `DEFAULT_ATTEMPTS` attempts, or the
node's `retries` plus one when that is more, waiting its `retry_delay` first (else
`DEFAULT_FIRST_WAIT_S`), doubling; a 429 or 503 with `Retry-After` waits as long as it says
(at most `MAX_RETRY_AFTER_S`). Other HTTP errors (404, 403, ...) fail at once.

Several URLs are read one after another as one stream (all-or-nothing: the load fails with
any of them). Messages name a URL as written (`Url.shown`): its `${VAR}`s, secrets, unexpanded.
"""

from __future__ import annotations

import email.utils
import http.client
import itertools
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
from flowc.compiler import plan
from flowc.runtime.errors import StepError
from flowc.runtime.io.columns import ColumnLike
from flowc.runtime.io.sources import read_file
from isal import igzip
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
DEFAULT_ATTEMPTS = 4
DEFAULT_FIRST_WAIT_S = 0.5
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_COPY_BYTES = 1 << 20
MAX_RETRY_AFTER_S = 300.0
T = TypeVar("T")


class BrokenBody(Exception):
    """A body that did not arrive whole: shorter than its `Content-Length`, or compressed
    data that does not decompress to its end. Transient: the next attempt may get it all."""


@dataclass(frozen=True)
class Url:
    """A URL to fetch, and how messages show it: as written, its `${VAR}`s (secrets)
    unexpanded."""

    actual: str
    shown: str
    # (value, as written) of each `${VAR}` it was expanded with: a URL the server hands back
    # (a next page) may echo a token, and is shown with it masked
    masks: tuple[tuple[str, str], ...] = ()

    def masked(self, text: str) -> str:
        """`text` with the secret values of this URL written as `${VAR}` again."""
        for value, written in sorted(self.masks, key=lambda m: -len(m[0])):
            text = text.replace(value, written)
        return text


@dataclass(frozen=True)
class Policy:
    """How hard to try: `attempts` in all, waiting `first_wait_s` first, doubling, or as long
    as a 429 or 503 says in `Retry-After` (at most `MAX_RETRY_AFTER_S`)."""

    attempts: int = DEFAULT_ATTEMPTS
    first_wait_s: float = DEFAULT_FIRST_WAIT_S
    timeout_s: float = 60.0
    headers: tuple[tuple[str, str], ...] = ()


_PLACEHOLDER = re.compile(r"(?<!\$)\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}")
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def expand(template: str, params: Mapping[str, object], env: Mapping[str, str]) -> Url:
    """`template` with `{name}` filled from `params` and `${VAR}` (or `${VAR:-default}`) from
    `env`; shown with the parameters filled and the variables as written.

    >>> url = expand("https://x/{m}?key=${KEY}", {"m": "10"}, {"KEY": "s3cret"})
    >>> url.actual, url.shown
    ('https://x/10?key=s3cret', 'https://x/10?key=${KEY}')
    """

    def parameter(found: re.Match[str]) -> str:
        name = found["name"]
        if name not in params:
            raise StepError(f"`{{{name}}}` in `{template}` is not a parameter of this run")
        return str(params[name])

    shown = _PLACEHOLDER.sub(parameter, template)

    masks: list[tuple[str, str]] = []

    def variable(found: re.Match[str]) -> str:
        value = env.get(found["name"])
        if found["default"] is not None and not value:
            return found["default"]
        if value is None:
            raise StepError(f"environment variable `{found['name']}` is not set (used by {shown})")
        if value:
            masks.append((value, found[0]))
        return value

    return Url(_VARIABLE.sub(variable, shown), shown, tuple(masks))


def read_source(
    source: plan.Source,
    step: plan.LoadStep,
    params: Mapping[str, object],
    root: Path,
    options: Mapping[str, Any],
) -> pa.RecordBatchReader:
    """A load step's `http` source: its URLs and headers expanded, under the node's retry
    policy if that allows more attempts than the default."""
    env = environment(root)
    expanded = {k: expand(v, {}, env) for k, v in source.headers.items()}
    headers = {k: v.actual for k, v in expanded.items()}
    secret = tuple(m for v in expanded.values() for m in v.masks)
    urls = [expand(u, params, env) for u in source.urls or [source.path or ""]]
    urls = [Url(u.actual, u.shown, u.masks + secret) for u in urls]
    policy = Policy(
        attempts=max(DEFAULT_ATTEMPTS, step.retries + 1),
        first_wait_s=step.retry_delay_s or DEFAULT_FIRST_WAIT_S,
        headers=tuple(sorted(headers.items())),
    )
    if source.api is not None:
        from flowc.runtime.io.api import read_api

        return read_api(urls, source.api, columns=source.columns, policy=policy)
    file_format = source.format or "csv"
    return read_http(
        urls,
        file_format,
        columns=source.columns,
        attempts=policy.attempts,
        first_wait_s=policy.first_wait_s,
        headers=headers,
        **options,
    )


def environment(root: Path) -> dict[str, str]:
    """The variables `${VAR}` may name: `.env` in the project root, then the environment
    (which wins), as for flow.toml."""
    dotenv = root / ".env"
    values: dict[str, str] = {}
    if dotenv.is_file():
        from dotenv import dotenv_values

        found = dotenv_values(dotenv, interpolate=False, encoding="utf-8")
        values = {k: v for k, v in found.items() if v is not None}
    return {**values, **os.environ}


def read_http(
    url: str | Sequence[Url],
    file_format: str,
    *,
    columns: Sequence[ColumnLike] | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    first_wait_s: float = DEFAULT_FIRST_WAIT_S,
    timeout_s: float = 60.0,
    headers: Mapping[str, str] | None = None,
    **options: Any,
) -> pa.RecordBatchReader:
    """Download each URL (retrying transient failures) and stream them as `file_format`, one
    after another: one stream, the first URL's columns. A URL that fails fails the stream, so
    a load of several is all-or-nothing. Each is downloaded when the one before is read.

    >>> read_http("http://127.0.0.1:1/x.csv", "csv", attempts=1)  # doctest: +SKIP
    """
    every = [Url(url, url)] if isinstance(url, str) else list(url)
    policy = Policy(attempts, first_wait_s, timeout_s, tuple(sorted((headers or {}).items())))
    first = _read_one(every[0], file_format, columns, policy, options)
    rest = (_read_one(u, file_format, columns, policy, options) for u in every[1:])
    batches = itertools.chain(first, itertools.chain.from_iterable(rest))
    return pa.RecordBatchReader.from_batches(first.schema, _aligned(batches, first.schema))


def _read_one(
    url: Url,
    file_format: str,
    columns: Sequence[ColumnLike] | None,
    policy: Policy,
    options: Mapping[str, Any],
) -> pa.RecordBatchReader:
    folder = Path(tempfile.mkdtemp(prefix="flowc-http-"))
    try:
        path = download(url, folder, policy)
        origin = url.shown
        reader = read_file(
            folder, path.name, file_format, columns=columns, origin=origin, **options
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return pa.RecordBatchReader.from_batches(reader.schema, _then_delete(reader, folder))


def _aligned(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if batch.schema.equals(schema):
            yield batch
            continue
        try:
            yield batch.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError) as error:
            raise StepError(
                f"a later URL's columns do not match the first's ({error}); declare `columns`"
            ) from None


def download(
    url: str | Url,
    folder: Path,
    policy: Policy | None = None,
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    first_wait_s: float = DEFAULT_FIRST_WAIT_S,
    timeout_s: float = 60.0,
) -> Path:
    """Save the whole body of `url` in `folder` as `body`, decompressed (gzip, zstd)."""
    url = Url(url, url) if isinstance(url, str) else url
    policy = policy or Policy(attempts, first_wait_s, timeout_s)
    return retried(lambda: _fetch(url.actual, folder, policy), url.shown, policy)


def retried(attempt: Callable[[], T], shown: str, policy: Policy) -> T:
    """`attempt()` until it succeeds, it fails for good, or `policy` gives up; a failure is a
    `StepError` naming `shown` (never the URL with its secrets)."""
    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=_Wait(policy.first_wait_s),
        retry=retry_if_exception(is_transient),
        reraise=True,
    )
    attempts = policy.attempts
    try:
        return retrying(attempt)
    except urllib.error.HTTPError as error:
        raise StepError(f"GET {shown} failed: HTTP {error.code} {error.reason}") from None
    except _FAILURES as error:
        said = _said(error)
        raise StepError(f"GET {shown} failed after {attempts} attempt(s): {said}") from None


class _Wait:
    """Exponential back-off, unless the server said how long in `Retry-After` (seconds or an
    HTTP date) on a 429 or 503: then that long, however short."""

    def __init__(self, first_wait_s: float) -> None:
        self.exponential = wait_exponential(multiplier=first_wait_s, max=30)

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, urllib.error.HTTPError) and error.code in (429, 503):
            after = retry_after_s(error.headers.get("Retry-After"))
            if after is not None:
                return after
        return float(self.exponential(state))


def retry_after_s(header: str | None, now: datetime | None = None) -> float | None:
    """The seconds a `Retry-After` header asks for, at most `MAX_RETRY_AFTER_S`.

    >>> retry_after_s("2"), retry_after_s("soon")
    (2.0, None)
    """
    if header is None:
        return None
    text = header.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    wait = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(wait, 0.0), MAX_RETRY_AFTER_S)


_FAILURES = (urllib.error.URLError, OSError, http.client.HTTPException, BrokenBody)


def is_transient(error: BaseException) -> bool:
    """Worth another try: the server or the network may do better in a moment."""
    if isinstance(error, urllib.error.HTTPError):
        return error.code in TRANSIENT_STATUS
    return isinstance(error, _FAILURES)


def _said(error: BaseException) -> str:
    if isinstance(error, http.client.IncompleteRead):
        got = len(error.partial)
        return f"the body broke off after {got} bytes (a broken chunked encoding)"
    if isinstance(error, ConnectionResetError):
        return f"the connection was reset halfway ({error})"
    return str(error) or type(error).__name__


def _fetch(url: str, folder: Path, policy: Policy) -> Path:
    """One attempt: the body saved whole (or `BrokenBody`), then decompressed."""
    raw = folder / "download"
    with open_url(url, policy) as response, raw.open("wb") as out:
        shutil.copyfileobj(response, out, _COPY_BYTES)
        expected = None if response.chunked else _length(response.headers.get("Content-Length"))
        got = out.tell()
    if expected is not None and got != expected:
        raise BrokenBody(f"the body ended after {got} of its {expected} bytes (Content-Length)")
    return _decompressed(raw, folder / "body")


def open_url(url: str, policy: Policy) -> http.client.HTTPResponse:
    """The response to a GET of `url` with the policy's headers (an error status raises)."""
    headers = {"User-Agent": "flowc", "Accept-Encoding": "identity", **dict(policy.headers)}
    request = urllib.request.Request(url, headers=headers)
    response: http.client.HTTPResponse = urllib.request.urlopen(request, timeout=policy.timeout_s)
    return response


def _length(header: str | None) -> int | None:
    return int(header) if header is not None and header.strip().isdigit() else None


def _decompressed(raw: Path, path: Path) -> Path:
    """`raw` as `path`, decompressed when its first bytes say gzip or zstd; a truncated or
    corrupt stream is `BrokenBody`."""
    with raw.open("rb") as body:
        magic = body.read(4)
    if magic.startswith(_GZIP_MAGIC):
        _unpack(lambda: igzip.open(raw, "rb"), path, "gzip")  # type: ignore[no-untyped-call]
    elif magic == _ZSTD_MAGIC:
        _unpack(lambda: pa.CompressedInputStream(str(raw), "zstd"), path, "zstd")
    else:
        return raw.rename(path)
    raw.unlink()
    return path


def _unpack(opened: Callable[[], Any], path: Path, codec: str) -> None:
    """Decompress to `path`; an error reading the stream (not writing the file: a full disk
    is no corrupt body) is `BrokenBody`."""
    with opened() as source, path.open("wb") as out:
        while True:
            try:
                chunk = source.read(_COPY_BYTES)
            except Exception as error:  # EOFError, BadGzipFile, isal's and Arrow's errors
                said = str(error) or type(error).__name__
                raise BrokenBody(f"the {codec} body is truncated or corrupt ({said})") from None
            if not chunk:
                return
            out.write(chunk)


def _then_delete(reader: pa.RecordBatchReader, folder: Path) -> Iterator[pa.RecordBatch]:
    try:
        yield from reader
    finally:
        shutil.rmtree(folder, ignore_errors=True)
