"""The example projects of `specs/`, copied for a test to run: never the repository's own."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GREEN_TAXI = REPO / "specs" / "green_taxi"


def green_taxi(folder: Path, rows: int) -> Path:
    """`folder/green_taxi`: the example project with `rows` generated trips, never run."""
    root = folder / "green_taxi"
    shutil.copytree(
        GREEN_TAXI, root, ignore=shutil.ignore_patterns(".flowc", "data", "out", "__pycache__")
    )
    subprocess.run(
        [sys.executable, str(root / "generate_data.py"), "--rows", str(rows)],
        check=True,
        capture_output=True,
    )
    return root
