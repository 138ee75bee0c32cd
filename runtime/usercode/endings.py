"""How user code may end, and what flowc makes of each ending.

A Python block ends its step by returning its rows or by raising an exception. Every other
way out of it is a failed step too, so that `flowc run` always finishes its story (the
summary, the last `run` event, an exit status that is never 0 when a step failed):

- `SystemExit` (`sys.exit(0)` included), a `KeyboardInterrupt` the block raises itself,
  `GeneratorExit` and every other `BaseException`: `userpy` turns them into `StepError`s, as
  it does any exception;
- `os._exit(n)` called in flowc's process while a run goes (`exit_guard`): it raises `HardExit`
  instead of ending the process without a word (in a process the block forked, it exits as
  asked);
- the run's own stops pass through user code as `Stopped` exceptions: a step's time running
  out (`TimedOut`), a real Ctrl-C or SIGTERM (`RunInterrupted`, raised by the handler
  `interrupts()` installs for the run). A block that swallows one does not keep the run going:
  the executor asks `raise_if_stopped()` between steps, and a step whose deadline passed fails
  whatever it returned.

What stays out of reach in one process: a crash of the interpreter itself (a segfault in a C
extension, the kernel's out-of-memory killer). The process ends at once with status 128 plus
the signal; `faulthandler` (enabled by `flowc run`) prints the Python frames where it
happened; the run shows as `interrupted` in `flowc runs` (its process is gone) and resumes
with `--resume`. A node with `isolate = true` runs its block in a worker process
(runtime/usercode/isolated.py), where those are step failures as well.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

# The runtime's own folder, as imported and as linked (an editable install links it).
_RUNTIME_DIRS = tuple({str(Path(__file__).parents[1]), str(Path(__file__).resolve().parents[1])})
_LIBRARY_DIRS = ("site-packages", "dist-packages")
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """flowc stopping the code of a step (not an `Exception`, so that a user's `except
    Exception` does not swallow it). User code lets it through unchanged."""


class TimedOut(Stopped):
    """A step's `timeout` has passed (raised in the step's thread)."""


class RunInterrupted(Stopped, KeyboardInterrupt):
    """The run was asked to stop: Ctrl-C (SIGINT) or SIGTERM. A `KeyboardInterrupt`, so that
    code which knows nothing of flowc treats it as Ctrl-C."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(f"interrupted by {signal_text(signum)}")
        self.signum = signum


class HardExit(BaseException):
    """`os._exit(code)` called by user code inside a run: the step fails instead."""

    def __init__(self, code: object) -> None:
        super().__init__(code)
        self.code = code


def signal_text(signum: int) -> str:
    """`SIGINT (Ctrl-C)`, `SIGTERM`."""
    name = signal.Signals(signum).name
    return f"{name} (Ctrl-C)" if signum == signal.SIGINT else name


class _State:
    """What one flowc process knows about the user code it runs (one run at a time)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.user_threads: dict[int, int] = {}  # thread id -> depth of user code calls
        self.stop: int | None = None  # the signal that asked the run to stop
        self.quiet = 0  # > 0: the run is committing or cleaning up; a signal only records
        self.armed = 0  # > 0: a run goes; os._exit raises HardExit
        self.owner = os.getpid()
        self.exits: dict[int, object] = {}  # thread id -> code of an os._exit it survived
        self.shields: dict[str, object] = {}  # the run's standard streams, as blocks see them
        self.real_exit: Any = None


_state = _State()


# --- signals --------------------------------------------------------------------------------


@contextlib.contextmanager
def interrupts(on_stop: Callable[[], None] = lambda: None) -> Iterator[None]:
    """For the length of a run: SIGINT and SIGTERM raise `RunInterrupted` in the main thread
    (while the run commits or cleans up they are only recorded), and `on_stop` runs at once
    on a thread of its own, to cancel the statements running in engines (the main thread
    may be inside one, where Python's handler waits until it returns); `os._exit` is
    guarded. In another thread than the main one, signals keep their handlers."""
    _state.stop = None
    with _state.lock:
        _state.user_threads.clear()  # one run at a time: none is left from a run before
    previous: dict[signal.Signals, Any] = {}
    watcher = None
    if threading.current_thread() is threading.main_thread():
        watcher = _Watcher(on_stop)
        for signum in _STOP_SIGNALS:
            previous[signum] = signal.signal(signum, _on_signal)
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Shielded(sys.stdout), _Shielded(sys.stderr)
    _state.shields = {"stdout": sys.stdout, "stderr": sys.stderr}
    try:
        with exit_guard():
            yield
    finally:
        sys.stdout, sys.stderr = streams
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if watcher is not None:
            watcher.close()
        _state.stop = None  # the run has said how it ended; what follows is not stopped


class _Shielded:
    """A standard stream as user code sees it during a run: it writes through, but closing
    it only flushes, so that a block closing `sys.stdout` does not silence flowc's report
    (and `user_code` puts it back when a block replaces it)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.flush()

    @property
    def closed(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def exit_guard() -> Iterator[None]:
    """While it lasts, `os._exit` called in this process raises `HardExit` (see
    `_guarded_exit`)."""
    _arm_exit_guard()
    try:
        yield
    finally:
        _state.armed -= 1


class _Watcher:
    """Learns of a signal as it arrives, through `signal.set_wakeup_fd` (written by the C
    handler, even while the main thread waits in C), and calls `on_stop` then."""

    def __init__(self, on_stop: Callable[[], None]) -> None:
        self._on_stop = on_stop
        self._read, self._write = socket.socketpair()
        self._write.setblocking(False)
        self._previous = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name="flowc-signals", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while True:
            try:
                data = self._read.recv(64)
            except OSError:
                return
            if not data:
                return
            stops = [signum for signum in data if signum in _STOP_SIGNALS]
            if stops:
                _state.stop = _state.stop or stops[0]
                if _state.quiet:  # committing: a statement cancelled now would break it
                    continue
                with contextlib.suppress(Exception):  # cancelling is a favour, not a duty
                    self._on_stop()

    def close(self) -> None:
        signal.set_wakeup_fd(self._previous)
        self._write.close()  # the watcher reads the end of the stream and stops
        self._thread.join(timeout=1)
        self._read.close()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _state.stop = _state.stop or signum
    if not _state.quiet:
        raise RunInterrupted(signum)


def as_interruption(error: BaseException) -> RunInterrupted | None:
    """What `error` is, when a signal asked the run to stop: the interruption (an engine's
    "query cancelled", a block's own `KeyboardInterrupt` are its consequences)."""
    if isinstance(error, RunInterrupted):
        return error
    if _state.stop is not None:
        return RunInterrupted(_state.stop)
    return None


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """A stretch a signal must not cut short (a commit, the clean-up after a failure): a
    signal arriving meanwhile is recorded, for `stop_requested`."""
    _state.quiet += 1
    try:
        yield
    finally:
        _state.quiet -= 1


def stop_requested() -> int | None:
    """The signal that asked this run to stop, if one did."""
    return _state.stop


def raise_if_stopped() -> None:
    """Raise `RunInterrupted` if a signal asked the run to stop (user code may have swallowed
    the one raised when it came)."""
    if _state.stop is not None:
        raise RunInterrupted(_state.stop)


def interrupt_user_threads() -> None:
    """Raise `RunInterrupted` in the other threads running user code (`--jobs`): it arrives
    between Python instructions (a thread inside a long C call sees it when the call returns).
    Only threads inside user code: flowc's own code is never cut at a random instruction."""
    signum = _state.stop or signal.SIGINT
    me = threading.get_ident()
    with _state.lock:
        for thread in _state.user_threads:
            if thread != me:
                raise_in_thread(thread, _interrupted(signum))


def _interrupted(signum: int) -> type[RunInterrupted]:
    """A `RunInterrupted` class for an asynchronous raise (which takes a class, not an
    instance) that carries `signum`."""
    if signum == signal.SIGINT:
        return RunInterrupted
    return type("RunInterrupted", (RunInterrupted,), {"__init__": _init_as(signum)})


def _init_as(signum: int) -> Any:
    def __init__(self: RunInterrupted) -> None:
        RunInterrupted.__init__(self, signum)

    return __init__


def raise_in_thread(thread: int, error: type[BaseException] | None) -> None:
    """Have `error` raised in thread `thread` (None: withdraw one not raised yet)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread), ctypes.py_object(error) if error else None
    )


# --- user code ------------------------------------------------------------------------------


@contextlib.contextmanager
def user_code() -> Iterator[None]:
    """Around every call into user code: the thread is known to run user code (so that an
    interruption may be raised in it), and an `os._exit` the code survived (it caught the
    `HardExit`) still fails it. Code that forked and comes back here in the child process
    ends that process, as the fork's caller would have, instead of running flowc twice."""
    me = threading.get_ident()
    with _state.lock:
        _state.user_threads[me] = _state.user_threads.get(me, 0) + 1
    failed = True
    try:
        yield
        failed = False
    finally:
        with _state.lock:
            depth = _state.user_threads.pop(me, 1) - 1
            if depth:
                _state.user_threads[me] = depth
            survived = None if depth else _state.exits.pop(me, None)
        if os.getpid() != _state.owner and _state.real_exit is not None:
            _state.real_exit(1 if failed else 0)
        if not depth:
            _restore_streams()
    if survived is not None:
        raise HardExit(survived)


def _restore_streams() -> None:
    """Put back the shielded standard streams a block replaced (`sys.stdout = ...`)."""
    for name in ("stdout", "stderr"):
        if _state.armed and not isinstance(getattr(sys, name), _Shielded):
            shield = _state.shields.get(name)
            if shield is not None:
                setattr(sys, name, shield)


def _arm_exit_guard() -> None:
    """Replace `os._exit` (once per process) by `_guarded_exit`."""
    with _state.lock:
        _state.armed += 1
        _state.owner = os.getpid()
        _state.exits.clear()
        if _state.real_exit is None:
            _state.real_exit = os._exit
            os._exit = _guarded_exit


def _guarded_exit(status: int) -> NoReturn:
    """`os._exit` while flowc runs: in flowc's own process, during a run, it fails the code
    that called it (`HardExit`); anywhere else it ends the process as usual."""
    if _state.armed and os.getpid() == _state.owner:
        _state.exits[threading.get_ident()] = status
        raise HardExit(status)
    _state.real_exit(status)
    raise AssertionError("os._exit returned")  # pragma: no cover


# --- what the user sees -----------------------------------------------------------------------


def user_frames(error: BaseException, root: Path) -> str:
    """The traceback of `error` with the user's frames only: flowc's own, the import
    machinery's and installed libraries' are dropped, the exception line is kept."""
    try:
        summary = traceback.TracebackException.from_exception(error)
        _trim(summary, str(root.resolve()), set())
        return "".join(summary.format())
    except Exception:  # an exception whose text cannot be made (its __str__ raises)
        return f"{type(error).__name__}: <unprintable>\n"


def user_stack(stack: traceback.StackSummary, root: Path) -> str:
    """The user's frames of `stack` (innermost last), as a traceback shows them; empty when
    none is the user's."""
    top = str(root.resolve())
    frames = [f for f in stack if _is_user_frame(f.filename, top)]
    return "".join(traceback.StackSummary.from_list(frames).format())


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


def ending_text(error: BaseException) -> str:
    """What a way out of user code was, in words: `raised ValueError: boom`,
    `called sys.exit(0) (SystemExit)`, `called os._exit(3)`.

    >>> ending_text(SystemExit(0))
    'called sys.exit(0) (SystemExit): a block returns its rows or raises an exception'
    """
    if isinstance(error, HardExit):
        return (
            f"called os._exit({error.code!r}), which would end flowc at once with nothing recorded"
        )
    if isinstance(error, SystemExit):
        return (
            f"called sys.exit({_text(error.code)}) (SystemExit): a block returns its rows or "
            "raises an exception"
        )
    if type(error) is KeyboardInterrupt:
        return "raised KeyboardInterrupt itself (not a Ctrl-C: the run was not interrupted)"
    return f"raised {type(error).__name__}: {_text(error)}"


def _text(value: object) -> str:
    """`str(value)` (`repr` for a code), whatever the user's `__str__` does."""
    try:
        return repr(value) if not isinstance(value, BaseException) else str(value)
    except Exception:
        return "<unprintable>"
