"""Where SQL text is in the file that holds it.

sqlglot reports character offsets into the SQL *value*; the value's segments map them to a
line and column of the file that holds the text (the .flow file for an inline string, the
.sql file for `file(...)`).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from flowc.compiler import ir
from flowc.project.spans import Span


def sql_span(body: ir.SqlBody, start: int, end: int) -> Span:
    """The span in `body.file` of the SQL text `body.text[start:end]`.

    >>> from flowc.project.spans import point
    >>> seg = (ir.Segment(offset=0, line=3, col=5), ir.Segment(offset=9, line=4, col=5))
    >>> body = ir.SqlBody(text="SELECT a\\nFROM t", file="f", segments=seg, span=point("f"))
    >>> sql_span(body, 14, 15).start_text()
    '4:10'
    """
    return segment_span(body.segments, body.file, start, end, fallback=body.span)


def segment_span(
    segments: Sequence[ir.Segment], file: str, start: int, end: int, *, fallback: Span
) -> Span:
    """The span of value offsets `start`..`end` (exclusive) of a string with `segments`."""
    if not segments:
        return fallback
    line, col = _locate(segments, start)
    end_line, end_col = _locate(segments, max(start, end - 1))
    return Span(file=file, line=line, col=col, end_line=end_line, end_col=end_col + 1)


def _locate(segments: Sequence[ir.Segment], offset: int) -> tuple[int, int]:
    index = max(bisect.bisect_right(segments, offset, key=_offset) - 1, 0)
    segment = segments[index]
    return segment.line, segment.col + offset - segment.offset


def _offset(segment: ir.Segment) -> int:
    return segment.offset
