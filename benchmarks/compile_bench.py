"""Benchmark `flowc compile` against `flowc check` on generated projects; prints a table.

    python benchmarks/compile_bench.py [--runs 3] [--sizes 100,1000,5000]

For each size and run, in this order: a cold `flowc check PROJECT` (its `.flowc/` removed
first); `flowc compile PROJECT/specs/bench.flow -o OUT` right after it (OUT a new folder: every
file is written; the check cache that check just wrote is valid, as when CI or an editor
checked the spec before compiling it); the same compile with no cache at all (`.flowc/`
removed, another new OUT: compile analyses everything itself, then fills the check cache); a
warm compile (the same OUT again: unchanged files are not rewritten). Whole processes, wall
clock, medians of `--runs`; then the same table in CPU time (user + system, from each
child's rusage), which a busy machine disturbs less. Target (issue 3): compile of 5,000
transforms within 1.5x of check, read on `compile s`; `no cache` is shown beside it.
Projects come from benchmarks/generate.py and are shared with check_bench.py (.work/).
Exit status: 0 when the target passes.
"""

from __future__ import annotations

import argparse
import os
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


def timed(cmd: Sequence[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, from the child's rusage) of `cmd`."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            out.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{out.read().decode(errors='replace')}")
    return elapsed, usage.ru_utime + usage.ru_stime


KINDS = ("check", "compile", "bare", "warm")


def measure(
    flowc: list[str], root: Path, runs: int, out: Path
) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and CPU seconds of each measurement (see the module's docstring)."""
    spec = str(root / "specs" / "bench.flow")
    wall: dict[str, list[float]] = {kind: [] for kind in KINDS}
    cpu: dict[str, list[float]] = {kind: [] for kind in KINDS}

    def run(kind: str, cmd: Sequence[str]) -> None:
        seconds, busy = timed(cmd, root)
        wall[kind].append(seconds)
        cpu[kind].append(busy)

    for index in range(runs):
        # Each cold compile writes into a folder never used before; outputs are deleted only
        # at the end (see README: creating thousands of files right after deleting thousands
        # costs the kernel seconds, whoever creates them).
        fresh = out / f"run{index}"
        shutil.rmtree(root / ".flowc", ignore_errors=True)
        run("check", [*flowc, "check", str(root)])
        run("compile", [*flowc, "compile", spec, "-o", str(fresh / "after-check")])
        shutil.rmtree(root / ".flowc", ignore_errors=True)
        bare = [*flowc, "compile", spec, "-o", str(fresh / "no-cache")]
        run("bare", bare)
        run("warm", bare)
    return _medians(wall), _medians(cpu)


def _medians(values: dict[str, list[float]]) -> dict[str, float]:
    return {kind: statistics.median(found) for kind, found in values.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flowc", default=None, help="the flowc executable to time")
    args = parser.parse_args(argv)
    flowc = find_flowc(args.flowc) or [sys.executable, "-m", "flowc"]
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[str] = []
    cpu_rows: list[str] = []
    ratios: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="flowc-compile-bench-") as scratch:
        for size in sizes:
            root = ensure_project(f"bench_{size}", size, args.seed)
            got, cpu = measure(flowc, root, args.runs, Path(scratch) / str(size))
            ratios[size] = got["compile"] / got["check"]
            rows.append(
                f"{size:>6} {got['check']:>9.2f} {got['compile']:>11.2f} {got['bare']:>10.2f}"
                f" {got['warm']:>11.2f} {ratios[size]:>10.2f} {got['bare'] / got['check']:>10.2f}"
            )
            cpu_rows.append(
                f"{size:>6} {cpu['check']:>9.2f} {cpu['compile']:>11.2f} {cpu['bare']:>10.2f}"
                f" {cpu['warm']:>11.2f} {cpu['compile'] / cpu['check']:>10.2f}"
                f" {cpu['bare'] / cpu['check']:>10.2f}"
            )
    header = (
        f"{'size':>6} {'check s':>9} {'compile s':>11} {'no cache':>10} {'warm comp':>11}"
        f" {'comp/check':>10} {'bare/check':>10}"
    )
    print(f"runs: {args.runs} per measurement (medians); flowc: {' '.join(flowc)}")
    print(f"wall clock:\n{header}")
    print("\n".join(rows))
    print(f"CPU time (user + system; less sensitive to a busy machine):\n{header}")
    print("\n".join(cpu_rows))
    if TARGET_SIZE not in ratios:
        return 0
    passed = ratios[TARGET_SIZE] <= LIMIT
    verdict = "PASS" if passed else "FAIL"
    print(f"target: cold compile of {TARGET_SIZE} within {LIMIT}x of check: {verdict}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
