"""User Python code: loaded from the project, called, and its failures made readable.

A Python source or transform names `"path/to/file.py:function"`, relative to the project
root. The file is loaded under a module name unique to its path, so two `blocks/util.py` of
different projects (or a file named like a library) never collide. A user's exception is
re-raised as a `StepError` whose traceback keeps only the user's frames: flowc's own, the
import machinery's and installed libraries' are dropped, the exception line is kept.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
from flowc.runtime.errors import StepError, transient

T = TypeVar("T")
Guard = Callable[[Iterator[object]], Iterator[object]]
# The runtime's own folder, as imported and as linked (an editable install links it).
_RUNTIME_DIRS = tuple({str(Path(__file__).parent), str(Path(__file__).resolve().parent)})
_LIBRARY_DIRS = ("site-packages", "dist-packages")


def split_entry(entry: str) -> tuple[str, str]:
    """`"blocks/rename.py:to_snake_case"` → (`blocks/rename.py`, `to_snake_case`)."""
    path, _, function = entry.rpartition(":")
    if not path or not function.isidentifier():
        raise StepError(f'`{entry}` is not of the form "path/to/file.py:function"')
    return path, function


def load_function(root: Path, entry: str, *, node: str | None = None) -> Callable[..., Any]:
    """The function an entry point names, its module freshly loaded from the project."""
    path_text, name = split_entry(entry)
    module = load_module(root, root / path_text, node=node)
    function: object = getattr(module, name, None)
    if not callable(function):
        raise StepError(f"`{path_text}` defines no function `{name}`", node=node)
    return function


def load_module(root: Path, path: Path, *, node: str | None = None) -> ModuleType:
    """Execute the file at `path` as a module named after its resolved path."""
    resolved = path.resolve()
    if not resolved.is_file():
        raise StepError(f"no Python file {path} (the project root is {root})", node=node)
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    name = f"_flowc_user_{resolved.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise StepError(f"cannot load {path} as Python", node=node)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up there
    call_user(spec.loader.exec_module, module, root=root, node=node, what=f"loading {path}")
    return module


def call_user(
    function: Callable[..., T], *args: Any, root: Path, node: str | None, what: str, **kwargs: Any
) -> T:
    """Call user code; its exception becomes a `StepError` showing the user's frames."""
    try:
        return function(*args, **kwargs)
    except StepError:
        raise  # flowc's own failure surfacing through user code (a bad input value, say)
    except Exception as error:
        raise user_error(error, root=root, node=node, what=what) from error


def guarded(items: Iterable[T], *, root: Path, node: str | None, what: str) -> Iterator[T]:
    """Iterate a user's iterator (a generator runs its code only when iterated)."""
    iterator = iter(items)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except StepError:
            raise
        except Exception as error:
            raise user_error(error, root=root, node=node, what=what) from error
        yield item


def user_error(error: BaseException, *, root: Path, node: str | None, what: str) -> StepError:
    """The `StepError` for a user's exception, with a traceback of the user's frames."""
    summary = traceback.TracebackException.from_exception(error)
    _trim(summary, str(root.resolve()), set())
    text = "".join(summary.format())
    message = f"{what} raised {type(error).__name__}: {error}"
    return StepError(message, node=node, user_traceback=text, retryable=transient(error))


def _trim(summary: traceback.TracebackException, root: str, seen: set[int]) -> None:
    if id(summary) in seen:
        return
    seen.add(id(summary))
    frames = [f for f in summary.stack if _is_user_frame(f.filename, root)]
    if not frames:
        frames = [f for f in summary.stack if not f.filename.startswith(_RUNTIME_DIRS)]
    summary.stack = traceback.StackSummary.from_list(frames)
    for chained in (summary.__cause__, summary.__context__):
        if chained is not None:
            _trim(chained, root, seen)


def _is_user_frame(filename: str, root: str) -> bool:
    if not filename.startswith(root) or filename.startswith(_RUNTIME_DIRS):
        return False
    return not any(part in filename for part in _LIBRARY_DIRS)


def to_reader(result: object, *, origin: str, guard: Guard | None = None) -> pa.RecordBatchReader:
    """A Python block's result as a batch stream: a pandas DataFrame, an Arrow table or
    batch, a `RecordBatchReader`, or an iterable of record batches (streamed; `guard` wraps
    the iteration, which runs the user's generator code)."""
    if isinstance(result, pa.RecordBatchReader):
        return result
    if isinstance(result, pd.DataFrame):
        result = _from_pandas(result, origin)
    if isinstance(result, pa.RecordBatch):
        result = pa.Table.from_batches([result])
    if isinstance(result, pa.Table):
        return pa.RecordBatchReader.from_batches(result.schema, result.to_batches())
    if isinstance(result, Iterable) and not isinstance(result, (str, bytes)):
        items: Iterator[object] = iter(result)
        return _stream_reader(guard(items) if guard else items, origin)
    kind = type(result).__name__
    raise StepError(
        f"{origin} returned a {kind}; expected a pandas DataFrame, a pyarrow Table "
        "or an iterator of pyarrow RecordBatches"
    )


def _from_pandas(frame: pd.DataFrame, origin: str) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise StepError(f"{origin} returned a DataFrame Arrow cannot hold: {error}") from None


def _stream_reader(batches: Iterator[object], origin: str) -> pa.RecordBatchReader:
    first = next(batches, None)
    if first is None:
        raise StepError(f"{origin} returned an empty iterator: its columns are unknown")
    head = _batch(first, origin)

    def rest() -> Iterator[pa.RecordBatch]:
        yield head
        for item in batches:
            yield _batch(item, origin).cast(head.schema)

    return pa.RecordBatchReader.from_batches(head.schema, rest())


def _batch(item: object, origin: str) -> pa.RecordBatch:
    if isinstance(item, pa.RecordBatch):
        return item
    if isinstance(item, pd.DataFrame):
        return pa.RecordBatch.from_pandas(item, preserve_index=False)
    raise StepError(f"{origin} yielded a {type(item).__name__}; expected pyarrow RecordBatches")
