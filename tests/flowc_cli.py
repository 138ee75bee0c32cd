"""Run the `flowc` command line the way a user does: a separate process, in a folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FLOWC = [sys.executable, "-m", "flowc"]


def flowc(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLOWC, *arguments], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
