"""`python -m flowc.cli`: the `flowc` command."""

from __future__ import annotations

from flowc.cli import main

if __name__ == "__main__":
    main()
