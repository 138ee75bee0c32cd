"""Benchmark `flowc check` against a naive sqlglot pass; prints a table of medians and targets.

    python benchmarks/check_bench.py [--runs 3] [--sizes 100,1000,5000] [--flowc PATH]

Generates projects under `benchmarks/.work/` (reused while the generator version and seed match),
then times whole processes (wall clock, `time.perf_counter`) and reads each child's peak RSS
(`os.wait4`): a cold `flowc check` (the project's `.flowc/` removed before each run), a warm
re-check (nothing changed, cache filled by an untimed run), the sqlglot baseline
(`sqlglot_baseline.py`), and a cold `flowc check` of a small spec (start-up). Exit status: 0
when every target passes, 1 otherwise. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from generate import GENERATOR_VERSION, STAMP_NAME

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
BASELINE = HERE / "sqlglot_baseline.py"
GENERATOR = HERE / "generate.py"
CACHE_DIR = ".flowc"
SMALL = "small"
COLD_VS_BASELINE = 1.0
COLD_VS_BASELINE_AIM = 0.5
WARM_LIMIT_S = 1.0
SCALE_LIMIT = 5.5
SMALL_LIMIT_S = 0.5
TAIL_LINES = 30


# ----------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Sample:
    seconds: float
    peak_mb: float
    code: int
    output: str


@dataclass
class Measure:
    """Runs of one command: medians, or the error that stopped it."""

    samples: list[Sample] = field(default_factory=list)
    error: str | None = None

    @property
    def seconds(self) -> float | None:
        if self.error or not self.samples:
            return None
        return statistics.median(s.seconds for s in self.samples)

    @property
    def peak_mb(self) -> float | None:
        if self.error or not self.samples:
            return None
        return max(s.peak_mb for s in self.samples)


def run_child(cmd: Sequence[str], cwd: Path) -> Sample:
    """Run `cmd` to completion: wall time, the child's own peak RSS, exit code, output."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
    return Sample(elapsed, usage.ru_maxrss / 1024, proc.returncode, text)


def tail(text: str, n: int = TAIL_LINES, head: bool = False) -> str:
    lines = text.rstrip().splitlines()
    picked = lines[:n] if head else lines[-n:]
    return "\n".join("    | " + line for line in picked)


def flowc_failure(sample: Sample, what: str) -> str | None:
    """None when `flowc check` exited 0; else a message, with the output that explains it."""
    if sample.code == 0:
        return None
    if sample.code == 1:
        return f"{what}: flowc found errors in the spec (exit 1):\n{tail(sample.output, head=True)}"
    return f"{what}: flowc exited {sample.code}:\n{tail(sample.output)}"


def measure(
    runs: int,
    cmd: Sequence[str],
    cwd: Path,
    check: Callable[[Sample], str | None],
    before: Callable[[], None] = lambda: None,
) -> Measure:
    result = Measure()
    for _ in range(runs):
        before()
        sample = run_child(cmd, cwd)
        result.error = check(sample)
        if result.error:
            print(result.error, flush=True)
            return result
        result.samples.append(sample)
    return result


def baseline_failure(sample: Sample) -> str | None:
    if sample.code == 0:
        return None
    return f"sqlglot baseline exited {sample.code}:\n{tail(sample.output)}"


# ----------------------------------------------------------------------------- projects


