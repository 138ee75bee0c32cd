"""Python blocks in a worker process: `isolate = true` on a node (or its pipeline).

In flowc's own process a block can end in ways no `try` catches: a segfault in a C
extension, the out-of-memory killer, an `os._exit` from a library's C code, a call that never
returns and cannot be interrupted. An isolated block runs in a child process instead, so each
of those is a failed step of the run that goes on: the child's death is read from its exit
status (`ended its worker process with exit status 3`, `was killed by SIGSEGV`), a timeout
kills the child at the second, and Ctrl-C kills it at once.

Workers come from a fork server started once per flowc process (with pyarrow, pandas and
flowc's runtime already imported), so a step pays a fork, not an interpreter start. The
rows cross as Arrow IPC files in shared memory (`/dev/shm` where there is one, else the
temporary folder): each input is written once and memory-mapped by the worker; the
result comes back the same way, memory-mapped by flowc (no copy). What it costs is
measured by `benchmarks/isolation_bench.py` (benchmarks/README.md).

A block's own failures come back as they would in-process: its exception with the user's
frames (`runtime/usercode/userpy.py`), wrong columns, bad values. The block's module is loaded
in the worker, so module-level state does not carry from one step to the next (it does not in
flowc's process either: each step loads the file afresh).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import os
import shutil
import signal
import sys
import tempfile
import threading
import traceback
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import pyarrow as pa
from flowc.runtime.errors import StepError
from flowc.runtime.io.columns import ColumnLike
from flowc.runtime.usercode import endings

_POLL_S = 0.05  # how often the waiting thread looks up (a timeout or Ctrl-C lands between)
_PRELOAD = ["pyarrow", "pandas", "flowc.runtime.usercode.pyblocks", "flowc.runtime.io.sources"]
_context: ForkServerContext | None = None
_starting = threading.Lock()  # one worker starts at a time (the main module is swapped)


@dataclass(frozen=True)
class _Job:
    """What a worker needs: all of it picklable."""

    root: Path
    entry: str
    kind: str  # "source" or "transform"
    inputs: tuple[tuple[str, str], ...]  # (input name, IPC file)
    columns: tuple[tuple[str, str, bool], ...] | None  # (name, type, not null)
    params: tuple[tuple[str, object], ...]
    node: str | None
    result: str  # the IPC file to write


@dataclass(frozen=True)
class _Column:
    name: str
    type: str
    not_null: bool = False


def run_block(
    root: Path,
    entry: str,
    *,
    kind: str,
    inputs: Mapping[str, pa.RecordBatchReader] | None = None,
    columns: Sequence[ColumnLike] | None = None,
    params: Mapping[str, object] | None = None,
    node: str | None = None,
) -> pa.RecordBatchReader:
    """Run the source or transform `entry` in a worker process: its result, checked against
    `columns` there, memory-mapped here."""
    folder = Path(tempfile.mkdtemp(prefix="flowc-isolated-", dir=_shared_memory()))
    try:
        named = enumerate((inputs or {}).items())
        files = tuple(
            (name, str(_written(data, folder / f"in-{i}.arrow"))) for i, (name, data) in named
        )
        job = _Job(
            root=root,
            entry=entry,
            kind=kind,
            inputs=files,
            columns=_columns(columns),
            params=tuple((params or {}).items()),
            node=node,
            result=str(folder / "result.arrow"),
        )
        _wait_for(job, f"`{entry}`")
        return _mapped(Path(job.result))
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # what is mapped stays readable


def _shared_memory() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _written(reader: pa.RecordBatchReader, path: Path) -> Path:
    try:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, reader.schema) as out:
            for batch in reader:
                out.write_batch(batch)
    except OSError as error:  # not Arrow's reading errors: those are StepErrors already
        raise StepError(f"cannot hand rows over through {path.parent}: {error}") from None
    return path


def _mapped(path: Path) -> pa.RecordBatchReader:
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())


def _columns(columns: Sequence[ColumnLike] | None) -> tuple[tuple[str, str, bool], ...] | None:
    if columns is None:
        return None
    return tuple((c.name, c.type, bool(getattr(c, "not_null", False))) for c in columns)


def _forkserver() -> ForkServerContext:
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        _context = context
    return _context


def warm_up() -> None:
    """Start the fork server now, on a thread of its own (it takes a second or two to import
    what it preloads): a run with isolated steps starts it while its first steps work."""

    def start() -> None:
        with contextlib.suppress(Exception):  # the first isolated step will say what fails
            _forkserver()
            multiprocessing.forkserver.ensure_running()

    threading.Thread(target=start, name="flowc-forkserver", daemon=True).start()


def _wait_for(job: _Job, what: str) -> None:
    """Start the worker and wait for its word; a worker that dies first is a `StepError`
    that says how. Whatever stops this thread (a timeout, Ctrl-C) kills the worker."""
    ours, theirs = _forkserver().Pipe(duplex=False)
    process = _forkserver().Process(target=_work, args=(job, theirs), daemon=True)
    with _starting, _no_main_to_rerun():
        process.start()
    theirs.close()
    try:
        word = _word(ours, process)
    except BaseException:
        _kill(process)
        raise
    finally:
        ours.close()
    if word is None:
        process.join()
        raise StepError(f"{what} {_death(process.exitcode)}", node=job.node)
    # a worker that has spoken is ending by itself (multiprocessing reaps it later)
    if word[0] != "ok":
        _, message, node, user_traceback, retryable = word
        raise StepError(message, node=node, user_traceback=user_traceback, retryable=retryable)


@contextlib.contextmanager
def _no_main_to_rerun() -> Iterator[None]:
    """multiprocessing runs the parent's main script again in a worker (to find what it
    defines): flowc's workers need nothing of it, and a script without an `if __name__ ==
    "__main__"` guard would start over there. So the worker is started with a blank one."""
    saved = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = saved


def _word(ours: multiprocessing.connection.Connection, process: BaseProcess) -> Any:
    """The worker's message, or None when it ended without one. Between looks, a timeout
    or an interruption may land (`RunInterrupted` is raised here on any thread)."""
    while True:
        endings.raise_if_stopped()
        ready = multiprocessing.connection.wait([ours, process.sentinel], timeout=_POLL_S)
        if ours in ready:
            with contextlib.suppress(EOFError):
                return ours.recv()
            return None
        if ready:
            return None  # ended without a word (its pipe may still say something: above)


def _kill(process: BaseProcess) -> None:
    if process.is_alive():
        process.kill()
    process.join(timeout=5)


def _death(status: int | None) -> str:
    """How a worker that sent no result ended, for the user."""
    if status is None or status >= 0:
        return (
            f"ended its worker process with exit status {status} before returning "
            "(os._exit, or a C library that exits)"
        )
    name = signal.Signals(-status).name
    if -status == signal.SIGKILL:
        return f"was killed ({name}): out of memory, or killed from outside"
    if -status in (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT):
        return f"crashed its worker process ({name}): a fault in a C extension"
    return f"ended its worker process by {name}"


# --- in the worker --------------------------------------------------------------------------


def _work(job: _Job, conn: multiprocessing.connection.Connection) -> None:
    """Run the block, write its result, say how it went (an `os._exit` or a crash says it
    by saying nothing)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # flowc's process decides, and kills us
    threading.Thread(target=_die_with_flowc, daemon=True).start()
    try:
        _run(job)
        word: tuple[object, ...] = ("ok",)
    except StepError as error:
        word = ("error", error.message, error.node, error.user_traceback, error.retryable)
    except BaseException as error:  # a bug in flowc's worker: as the executor would say it
        text = "".join(traceback.format_exception(error))
        word = ("error", f"internal error in the worker: {text}", job.node, None, False)
    conn.send(word)
    conn.close()
    os._exit(0)  # at once: a worker has nothing to tear down (the exit guard is off here)


def _die_with_flowc() -> None:
    """A worker whose flowc process is gone (killed) ends too, at once."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGKILL)


def _run(job: _Job) -> None:
    """The block's result, streamed into the result file as it is made (a generator's code
    runs as it is read, inside the same guards)."""
    columns = [_Column(*c) for c in job.columns] if job.columns is not None else None
    with endings.exit_guard():  # os._exit in the block: a step failure, said as such
        if job.kind == "source":
            from flowc.runtime.io.sources import read_python

            params = dict(job.params)
            reader = read_python(job.root, job.entry, columns=columns, params=params, node=job.node)
        else:
            from flowc.runtime.usercode.pyblocks import run_transform

            inputs = {name: _mapped(Path(path)) for name, path in job.inputs}
            reader = run_transform(job.root, job.entry, inputs, columns=columns, node=job.node)
        _written(reader, Path(job.result))
