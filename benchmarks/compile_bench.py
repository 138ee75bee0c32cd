"""Benchmark `flowc compile` against `flowc check` on generated projects; prints a table.

    python benchmarks/compile_bench.py [--runs 3] [--sizes 100,1000,5000]

For each size: a cold `flowc check PROJECT` (its `.flowc/` removed first) and a cold
`flowc compile PROJECT/specs/bench.flow -o OUT` (OUT removed first: every file is written),
then a warm compile (OUT kept: unchanged files are not rewritten). Whole processes, wall clock,
medians of `--runs`. Target (issue 3): cold compile of 5,000 transforms within 1.5x of check.
Projects come from benchmarks/generate.py and are shared with check_bench.py (.work/).
Exit status: 0 when the target passes.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from check_bench import ensure_project, find_flowc

LIMIT = 1.5
TARGET_SIZE = 5000


def timed(cmd: Sequence[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return elapsed


def measure(flowc: list[str], root: Path, runs: int, out: Path) -> tuple[float, float, float]:
    """Median seconds: cold check, cold compile, warm compile."""
    spec = str(root / "specs" / "bench.flow")
    checks, colds, warms = [], [], []
    for _ in range(runs):
        shutil.rmtree(root / ".flowc", ignore_errors=True)
        checks.append(timed([*flowc, "check", str(root)], root))
        shutil.rmtree(out, ignore_errors=True)
        colds.append(timed([*flowc, "compile", spec, "-o", str(out)], root))
        warms.append(timed([*flowc, "compile", spec, "-o", str(out)], root))
    return statistics.median(checks), statistics.median(colds), statistics.median(warms)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flowc", default=None, help="the flowc executable to time")
    args = parser.parse_args(argv)
    flowc = find_flowc(args.flowc) or [sys.executable, "-m", "flowc"]
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    ratios: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="flowc-compile-bench-") as scratch:
        for size in sizes:
            root = ensure_project(f"bench_{size}", size, args.seed)
            check, cold, warm = measure(flowc, root, args.runs, Path(scratch) / str(size))
            ratios[size] = cold / check
            rows.append(
                f"{size:>6} {check:>9.2f} {cold:>11.2f} {warm:>11.2f} {cold / check:>10.2f}"
            )
    print(f"runs: {args.runs} per measurement (medians); flowc: {' '.join(flowc)}")
    print(f"{'size':>6} {'check s':>9} {'compile s':>11} {'warm comp':>11} {'comp/check':>10}")
    print("\n".join(rows))
    if TARGET_SIZE not in ratios:
        return 0
    passed = ratios[TARGET_SIZE] <= LIMIT
    verdict = "PASS" if passed else "FAIL"
    print(f"target: cold compile of {TARGET_SIZE} within {LIMIT}x of check: {verdict}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
