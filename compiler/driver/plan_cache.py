"""The plan cache: `flowc run` of a spec that compiled clean, with nothing it depends on
changed since, reuses its plan without parsing anything. No Lark, no sqlglot, no planner is
imported: about a third of a second and 40 MB off the start of every run.

A plan is reused while
- the check cache entry its compile relied on is still valid: the same spec text, flowc's
  own compiler sources, the connections (names and types), and every file the analysis read
  (SQL files, Python blocks, CSV headers, glob matches) digesting the same (cache.py); and
- the project's name and the profile (every setting of its connections, secrets masked)
  are the same.

An entry is one file per spec and profile, `.flowc/cache/plans/<digest>.json`, holding the
plan and the warnings its compile found (they are shown again). A damaged, foreign or stale
entry is ignored, never an error.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from flowc.compiler.diagnostics import Diagnostic
from flowc.compiler.driver import reads
from flowc.compiler.driver.check import connection_types
from flowc.compiler.driver.check_cache import CheckCache, compiler_digest, spec_key
from flowc.compiler.plan import Plan
from flowc.project import config

_FORMAT = 1


def lookup(
    root: Path, file: str, text: str, project: str, profile: config.Profile
) -> tuple[Plan, list[Diagnostic]] | None:
    """The plan of spec `file` (its `text`) for `profile`, with its compile's diagnostics
    (warnings: a plan is only cached when there is no error), when still valid; else None."""
    check_key = spec_key(text, connection_types([profile]))
    checks = CheckCache(root)
    if checks.lookup(file, check_key) is None:
        return None
    try:
        entry = json.loads(_path(root, file, profile).read_text(encoding="utf-8"))
        if entry.get("key") != _key(check_key, _reads(checks, file), project, profile):
            return None
        found = [Diagnostic.model_validate(d) for d in entry["diagnostics"]]
        return Plan.model_validate(entry["plan"]), found
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def store(
    root: Path,
    file: str,
    text: str,
    project: str,
    profile: config.Profile,
    plan: Plan,
    found: list[Diagnostic],
) -> None:
    """Remember a clean compile's plan; a read-only project simply goes uncached."""
    check_key = spec_key(text, connection_types([profile]))
    entry = {
        "key": _key(check_key, _reads(CheckCache(root), file), project, profile),
        "diagnostics": [d.model_dump(mode="json") for d in found],
        "plan": plan.model_dump(mode="json"),
    }
    path = _path(root, file, profile)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(entry, out, sort_keys=True)
        Path(temporary).replace(path)
    except OSError:
        return


def _reads(checks: CheckCache, file: str) -> str:
    """The files the spec's check entry says it read, with their digests. A plan is valid with
    the entry it was stored with only: `flowc check` or `explain` after a SQL file changed
    renews the entry (valid again) without compiling a new plan."""
    entry = checks.entries.get(file)
    return json.dumps(entry.get("reads") if isinstance(entry, dict) else None, sort_keys=True)


def _key(check_key: str, read: str, project: str, profile: config.Profile) -> str:
    settings = profile.model_dump_json()  # SecretStr values dump masked
    parts = (str(_FORMAT), compiler_digest(), check_key, read, project, settings)
    return reads.digest("\0".join(parts).encode())


def _path(root: Path, file: str, profile: config.Profile) -> Path:
    name = reads.digest(f"{file}\0{profile.name}".encode())[:32]
    return root / ".flowc" / "cache" / "plans" / f"{name}.json"
