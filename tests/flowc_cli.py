"""Run the `flowc` command line the way a user does: a separate process, in a folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

FLOWC = [sys.executable, "-m", "flowc"]


def flowc(
    *arguments: str, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`flowc ARGUMENTS` in `cwd`; `env` adds to (or overrides) this process's environment."""
    return subprocess.run(
        [*FLOWC, *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env} if env else None,
    )


def runs_listed(stdout: str) -> list[list[str]]:
    """The rows of `flowc runs` (its header left out), each split into words."""
    return [line.split() for line in stdout.splitlines()[1:]]


def steps_shown(stdout: str) -> list[list[str]]:
    """The step rows of `flowc show`: [step, kind, status, rows, time(, attempt)], split at the
    column gaps (a check's name such as `t.not_null(a, b)` holds single spaces)."""
    table = stdout.split("\n\n")[1].splitlines()
    return [re.split(r"\s{2,}", line.strip()) for line in table[1:]]
