"""Passes that build many long-lived sqlglot trees run with the cyclic collector paused."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a pass builds many long-lived trees.

    sqlglot trees hold parent links, so the collector tracks every node; left running, it
    spends more time than the parser itself in collections that free nothing. On the way
    out, everything allocated meanwhile is moved to the oldest generation (`freeze` then
    `unfreeze`, both O(1)) instead of being scanned at once by the next young collection;
    the next full collection frees whatever of it is garbage. (When the caller has frozen
    objects itself, a CLI that will exit soon, what the pass made stays frozen with them.)
    Reference counting still frees everything acyclic meanwhile.
    """
    enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if not frozen:  # a caller who froze objects on purpose keeps them frozen
            gc.unfreeze()
        if enabled:
            gc.enable()
