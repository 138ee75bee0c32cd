"""Ownership of file outputs: flowc deletes or replaces only files it wrote.

Every file sink target has a manifest, `.flowc/outputs/<digest of the target>.json`, listing
each file flowc wrote there by its path inside the target, size and modification time (a
rename keeps both). Before a sink changes its target, every file the target holds must be
one the manifest lists with that same size and time; anything else (a file the user put
there, edited, or one an older flowc wrote without a manifest) stops the run before
anything changes (`NotOwned`). A missing target, or an empty folder, is free to take.

A manifest is written before the new output is moved in, listing the old files and the
new: if the run is killed between the two, both sets are flowc's, so the next run (or
`--resume`) may still replace them. Once the output is in place, it lists the new only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from flowc.runtime.errors import StepError

FOLDER = Path(".flowc") / "outputs"
Signature = tuple[int, int]  # size, modification time (ns)
_FORMAT = 1


class NotOwned(StepError):
    """A sink's target holds files that flowc did not write."""


def manifest_path(root: Path, target: Path) -> Path:
    """Where the manifest of `target` is: named after its path relative to the project root
    (absolute outside it), so that a project moved or copied whole keeps its records."""
    absolute = Path(os.path.normpath(target.absolute()))
    base = Path(os.path.normpath(root.absolute()))
    name = absolute.relative_to(base).as_posix() if base in absolute.parents else str(absolute)
    key = hashlib.sha256(name.encode()).hexdigest()
    return root / FOLDER / f"{key[:32]}.json"


def listing(target: Path) -> dict[str, Signature]:
    """Every file at `target` (itself, as "", when it is a file), by path inside it."""
    if target.is_file() or (target.is_symlink() and not target.is_dir()):
        return {"": _signature(target)}
    found: dict[str, Signature] = {}
    for folder, _, files in os.walk(target):
        for name in files:
            path = Path(folder) / name
            found[path.relative_to(target).as_posix()] = _signature(path)
    return found


def _signature(path: Path) -> Signature:
    info = path.lstat()
    return info.st_size, info.st_mtime_ns


class Manifest:
    """What flowc wrote at one target; `extra`: what a sink keeps beside (a CSV append's
    resume point)."""

    def __init__(
        self,
        root: Path,
        target: Path,
        files: Mapping[str, Iterable[Signature]],
        extra: Mapping[str, object],
    ) -> None:
        self.root = root
        self.target = target
        self.files = {rel: set(signatures) for rel, signatures in files.items()}
        self.extra = dict(extra)

    @classmethod
    def load(cls, root: Path, target: Path) -> Manifest:
        """The target's manifest; empty when there is none (or it is unreadable: then no
        file counts as flowc's, which errs on the side of the user's files)."""
        try:
            data = json.loads(manifest_path(root, target).read_text(encoding="utf-8"))
            files = {
                str(rel): {(int(s[0]), int(s[1])) for s in sigs}
                for rel, sigs in data["files"].items()
            }
            extra = dict(data.get("extra", {}))
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
            return cls(root, target, {}, {})
        return cls(root, target, files, extra)

    def foreign(self) -> list[str]:
        """The files at the target that flowc did not write (or that changed since)."""
        return sorted(
            rel
            for rel, signature in listing(self.target).items()
            if signature not in self.files.get(rel, set())
        )

    def owns(self, rel: str, signature: Signature) -> bool:
        return signature in self.files.get(rel, set())

    def save(
        self, files: Mapping[str, Signature], *, keep_old: bool, extra: Mapping[str, object]
    ) -> None:
        """Record `files` (with the old entries too, when `keep_old`)."""
        merged: dict[str, set[Signature]] = {k: set(v) for k, v in self.files.items()}
        if not keep_old:
            merged = {}
        for rel, signature in files.items():
            merged.setdefault(rel, set()).add(signature)
        self.files, self.extra = merged, dict(extra)
        data = {
            "format": _FORMAT,
            "target": str(self.target),  # for whoever reads it; the file's name is the key
            "files": {rel: sorted(map(list, sigs)) for rel, sigs in sorted(merged.items())},
            "extra": self.extra,
        }
        path = manifest_path(self.root, self.target)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, sort_keys=True)
        Path(temporary).replace(path)


def claim(root: Path, target: Path, shown: str) -> Manifest:
    """The manifest of `target`, once it is sure that flowc may change what is there:
    `NotOwned` (naming up to three of the other files) when it is not."""
    manifest = Manifest.load(root, target)
    if not target.exists() and not target.is_symlink():
        return manifest
    foreign = manifest.foreign()
    if not foreign:
        return manifest
    listed = ", ".join(f"`{rel or target.name}`" for rel in foreign[:3])
    more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
    raise NotOwned(
        f"`{shown}` holds files that flowc did not write ({listed}{more}), and flowc "
        "replaces only what it wrote\n"
        "hint: move those files away (or choose another path for the sink), then run again"
    )


def position(root: Path, spec: str, node: str) -> str | None:
    """`specs/x.flow:12:11`: where the sink `node` names its target (its `to`), for
    messages of the run; None when the spec cannot be read or no longer has that sink."""
    from flowc.compiler import ir
    from flowc.compiler.syntax.parser import parse

    path = root / spec
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    document, _ = parse(text, str(path))
    for block in document.blocks:
        if block.kind == "sink" and block.name == node:
            for entry in block.entries:
                if isinstance(entry, ir.Attribute) and entry.name == "to":
                    span = entry.value.span
                    return f"{path}:{span.line}:{span.col}"
            return f"{path}:{block.name_span.line}:{block.name_span.col}"
    return None
