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
`DEFAULT_FIRST_WAIT_S`), doubling. Other HTTP errors (404, 403, ...) fail at once.
"""

from __future__ import annotations

import http.client
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from flowc.runtime.columns import ColumnLike
from flowc.runtime.errors import StepError
from flowc.runtime.sources import read_file
from isal import igzip
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
DEFAULT_ATTEMPTS = 4
DEFAULT_FIRST_WAIT_S = 0.5
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_COPY_BYTES = 1 << 20


class BrokenBody(Exception):
    """A body that did not arrive whole: shorter than its `Content-Length`, or compressed
    data that does not decompress to its end. Transient: the next attempt may get it all."""


def read_http(
    url: str,
    file_format: str,
    *,
    columns: Sequence[ColumnLike] | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    first_wait_s: float = DEFAULT_FIRST_WAIT_S,
    timeout_s: float = 60.0,
    **options: Any,
) -> pa.RecordBatchReader:
    """Download `url` (retrying transient failures) and stream it as `file_format`.

    >>> read_http("http://127.0.0.1:1/x.csv", "csv", attempts=1)  # doctest: +SKIP
    """
    folder = Path(tempfile.mkdtemp(prefix="flowc-http-"))
    try:
        path = download(
            url, folder, attempts=attempts, first_wait_s=first_wait_s, timeout_s=timeout_s
        )
        reader = read_file(folder, path.name, file_format, columns=columns, origin=url, **options)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return pa.RecordBatchReader.from_batches(reader.schema, _then_delete(reader, folder))


def download(
    url: str,
    folder: Path,
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    first_wait_s: float = DEFAULT_FIRST_WAIT_S,
    timeout_s: float = 60.0,
) -> Path:
    """Save the whole body of `url` in `folder` as `body`, decompressed (gzip, zstd)."""
    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=first_wait_s, max=30),
        retry=retry_if_exception(is_transient),
        reraise=True,
    )
    try:
        return retrying(_fetch, url, folder, timeout_s)
    except urllib.error.HTTPError as error:
        raise StepError(f"GET {url} failed: HTTP {error.code} {error.reason}") from None
    except _FAILURES as error:
        raise StepError(f"GET {url} failed after {attempts} attempt(s): {_said(error)}") from None


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


def _fetch(url: str, folder: Path, timeout_s: float) -> Path:
    """One attempt: the body saved whole (or `BrokenBody`), then decompressed."""
    headers = {"User-Agent": "flowc", "Accept-Encoding": "identity"}
    request = urllib.request.Request(url, headers=headers)
    raw = folder / "download"
    with urllib.request.urlopen(request, timeout=timeout_s) as response, raw.open("wb") as out:
        shutil.copyfileobj(response, out, _COPY_BYTES)
        expected = None if response.chunked else _length(response.headers.get("Content-Length"))
        got = out.tell()
    if expected is not None and got != expected:
        raise BrokenBody(f"the body ended after {got} of its {expected} bytes (Content-Length)")
    return _decompressed(raw, folder / "body")


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
