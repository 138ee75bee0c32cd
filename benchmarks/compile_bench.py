"""Benchmark `flowc compile` against `flowc check` on generated projects; prints a table.

    python benchmarks/compile_bench.py [--runs 3] [--sizes 100,1000,5000]

For each size and run, in this order: a cold `flowc check PROJECT` (its `.flowc/` removed
first); `flowc compile PROJECT/specs/bench.flow -o OUT` right after it (OUT removed first:
every file is written; the check cache that check just wrote is valid, as when CI or an editor
checked the spec before compiling it); the same compile with no cache at all (`.flowc/` and OUT
removed: compile analyses everything itself); a warm compile (OUT kept: unchanged files are not
rewritten). Whole processes, wall clock, medians of `--runs`. Target (issue 3): compile of
5,000 transforms within 1.5x of check, read on `compile s`; `no cache` is shown beside it.
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


def measure(flowc: list[str], root: Path, runs: int, out: Path) -> dict[str, float]:
    """Median seconds of each measurement (see the module's docstring)."""
    spec = str(root / "specs" / "bench.flow")
    compile_ = [*flowc, "compile", spec, "-o", str(out)]
    times: dict[str, list[float]] = {"check": [], "compile": [], "bare": [], "warm": []}
    for _ in range(runs):
        shutil.rmtree(root / ".flowc", ignore_errors=True)
        times["check"].append(timed([*flowc, "check", str(root)], root))
        shutil.rmtree(out, ignore_errors=True)
        times["compile"].append(timed(compile_, root))
        shutil.rmtree(root / ".flowc", ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        times["bare"].append(timed(compile_, root))
        times["warm"].append(timed(compile_, root))
    return {name: statistics.median(values) for name, values in times.items()}


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
            got = measure(flowc, root, args.runs, Path(scratch) / str(size))
            ratios[size] = got["compile"] / got["check"]
            rows.append(
                f"{size:>6} {got['check']:>9.2f} {got['compile']:>11.2f} {got['bare']:>10.2f}"
                f" {got['warm']:>11.2f} {ratios[size]:>10.2f} {got['bare'] / got['check']:>10.2f}"
            )
    print(f"runs: {args.runs} per measurement (medians); flowc: {' '.join(flowc)}")
    print(
        f"{'size':>6} {'check s':>9} {'compile s':>11} {'no cache':>10} {'warm comp':>11}"
        f" {'comp/check':>10} {'bare/check':>10}"
    )
    print("\n".join(rows))
    if TARGET_SIZE not in ratios:
        return 0
    passed = ratios[TARGET_SIZE] <= LIMIT
    verdict = "PASS" if passed else "FAIL"
    print(f"target: cold compile of {TARGET_SIZE} within {LIMIT}x of check: {verdict}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
