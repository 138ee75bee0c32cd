"""Every project file a check looks at is read through here, so that it can be recorded.

The check cache keys a spec's result on the content of every file the analysis read (or
found missing): change a `sql/` file or a Python block, and the spec is checked again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

MISSING = "missing"
_recorded: ContextVar[dict[str, str] | None] = ContextVar("recorded", default=None)


@contextmanager
def recording() -> Iterator[dict[str, str]]:
    """Collect `{path: digest}` of every file read inside the block."""
    reads: dict[str, str] = {}
    token = _recorded.set(reads)
    try:
        yield reads
    finally:
        _recorded.reset(token)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record(key: str, value: str) -> None:
    reads = _recorded.get()
    if reads is not None:
        reads[key] = value


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes, or None when it is not a readable file."""
    try:
        data = path.read_bytes() if path.is_file() else None
    except OSError:
        data = None
    _record(str(path), MISSING if data is None else digest(data))
    return data


def is_file(path: Path) -> bool:
    return read_bytes(path) is not None


def glob(root: Path, pattern: str) -> list[Path]:
    """Files matching `pattern` under `root`; the match list itself is recorded."""
    matches = _matches(root, pattern)
    _record(f"glob:{root}\n{pattern}", _digest_paths(matches))
    return matches


def _matches(root: Path, pattern: str) -> list[Path]:
    if Path(pattern).is_absolute():
        return sorted(Path(pattern).parent.glob(Path(pattern).name))
    return sorted(root.glob(pattern))


def _digest_paths(paths: list[Path]) -> str:
    return digest("\n".join(str(p) for p in paths).encode())


def stat(path: Path) -> None:
    """Record a data file by size and modification time: hashing gigabytes is not a check."""
    _record(f"stat:{path}", _signature(path))


def _signature(path: Path) -> str:
    try:
        info = path.stat()
    except OSError:
        return MISSING
    return f"{info.st_size}:{info.st_mtime_ns}"


def current(key: str) -> str:
    """What `key` (a path, a data file or a glob) digests to now, to compare with a recording."""
    if key.startswith("stat:"):
        return _signature(Path(key[len("stat:") :]))
    if key.startswith("glob:"):
        root, pattern = key[len("glob:") :].split("\n", 1)
        return _digest_paths(_matches(Path(root), pattern))
    path = Path(key)
    try:
        return digest(path.read_bytes()) if path.is_file() else MISSING
    except OSError:
        return MISSING
