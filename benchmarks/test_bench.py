"""Benchmark `flowc test` on the green-taxi example's tests, end to end; prints one table.

    python benchmarks/test_bench.py [--runs 7]

Copies the example project (no data: the tests need none) to `benchmarks/.work/test_bench/`,
runs `flowc test` once untimed (bytecode), then `--runs` times each of: `flowc --version`
(process start-up), `flowc check` of the project (the check the tests start with; its cache
removed before each run) and `flowc test --format json` (the whole process; its report's own
`seconds` is the time inside, from discovery to the last comparison). The table shows
medians of wall time and of the child's CPU time (`os.wait4`). Target (issue 14): `flowc test`
of the example's tests under 1 s end to end. Exit status 0 when it is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from check_bench import find_flowc, render_table

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "specs" / "green_taxi"
WORK = HERE / ".work" / "test_bench"
TARGET_S = 1.0


@dataclass
class Sample:
    wall: float
    cpu: float
    output: str
    code: int


def timed(command: list[str], cwd: Path) -> Sample:
    """Run `command` in `cwd`: its wall time, and its CPU time (user + sys) from `wait4`."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    output = process.stdout.read().decode("utf-8", errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Sample(wall, usage.ru_utime + usage.ru_stime, output, process.returncode)


def project() -> Path:
    shutil.rmtree(WORK, ignore_errors=True)
    shutil.copytree(EXAMPLE, WORK, ignore=shutil.ignore_patterns(".flowc", "data", "out"))
    return WORK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--flowc", default=None, help="the flowc command (default: this venv's)")
    options = parser.parse_args(argv)
    flowc = find_flowc(options.flowc)
    if flowc is None:
        print("flowc is not installed: run `make install` first", file=sys.stderr)
        return 1
    root = project()
    test = [*flowc, "test", ".", "--format", "json"]
    first = timed(test, root)
    if first.code != 0:
        print(f"flowc test failed (exit {first.code}):\n{first.output}", file=sys.stderr)
        return 1
    tests = json.loads(first.output)["summary"]["tests"]
    samples: dict[str, list[Sample]] = {"startup": [], "check": [], "test": []}
    inside: list[float] = []
    for _ in range(options.runs):
        samples["startup"].append(timed([*flowc, "--version"], root))
        shutil.rmtree(root / ".flowc", ignore_errors=True)
        samples["check"].append(timed([*flowc, "check", "."], root))
        run = timed(test, root)
        if run.code != 0:
            print(f"flowc test failed (exit {run.code}):\n{run.output}", file=sys.stderr)
            return 1
        samples["test"].append(run)
        inside.append(json.loads(run.output)["summary"]["seconds"])
    median = {k: statistics.median(s.wall for s in v) for k, v in samples.items()}
    cpu = {k: statistics.median(s.cpu for s in v) for k, v in samples.items()}
    verdict = "PASS" if median["test"] < TARGET_S else "FAIL"
    rows = [
        ("measurement", "wall", "CPU", "runs", "note"),
        ("flowc --version", f"{median['startup']:.2f} s", f"{cpu['startup']:.2f} s",
         str(options.runs), "process start-up"),
        ("flowc check", f"{median['check']:.2f} s", f"{cpu['check']:.2f} s",
         str(options.runs), "the example, cold check cache"),
        ("flowc test", f"{median['test']:.2f} s", f"{cpu['test']:.2f} s",
         str(options.runs), f"{tests} tests, whole process; target < {TARGET_S:.0f} s: {verdict}"),
        ("  inside flowc test", f"{statistics.median(inside):.2f} s", "", str(options.runs),
         "discovery, check, fixtures, runs, comparisons"),
    ]  # fmt: skip
    print(render_table(rows))
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
