"""A Python block used by tests that need an existing entry point."""

from __future__ import annotations


def f(*frames: object) -> object:
    return frames[0] if frames else None
