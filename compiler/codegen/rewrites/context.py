"""What a rewrite rule is given and what it gives back.

A rule reads and changes the tree in place; the `Context` tells it the target, hands out
aliases no name of the query uses, and collects what the target cannot say as `Refusal`s,
which codegen turns into diagnostics (F0308).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlglot import exp


@dataclass(frozen=True)
class Refusal:
    """A construct the target cannot express: `part` locates it (its first positioned node,
    or with `words` the last match of that regex before it), `what` names it."""

    part: exp.Expr
    what: str
    hint: str
    words: str | None = None


@dataclass
class Context:
    """One rewrite of one query: its source and target dialects, the refusals so far,
    whether the tree could be typed, and the names in use (for fresh aliases)."""

    source: str
    target: str
    refusals: list[Refusal] = field(default_factory=list)
    typed: bool = False
    taken: set[str] = field(default_factory=set)  # names in use, for fresh aliases

    @property
    def bigquery(self) -> bool:
        return self.target == "bigquery"

    @property
    def postgres(self) -> bool:
        return self.target == "postgres"

    def refuse(self, part: exp.Expr, what: str, hint: str, words: str | None = None) -> None:
        self.refusals.append(Refusal(part, what, hint, words))

    def fresh(self, base: str) -> str:
        """An alias no name of the query uses."""
        name, suffix = base, 1
        while name in self.taken:
            suffix += 1
            name = f"{base}_{suffix}"
        self.taken.add(name)
        return name


Rule = Callable[[exp.Query, Context], None]
