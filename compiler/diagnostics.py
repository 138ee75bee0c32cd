"""Diagnostics are values: a code from the registry, a message, a span and hints.

Passes only collect them into a `Diagnostics` list; the CLI sorts and renders them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import Any

from flowc.compiler.codes import Severity, lookup
from flowc.project.spans import Span
from pydantic import BaseModel, ConfigDict


class Note(BaseModel):
    """A secondary location attached to a diagnostic (e.g. the first definition)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    span: Span
    message: str


class Diagnostic(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    severity: Severity
    message: str
    span: Span
    hint: str | None = None
    notes: tuple[Note, ...] = ()

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (*self.span.sort_key(), self.code, self.message)


def make(
    code: str,
    span: Span,
    *,
    hint: str | None = None,
    notes: Iterable[Note] = (),
    **fields: Any,
) -> Diagnostic:
    entry = lookup(code)
    return Diagnostic(
        code=code,
        severity=entry.severity,
        message=entry.template.format(**fields),
        span=span,
        hint=hint,
        notes=tuple(notes),
    )


class Diagnostics:
    """An append-only collection that passes report into."""

    def __init__(self) -> None:
        self._items: list[Diagnostic] = []

    def add(self, diagnostic: Diagnostic) -> None:
        self._items.append(diagnostic)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self._items.extend(diagnostics)

    def report(
        self,
        code: str,
        span: Span,
        *,
        hint: str | None = None,
        notes: Iterable[Note] = (),
        **fields: Any,
    ) -> None:
        self._items.append(make(code, span, hint=hint, notes=notes, **fields))

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self._items)

    def sorted(self) -> list[Diagnostic]:
        return sorted(set(self._items), key=Diagnostic.sort_key)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A `did you mean ...?` hint for the closest candidate, if any is close enough.

    >>> did_you_mean("pasenger_count", ["passenger_count", "fare_amount"])
    'did you mean `passenger_count`?'
    """
    pool = sorted(set(candidates))
    by_lower = {c.lower(): c for c in pool}
    if name.lower() in by_lower and by_lower[name.lower()] != name:
        return f"did you mean `{by_lower[name.lower()]}`?"
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"did you mean `{by_lower[matches[0]]}`?" if matches else None
