"""Run the `flowc` command line the way a user does: a separate process, in a folder."""

from __future__ import annotations

import os
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