def read_stamp(root: Path) -> dict[str, int]:
    try:
        data: dict[str, int] = json.loads((root / STAMP_NAME).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data


def is_current(root: Path, n_transforms: int, seed: int, n_sources: int | None) -> bool:
    have = read_stamp(root)
    wanted = {"generator_version": GENERATOR_VERSION, "n_transforms": n_transforms, "seed": seed}
    if n_sources is not None:
        wanted["n_sources"] = n_sources
    return all(have.get(k) == v for k, v in wanted.items())


def ensure_project(name: str, n_transforms: int, seed: int, n_sources: int | None = None) -> Path:
    """Generate (in a child process, see README: peak RSS) unless an identical one exists."""
    root = WORK / name
    if is_current(root, n_transforms, seed, n_sources):
        return root
    shutil.rmtree(root, ignore_errors=True)
    print(f"generating {root.relative_to(HERE.parent)} ({n_transforms} transforms) ...", flush=True)
    cmd = [sys.executable, str(GENERATOR), str(n_transforms), str(root), "--seed", str(seed)]
    cmd += ["--sources", str(n_sources)] if n_sources is not None else []
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return root


def find_flowc(explicit: str | None) -> list[str] | None:
    if explicit:
        return [explicit]
    sibling = Path(sys.executable).with_name("flowc")
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return [str(sibling)]
    if importlib.util.find_spec("flowc") is not None:
        return [sys.executable, "-m", "flowc"]
    return None


def clear_cache(root: Path) -> Callable[[], None]:
    return lambda: shutil.rmtree(root / CACHE_DIR, ignore_errors=True)


# ----------------------------------------------------------------------------- one size


@dataclass
class Row:
    size: int
    lines: int
    cold: Measure
    warm: Measure
    base: Measure


MISSING = Measure(error="flowc not found")


def measure_size(size: int, root: Path, flowc: list[str] | None, runs: int) -> Row:
    print(f"measuring {size} transforms ...", flush=True)
    check = [*flowc, "check", str(root)] if flowc else []
    cold = warm = MISSING
    if flowc:
        cold = measure(
            runs,
            check,
            root,
            lambda s: flowc_failure(s, f"cold check {size}"),
            before=clear_cache(root),
        )
    if flowc and not cold.error:
        run_child(check, root)
        warm = measure(runs, check, root, lambda s: flowc_failure(s, f"warm check {size}"))
    base = measure(runs, [sys.executable, str(BASELINE), str(root)], root, baseline_failure)
    return Row(size, read_stamp(root).get("spec_lines", 0), cold, warm, base)


def measure_small(flowc: list[str] | None, runs: int, seed: int) -> Measure:
    if not flowc:
        return MISSING
    root = ensure_project(SMALL, 1, seed, n_sources=1)
    cmd = [*flowc, "check", str(root)]
    return measure(
        runs, cmd, root, lambda s: flowc_failure(s, "small spec"), before=clear_cache(root)
    )


# ----------------------------------------------------------------------------- report


def fmt(value: float | None, spec: str = ".3f", unit: str = "") -> str:
    return "ERROR" if value is None else f"{value:{spec}}{unit}"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


HEADER = ("size", "spec lines", "cold s", "warm s", "baseline s", "cold/base", "peak MB", "base MB")


def table_row(r: Row) -> tuple[str, ...]:
    return (
        str(r.size),
        str(r.lines),
        fmt(r.cold.seconds),
        fmt(r.warm.seconds),
        fmt(r.base.seconds),
        fmt(ratio(r.cold.seconds, r.base.seconds), ".2f", "x"),
        fmt(r.cold.peak_mb, ".0f"),
        fmt(r.base.peak_mb, ".0f"),
    )


def render_table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    label: str
    value: str
    status: str


def verdict(value: float | None, limit: float, word: tuple[str, str] = ("PASS", "FAIL")) -> str:
    if value is None:
        return "ERROR"
    return word[0] if value <= limit else word[1]


def targets(rows: Sequence[Row], small: Measure) -> list[Target]:
    by = {r.size: r for r in rows}
    out: list[Target] = []
    if 1000 in by:
        r = ratio(by[1000].cold.seconds, by[1000].base.seconds)
        out.append(
            Target(
                "cold check 1000 <= baseline 1000", fmt(r, ".2f", "x"), verdict(r, COLD_VS_BASELINE)
            )
        )
        out.append(
            Target(
                f"  aim: <= {COLD_VS_BASELINE_AIM}x baseline",
                fmt(r, ".2f", "x"),
                verdict(r, COLD_VS_BASELINE_AIM, ("MET", "NOT MET")),
            )
        )
    for row in rows:
        out.append(
            Target(
                f"warm re-check {row.size} < {WARM_LIMIT_S:g} s",
                fmt(row.warm.seconds, ".3f", " s"),
                verdict(row.warm.seconds, WARM_LIMIT_S),
            )
        )
    if 1000 in by and 5000 in by:
        r = ratio(by[5000].cold.seconds, by[1000].cold.seconds)
        out.append(
            Target(
                f"cold 5000 <= {SCALE_LIMIT}x cold 1000",
                fmt(r, ".2f", "x"),
                verdict(r, SCALE_LIMIT),
            )
        )
    out.append(
        Target(
            f"small spec check < {SMALL_LIMIT_S} s",
            fmt(small.seconds, ".3f", " s"),
            verdict(small.seconds, SMALL_LIMIT_S),
        )
    )
    return out


def render_targets(items: Sequence[Target]) -> str:
    width = max(len(t.label) for t in items)
    vwidth = max(len(t.value) for t in items)
    return "\n".join(
        f"  {t.label.ljust(width)}  {t.value.rjust(vwidth)}  {t.status}" for t in items
    )


def sqlglot_build(rows: Sequence[Row]) -> str:
    """The baseline's first output line says whether sqlglot's compiled build is in use."""
    for row in rows:
        for sample in row.base.samples:
            return sample.output.splitlines()[0]
    return "sqlglot build: unknown (the baseline did not run)"


def environment(rows: Sequence[Row], flowc: list[str] | None, runs: int) -> str:
    who = " ".join(flowc) if flowc else "NOT FOUND (pass --flowc PATH)"
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (
        f"flowc: {who}\n{sqlglot_build(rows)}\n"
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"times: median of {runs} run(s), whole process\n"
        f"peak MB: max RSS of the child over the runs (floor: this script's own "
        f"{floor:.0f} MB, which a child inherits at exec)"
    )


def report(rows: Sequence[Row], small: Measure, flowc: list[str] | None, runs: int) -> bool:
    print()
    print(environment(rows, flowc, runs))
    print()
    print(render_table([HEADER, *(table_row(r) for r in rows)]))
    print(f"\nsmall spec (1 source, 1 transform), cold: {fmt(small.seconds, '.3f', ' s')}")
    items = targets(rows, small)
    print("\ntargets\n" + render_targets(items))
    return all(t.status in ("PASS", "MET", "NOT MET") for t in items)


# ----------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="benchmark `flowc check` (see README.md)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--sizes", default="100,1000,5000", help="transform counts, comma list")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--flowc", help="flowc executable (default: next to this Python)")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.runs < 1 or not args.sizes:
        parser.error("need --runs >= 1 and at least one size")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    flowc = find_flowc(args.flowc)
    if flowc is None:
        print("flowc not found next to this Python; flowc columns will read ERROR", flush=True)
    roots = {n: ensure_project(f"bench_{n}", n, args.seed) for n in args.sizes}
    small = measure_small(flowc, args.runs, args.seed)
    rows = [measure_size(n, roots[n], flowc, args.runs) for n in args.sizes]
    return 0 if report(rows, small, flowc, args.runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
