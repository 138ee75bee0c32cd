from __future__ import annotations

from flowc.cli import main

main()
