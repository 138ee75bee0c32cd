"""The check cache: a spec whose inputs are unchanged is not analysed again.

An entry is keyed by a digest of the spec's text, the profiles checked (with their
connection names) and flowc's own compiler sources; it is valid while every file the
analysis read (SQL files, Python blocks, CSV headers, glob matches) still digests the same.
Entries live in `.flowc/cache/check.json` under the project root. A damaged or foreign
cache file is ignored, never an error.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

import flowc.compiler
import flowc.project
from flowc.compiler.diagnostics import Diagnostic
from flowc.compiler.driver import reads

_FORMAT = 1


@cache
def compiler_digest() -> str:
    """A digest of the compiler's own sources: a new flowc never trusts an old cache."""
    parts = [
        path.read_bytes()
        for folder in (Path(flowc.compiler.__file__).parent, Path(flowc.project.__file__).parent)
        for pattern in ("*.py", "*.lark")
        for path in sorted(folder.rglob(pattern))
    ]
    return reads.digest(b"\0".join(parts))


def spec_key(text: str, connections: Mapping[str, frozenset[str]]) -> str:
    profiles = json.dumps({k: sorted(v) for k, v in sorted(connections.items())})
    return reads.digest(f"{_FORMAT}\0{compiler_digest()}\0{profiles}\0{text}".encode())


class CheckCache:
    def __init__(self, root: Path) -> None:
        self.path = root / ".flowc" / "cache" / "check.json"
        self.entries = self._load()
        self.dirty = False

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def lookup(self, file: str, key: str) -> list[Diagnostic] | None:
        entry = self.entries.get(file)
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        recorded = entry.get("reads")
        if not isinstance(recorded, dict) or any(
            reads.current(path) != value for path, value in recorded.items()
        ):
            return None
        try:
            return [Diagnostic.model_validate(d) for d in entry["diagnostics"]]  # type: ignore[attr-defined]
        except (KeyError, TypeError, ValueError):
            return None

    def store(
        self, file: str, key: str, recorded: Mapping[str, str], found: Sequence[Diagnostic]
    ) -> None:
        self.entries[file] = {
            "key": key,
            "reads": dict(sorted(recorded.items())),
            "diagnostics": [d.model_dump(mode="json") for d in found],
        }
        self.dirty = True

    def save(self) -> None:
        """Write the cache atomically; a read-only project simply goes uncached."""
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(self.entries, out, sort_keys=True)
            Path(temporary).replace(self.path)
        except OSError:
            return
