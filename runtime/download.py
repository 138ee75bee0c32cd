"""`http(url, format)` sources: the body downloaded to a temporary file, with retries.

The body is streamed to disk (never held in memory), then read by the file readers like a
local file, and the file is deleted once its batches have been read. Downloading first
means a retry starts over cleanly: a connection dropped halfway through a body is retried
like a refused connection. Transient failures (connection errors, timeouts, HTTP 408, 425,
429 and 5xx) are retried with exponential back-off by tenacity; other HTTP errors (404,
403, ...) fail at once. A gzip body is recognised by its first bytes, whatever the URL.
"""

from __future__ import annotations

import http.client
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from flowc.runtime.columns import ColumnLike
from flowc.runtime.errors import StepError
from flowc.runtime.sources import read_file
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_GZIP_MAGIC = b"\x1f\x8b"
_COPY_BYTES = 1 << 20


def read_http(
    url: str,
    file_format: str,
    *,
    columns: Sequence[ColumnLike] | None = None,
    attempts: int = 4,
    first_wait_s: float = 0.5,
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
    url: str, folder: Path, *, attempts: int = 4, first_wait_s: float = 0.5, timeout_s: float = 60.0
) -> Path:
    """Save the body of `url` in `folder`; `body` or `body.gz` (by its first bytes)."""
    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=first_wait_s, max=30),
        retry=retry_if_exception(is_transient),
        reraise=True,
    )
    try:
        path = retrying(_fetch, url, folder / "body", timeout_s)
    except urllib.error.HTTPError as error:
        raise StepError(f"GET {url} failed: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise StepError(f"GET {url} failed after {attempts} attempt(s): {error}") from None
    return _named_by_content(path)


def is_transient(error: BaseException) -> bool:
    """Worth another try: the server or the network may do better in a moment."""
    if isinstance(error, urllib.error.HTTPError):
        return error.code in TRANSIENT_STATUS
    return isinstance(error, (urllib.error.URLError, OSError, http.client.HTTPException))


def _fetch(url: str, path: Path, timeout_s: float) -> Path:
    request = urllib.request.Request(url, headers={"User-Agent": "flowc"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response, path.open("wb") as out:
        shutil.copyfileobj(response, out, _COPY_BYTES)
    return path


def _named_by_content(path: Path) -> Path:
    with path.open("rb") as body:
        gzipped = body.read(2) == _GZIP_MAGIC
    return path.rename(path.with_name("body.gz")) if gzipped else path


def _then_delete(reader: pa.RecordBatchReader, folder: Path) -> Iterator[pa.RecordBatch]:
    try:
        yield from reader
    finally:
        shutil.rmtree(folder, ignore_errors=True)
