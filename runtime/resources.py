"""Resource failures (a full disk, an engine out of memory) told as what they are: one line
naming the cause and what to change, never an engine's internal wording or a traceback.

A full disk also stops the run history from recording how the run ended; so a run keeps a
small reserve file next to it (`.flowc/space.reserve`, 1 MB), made when a run starts, and
given up a quarter at a time when the history meets a full disk: the space it frees lets the
history record the failed step and the failed run. It is made again by the next run that
finds room.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

RESERVE_NAME = "space.reserve"
RESERVE_BYTES = 1 << 20
# given up a part at a time: an engine closing after the failure (DuckDB writes a checkpoint)
# may take what is freed before the history does
RELEASE_BYTES = 256 * 1024

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
_FULL_TEXTS = re.compile(
    r"no space left on device|database or disk is full|file too large|disk quota exceeded",
    re.IGNORECASE,
)
_OUT_OF_MEMORY = re.compile(r"out of memory|could not allocate|failed to allocate", re.IGNORECASE)
_DUCKDB_FILE = re.compile(r'(?:write|create|open|extend) (?:to )?(?:file |directory )?"([^"]+)"')


def reserve(folder: Path) -> None:
    """Make the reserve in `folder` if it is missing and there is room (quietly, else)."""
    path = folder / RESERVE_NAME
    if path.exists():
        return
    try:
        with path.open("xb") as file:  # written, not sparse: the blocks are really taken
            file.write(bytes(RESERVE_BYTES))
    except FileExistsError:
        return
    except OSError:
        path.unlink(missing_ok=True)


def release(folder: Path) -> bool:
    """Give up a part of the reserve in `folder`; whether there was any left."""
    path = folder / RESERVE_NAME
    try:
        size = path.stat().st_size
        if size > RELEASE_BYTES:
            os.truncate(path, size - RELEASE_BYTES)
        else:
            path.unlink()
    except OSError:
        return False
    return True


def disk_full(error: BaseException | str) -> bool:
    """Whether `error` says a disk (or a file size limit) has no room left."""
    if isinstance(error, OSError) and error.errno in _FULL_ERRNOS:
        return True
    return _FULL_TEXTS.search(str(error)) is not None


def disk_full_text(where: str, error: BaseException | str, remedy: str = "") -> str:
    """One line: which file could not grow, why, and what to do."""
    limit = re.search(r"file too large", str(error), re.IGNORECASE) or (
        isinstance(error, OSError) and error.errno == errno.EFBIG
    )
    if limit:
        return f"cannot write {where}: the file size limit (`ulimit -f`) was reached; raise it"
    return f"cannot write {where}: the disk is full (no space left on device); free space there" + (
        f", {remedy}" if remedy else ""
    )


def duckdb_cause(message: str) -> str | None:
    """DuckDB's error `message` as one line of cause and remedy when it is a resource
    failure, else None."""
    if disk_full(message):
        found = _DUCKDB_FILE.search(message)
        where = found.group(1) if found else "a DuckDB file"
        remedy = "or set the connection's `path` in flow.toml to a larger disk"
        return f"DuckDB: {disk_full_text(where, message, remedy)}"
    if _OUT_OF_MEMORY.search(message):
        return (
            f"DuckDB ran out of memory: {_first_line(message)}\n"
            'raise `memory_limit` of the DuckDB connection in flow.toml (`memory_limit = "8GB"`), '
            "or lower its `threads`, or make the step need less (fewer columns, a join on fewer "
            "rows; docs/engines.md)"
        )
    return None


def _first_line(message: str) -> str:
    """DuckDB's own first line, without its advice to run `SET ...` (not a flowc user's)."""
    line = message.strip().splitlines()[0] if message.strip() else message
    return re.split(r"\s*(?:Hint|HINT)?:?\s*(?:try )?SET ", line, maxsplit=1)[0].rstrip(" .;")
