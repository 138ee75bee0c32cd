"""Where something is in a project's files: the region a diagnostic underlines, a `.flow`
block or a `flow.toml` connection was read from.

Both halves need it: the compiler's diagnostics point at spans, and the runtime says where a
connection that cannot be reached is defined. So it lives here, with the project model.

>>> point("flow.toml", 5).start_text()
'5:1'
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Span(BaseModel):
    """A region of a source file: 1-based line and column, end exclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def start_text(self) -> str:
        return f"{self.line}:{self.col}"

    def sort_key(self) -> tuple[str, int, int]:
        return (self.file, self.line, self.col)


def point(file: str, line: int = 1, col: int = 1, width: int = 1) -> Span:
    """The span of `width` characters from `line`:`col` (one character at the file's start,
    by default)."""
    return Span(file=file, line=line, col=col, end_line=line, end_col=col + width)
