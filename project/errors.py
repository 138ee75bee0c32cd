"""The one exception root for user-facing failures. Anything else escaping is a flowc bug."""

from __future__ import annotations


class FlowcError(Exception):
    """A failure the user can act on; the CLI prints its message, never a traceback."""


class UsageError(FlowcError):
    """The command line itself is wrong (exit code 2)."""
