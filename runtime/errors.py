"""Failures of a running step, as the user sees them.

Every error here is a `FlowcError`: the CLI prints its message (and, for a Python block, the
user's own traceback) and never a flowc traceback. Anything else escaping a step is a bug.
"""

from __future__ import annotations

from flowc.project.errors import FlowcError


class StepError(FlowcError):
    """A step failed for a reason the user can act on.

    `retryable` marks a failure that may go away on its own (a dropped connection, a
    timeout, a serialization failure): the executor retries such a step per its `retries`.

    `node` names the spec node when the failing code knows it (the executor names it
    otherwise); `user_traceback` holds the frames of the user's own Python code, if any, and
    is part of the text, so that whoever prints the error shows the user where it happened.

    >>> str(StepError("boom", node="trips"))
    'trips: boom'
    """

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        user_traceback: str | None = None,
        retryable: bool = False,
    ) -> None:
        self.message = message
        self.node = node
        self.user_traceback = user_traceback
        self.retryable = retryable
        text = f"{node}: {message}" if node else message
        super().__init__(f"{text}\n{user_traceback.rstrip()}" if user_traceback else text)


class EngineBusy(StepError):
    """Another process held a step's database (a DuckDB file, which admits one writing
    process) for longer than its connection's `lock_timeout`: the run could not start it.
    Running again later can succeed; `--resume` adds nothing."""


class ConnectionFailed(StepError):
    """A connection of the profile could not be opened (the server is down, the address or
    the credentials are wrong): no step is at fault, and `--resume` adds nothing. `connection`
    names it; the message says which profile and flow.toml line define it."""

    def __init__(self, message: str, *, connection: str) -> None:
        self.connection = connection
        super().__init__(message)


class StepTimeout(StepError):
    """A step ran longer than its `timeout`."""


class DataError(StepError):
    """A value that does not fit its declared column: names where it is (`origin`: a file,
    a URL or a Python block), the 1-based `row` and the `column`.

    >>> DataError("data/a.csv", 3, "fare", "cannot be decimal(10, 2): '8.555'").message
    "data/a.csv, row 3, column `fare`: cannot be decimal(10, 2): '8.555'"
    """

    def __init__(self, origin: str, row: int, column: str, problem: str, *, line: str = "") -> None:
        self.origin = origin
        self.row = row
        self.column = column
        super().__init__(f"{origin}, row {row}{line}, column `{column}`: {problem}")


# Exceptions of user code (Python blocks, loaders) worth another attempt: network trouble.
# Third-party client libraries (requests, httpx, urllib3, ...) have their own classes of the
# same names, not subclasses of the built-in ones, so classes are matched by name too.
_TRANSIENT_NAMES = frozenset(
    {
        "ConnectionError",
        "ConnectTimeout",
        "ReadTimeout",
        "Timeout",
        "TimeoutError",
        "TimeoutException",
        "RemoteDisconnected",
        "IncompleteRead",
        "URLError",
    }
)


def transient(error: BaseException) -> bool:
    """Whether user code failed in a way that may go away on its own.

    >>> transient(ConnectionResetError()), transient(ValueError())
    (True, False)
    """
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(error).__mro__)
