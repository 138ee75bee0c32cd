"""What an editor session keeps between two analyses of the same spec (`flowc lsp`).

Typing changes one block at a time, so the language server hands `check.analyze` a `Memo`:
the parse of each top-level block (by its text and first line), each SQL body's parse (by its
text) and each SQL transform's output columns (by its SQL and the columns it reads). All three
are pure functions of their keys, and SQL problems are positioned by offsets into the SQL
text, so a hit gives exactly what the work would. `flowc check` keeps no memo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LIMIT = 20_000  # entries per table; past it a table starts again (a long session's old text)


@dataclass
class Memo:
    chunks: dict[tuple[str, int], Any] = field(default_factory=dict)
    queries: dict[tuple[str, str], Any] = field(default_factory=dict)
    outputs: dict[Any, Any] = field(default_factory=dict)
    # Bound nodes by the identity of their block, valid under `names` (every node name).
    bound: dict[int, Any] = field(default_factory=dict)
    names: frozenset[str] = frozenset()

    def trim(self) -> None:
        for table in (self.chunks, self.queries, self.outputs, self.bound):
            if len(table) > LIMIT:
                table.clear()

    def files_changed(self) -> None:
        """A file a spec names changed (a .py entry point, say): bind every block again."""
        self.bound = {}
