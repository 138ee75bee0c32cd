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
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, TypeGuard, TypeVar

import pandas as pd
import pyarrow as pa
from flowc.runtime.errors import StepError, transient
from flowc.runtime.usercode import endings

T = TypeVar("T")
Guard = Callable[[Iterable[object]], Iterator[object]]


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
    """Call user code; however it ends other than by returning (an exception, `sys.exit`, a
    `KeyboardInterrupt` of its own, `os._exit`: runtime/usercode/endings.py), a `StepError` showing
    the user's frames. flowc's own stops (a timeout, Ctrl-C) pass through."""
    try:
        with endings.user_code():
            return function(*args, **kwargs)
    except (StepError, endings.Stopped):
        raise  # flowc's own failure surfacing through user code (a bad input value, say)
    except BaseException as error:
        raise user_error(error, root=root, node=node, what=what) from error


def guarded(items: Iterable[T], *, root: Path, node: str | None, what: str) -> Iterator[T]:
    """Iterate a user's iterable (a generator runs its code only when iterated), each step
    guarded as `call_user` guards a call. When the iteration stops early (its reader is
    closed, or fails) the user's generator is closed here, its clean-up guarded too."""
    iterator = call_user(iter, items, root=root, node=node, what=what)
    finished = False
    try:
        while True:
            try:
                with endings.user_code():
                    item = next(iterator)
            except StopIteration:
                finished = True
                return
            except (StepError, endings.Stopped):
                raise
            except BaseException as error:
                raise user_error(error, root=root, node=node, what=what) from error
            yield item
    finally:
        if not finished:
            _close(iterator)


def _close(iterator: Iterator[object]) -> None:
    """Close a user's generator that will not be read to its end; what its clean-up raises
    is dropped (the step already ends another way), flowc's own stops excepted."""
    close = getattr(iterator, "close", None)
    if close is None:
        return
    try:
        with endings.user_code():
            close()
    except endings.Stopped:
        raise
    except BaseException:  # the first ending is the one reported
        return


def user_error(error: BaseException, *, root: Path, node: str | None, what: str) -> StepError:
    """The `StepError` for a way out of user code, with a traceback of the user's frames; a
    `KeyboardInterrupt` while a signal asked the run to stop is that stop (the code caught the
    `RunInterrupted` and raised its own)."""
    signum = endings.stop_requested()
    if isinstance(error, KeyboardInterrupt) and signum is not None:
        raise endings.RunInterrupted(signum) from error
    text = endings.user_frames(error, root)
    message = f"{what} {endings.ending_text(error)}"
    return StepError(message, node=node, user_traceback=text, retryable=transient(error))


def to_reader(
    result: object,
    *,
    origin: str,
    guard: Guard | None = None,
    empty: pa.Schema | None = None,
) -> pa.RecordBatchReader:
    """A Python block's result as a batch stream: a pandas DataFrame, an Arrow table or
    batch, a `RecordBatchReader`, or an iterable of record batches, tables or DataFrames
    (streamed; `guard` wraps the iteration, which runs the user's generator code; an empty
    one has the schema `empty`, the declared columns', if known). Anything else (a dict of
    columns, None, a Series, ...) is a `StepError` saying what it is."""
    if isinstance(result, pa.RecordBatchReader):
        return result
    if _is_records(result):
        result = _from_records(result, origin)
    if isinstance(result, pd.DataFrame):
        result = _from_pandas(result, origin)
    if isinstance(result, pa.RecordBatch):
        result = pa.Table.from_batches([result])
    if isinstance(result, pa.Table):
        return pa.RecordBatchReader.from_batches(result.schema, result.to_batches())
    if isinstance(result, Iterable) and not _not_batches(result):
        items: Iterator[object] = guard(result) if guard else iter(result)
        return _stream_reader(items, origin, empty)
    raise StepError(f"{origin} returned {_described(result)}; {_ACCEPTED}{_advice(result)}")


_ACCEPTED = (
    "a Python block returns a pandas DataFrame, a pyarrow Table, RecordBatch or "
    "RecordBatchReader, a list of dicts (one per row), or an iterator (a generator) of "
    "RecordBatches, Tables or DataFrames"
)


def _is_records(result: object) -> TypeGuard[list[Mapping[str, object]]]:
    """A list of dicts with some key: rows as an API's JSON gives them."""
    return (
        isinstance(result, list) and all(isinstance(row, Mapping) for row in result) and any(result)
    )


def _from_records(rows: list[Mapping[str, object]], origin: str) -> pa.Table:
    """The rows as a table: the columns are the keys, in the order they first appear."""
    names = dict.fromkeys(name for row in rows for name in row)
    try:
        return pa.table({name: [row.get(name) for row in rows] for name in names})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise StepError(f"{origin} returned rows Arrow cannot hold: {error}") from None


def _not_batches(result: object) -> bool:
    """Iterables that are never a stream of batches: iterating them would read their keys,
    characters or values."""
    if isinstance(result, Mapping | str | bytes | bytearray | memoryview | pd.Series | pd.Index):
        return True
    return type(result).__module__.split(".")[0] == "numpy"


def _described(value: object) -> str:
    """`a dict`, `None`, `a pandas.Series`: what a value is, for a person."""
    if value is None:
        return "None"
    kind = type(value)
    module = kind.__module__.split(".")[0]
    name = kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__name__}"
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name}"


def _advice(result: object) -> str:
    if result is None:
        return " (does the function end without `return`?)"
    if isinstance(result, Mapping):
        return " (a dict of columns: return `pandas.DataFrame(d)` or `pyarrow.table(d)`)"
    if isinstance(result, pd.Series):
        return " (a Series: return `series.to_frame()`)"
    return ""


def _from_pandas(frame: pd.DataFrame, origin: str) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise StepError(f"{origin} returned a DataFrame Arrow cannot hold: {error}") from None


def _stream_reader(
    items: Iterator[object], origin: str, empty: pa.Schema | None
) -> pa.RecordBatchReader:
    batches = _batches(items, origin)
    first = next(batches, None)
    if first is None and empty is not None:
        return pa.RecordBatchReader.from_batches(empty, [])
    if first is None:
        raise StepError(
            f"{origin} returned an empty iterator: its columns are unknown "
            "(declare `columns { ... }` on the node, or yield an empty batch)"
        )

    def rest() -> Iterator[pa.RecordBatch]:
        yield first
        for number, batch in enumerate(batches, 2):
            yield _like(batch, first.schema, f"{origin} yielded a batch (item {number})")

    return pa.RecordBatchReader.from_batches(first.schema, rest())


def _like(batch: pa.RecordBatch, schema: pa.Schema, what: str) -> pa.RecordBatch:
    """`batch` in the columns and types of the stream's first batch."""
    if batch.schema.names != schema.names:
        raise StepError(
            f"{what} with columns {batch.schema.names}, not those of the first: {schema.names}"
        )
    try:
        return batch.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
        raise StepError(
            f"{what} whose values do not fit the first batch's types: {error}"
        ) from None


def _batches(items: Iterator[object], origin: str) -> Iterator[pa.RecordBatch]:
    for number, item in enumerate(items, 1):
        if isinstance(item, pa.RecordBatch):
            yield item
        elif isinstance(item, pd.DataFrame):
            yield from _from_pandas(item, origin).to_batches()
        elif isinstance(item, pa.Table):
            yield from item.to_batches()
        else:
            raise StepError(
                f"{origin} yielded {_described(item)} (item {number}); an iterator a Python "
                "block returns yields pyarrow RecordBatches, Tables or pandas DataFrames"
            )
