"""flowc: a declarative dataflow compiler. The CLI lives in `flowc.cli`."""

from __future__ import annotations

__version__ = "0.1.0"
