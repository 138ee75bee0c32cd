"""Benchmark `flowc run` (DuckDB): memory, overhead, start-up, Python blocks; prints one table.

    python benchmarks/run_bench.py [--runs 3] [--only memory,overhead,startup,python]

Generates the green-taxi data under `benchmarks/.work/` (specs/green_taxi/generate_data.py,
reused while the row count matches), copies the example project next to it, then times whole
processes (wall clock) and reads each child's peak RSS and CPU time from the rusage `os.wait4`
returns for it. Exit status: 0 when every target passes, 1 otherwise. See README.md.
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass
from pathlib import Path

from check_bench import find_flowc, render_table, tail

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"
EXAMPLE = REPO / "specs" / "green_taxi"
GENERATOR = EXAMPLE / "generate_data.py"
SPEC = "specs/green_taxi.flow"
MEMORY_SPEC = "specs/memory.flow"
ONE_NODE_SPEC = "specs/one.flow"
STAMP = ".rows"

MEMORY_ROWS = 5_000_000
OVERHEAD_ROWS = 1_000_000
PYTHON_ROWS = 200_000
MEMORY_LIMIT_MB = 600.0
OVERHEAD_LIMIT = 1.2
STARTUP_LIMIT_S = 0.6
PYTHON_CPU_LIMIT_S = 2.2  # half of Mage's 4.4 CPU-s (measured on this machine)
PYTHON_MEMORY_LIMIT_MB = 270.0  # half of Mage's 540 MB
BENCHES = ("memory", "overhead", "startup", "python")

TRIP_COLUMNS = """\
    VendorID               int
    lpep_pickup_datetime   timestamp  not null
    lpep_dropoff_datetime  timestamp
    store_and_fwd_flag     varchar
    RatecodeID             int
    PULocationID           int
    DOLocationID           int
    passenger_count        int
    trip_distance          double
    fare_amount            decimal(10, 2)
    extra                  decimal(10, 2)
    mta_tax                decimal(10, 2)
    tip_amount             decimal(10, 2)
    tolls_amount           decimal(10, 2)
    ehail_fee              decimal(10, 2)
    improvement_surcharge  decimal(10, 2)
    total_amount           decimal(10, 2)
    payment_type           int
    trip_type              int
    congestion_surcharge   decimal(10, 2)
"""

# The memory benchmark: a big CSV through one SQL transform into a Parquet sink.
MEMORY_FLOW = f"""\
pipeline memory {{
  description = "5M rows: CSV source, SQL transform, Parquet sink"
}}

source trips {{
  from = csv("data/green_tripdata_2020-1*.csv.gz", header = true)
  columns {{
{TRIP_COLUMNS}  }}
}}

transform clean_trips {{
  sql = \"\"\"
    SELECT *, CAST(lpep_pickup_datetime AS DATE) AS lpep_pickup_date
    FROM trips
    WHERE passenger_count > 0 AND trip_distance > 0
  \"\"\"
}}

sink trip_files {{
  input = clean_trips
  to    = parquet("out/clean_trips/")
}}
"""

ONE_NODE_TOML = """\
[project]
name = "one_node"
default_profile = "dev"

[profiles.dev.local]
type = "duckdb"
path = ".flowc/local.duckdb"
"""

ONE_NODE_FLOW = """\
pipeline one {
  description = "One node: a small CSV loaded into a table"
}

source orders {
  from = csv("data/orders.csv", header = true)
  columns {
    order_id    int        not null
    ordered_at  timestamp  not null
    customer    varchar
    amount      decimal(10, 2)
  }
}
"""


# ----------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Sample:
    seconds: float  # wall clock, process start to exit
    cpu: float  # user + sys
    peak_mb: float
    code: int
    output: str


@dataclass(frozen=True)
class Measure:
    """Runs of one command: medians of time and CPU, the highest peak RSS."""

    samples: tuple[Sample, ...]

    @property
    def seconds(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def peak_mb(self) -> float:
        return max(s.peak_mb for s in self.samples)


class BenchError(Exception):
    """A command of the benchmark failed: its output says why."""


def run_child(cmd: Sequence[str], cwd: Path) -> Sample:
    """Run `cmd` to completion: wall time, its own CPU time and peak RSS, exit code, output."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
    cpu = usage.ru_utime + usage.ru_stime
    code = os.waitstatus_to_exitcode(status)
    sample = Sample(elapsed, cpu, usage.ru_maxrss / 1024, code, text)
    if code != 0:
        raise BenchError(f"`{' '.join(cmd)}` exited {code}:\n{tail(sample.output)}")
    return sample


@dataclass(frozen=True)
class Command:
    argv: list[str]
    cwd: Path
    before: Callable[[], None] = lambda: None  # run untimed before each run


def measure(runs: int, commands: dict[str, Command]) -> dict[str, Measure]:
    """Run each command `runs` times, interleaved (so a noisy neighbour hits all alike)."""
    samples: dict[str, list[Sample]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            command.before()
            samples[name].append(run_child(command.argv, command.cwd))
    return {name: Measure(tuple(found)) for name, found in samples.items()}


# ----------------------------------------------------------------------------- projects


def taxi_project(rows: int) -> Path:
    """benchmarks/.work/taxi_<rows>: the example project with `rows` generated trips; the
    data is generated once (in a child process), the project files copied afresh."""
    root = WORK / f"taxi_{rows}"
    stamp = root / "data" / STAMP
    if not stamp.is_file() or stamp.read_text().strip() != str(rows):
        shutil.rmtree(root / "data", ignore_errors=True)
        print(f"generating {rows:,} green-taxi rows into {root / 'data'} ...", flush=True)
        cmd = [sys.executable, str(GENERATOR), "--rows", str(rows), "--out", str(root / "data")]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        stamp.write_text(f"{rows}\n")
    for name in ("flow.toml", "specs", "sql", "blocks"):
        target = root / name
        if target.is_dir():
            shutil.rmtree(target)
        if (EXAMPLE / name).is_dir():
            shutil.copytree(EXAMPLE / name, target)
        else:
            shutil.copy(EXAMPLE / name, target)
    return root


def fresh_state(root: Path, *, keep_cache: bool = True) -> Callable[[], None]:
    """No warehouse, outputs or run history from an earlier run: every run does the same
    work. The plan cache (`.flowc/cache`) stays, as it does for a pipeline run again and
    again; the start-up benchmark also times a first run, with nothing cached."""

    def clear() -> None:
        shutil.rmtree(root / "out", ignore_errors=True)
        state = root / ".flowc"
        for entry in state.iterdir() if state.is_dir() else []:
            if entry.name != "cache" or not keep_cache:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    return clear


def one_node_project() -> Path:
    root = WORK / "one_node"
    shutil.rmtree(root, ignore_errors=True)
    (root / "specs").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "flow.toml").write_text(ONE_NODE_TOML)
    (root / ONE_NODE_SPEC).write_text(ONE_NODE_FLOW)
    rows = [
        f"{i},2024-03-{1 + i % 28:02d} 09:15:00,customer_{i % 7},{i * 1.25:.2f}" for i in range(40)
    ]
    (root / "data" / "orders.csv").write_text(
        "order_id,ordered_at,customer,amount\n" + "\n".join(rows) + "\n"
    )
    return root


def write_memory_spec(root: Path) -> None:
    (root / MEMORY_SPEC).write_text(MEMORY_FLOW)


# ----------------------------------------------------------------------------- benchmarks


@dataclass(frozen=True)
class Row:
    """One line of the table: flowc's numbers against the baseline's, and the target."""

    bench: str
    what: str
    flowc: str
    baseline: str
    ratio: str
    target: str
    status: str


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def bench_memory(flowc: list[str], runs: int) -> list[Row]:
    root = taxi_project(MEMORY_ROWS)
    write_memory_spec(root)
    print(f"memory: {MEMORY_ROWS:,} rows, CSV -> SQL -> Parquet ...", flush=True)
    found = measure(runs, {"flowc": Command([*flowc, "run", MEMORY_SPEC], root, fresh_state(root))})
    peak = found["flowc"].peak_mb
    return [
        Row(
            f"memory ({MEMORY_ROWS // 1_000_000}M rows)",
            "peak RSS",
            f"{peak:.0f} MB",
            "-",
            "-",
            f"< {MEMORY_LIMIT_MB:.0f} MB",
            verdict(peak < MEMORY_LIMIT_MB),
        ),
        Row("", "wall", f"{found['flowc'].seconds:.2f} s", "-", "-", "-", ""),
    ]


def bench_overhead(flowc: list[str], runs: int) -> list[Row]:
    root = taxi_project(OVERHEAD_ROWS)
    print(f"overhead: green_taxi on {OVERHEAD_ROWS:,} rows, flowc vs DuckDB script ...", flush=True)
    baseline = [sys.executable, str(HERE / "duckdb_baseline.py"), str(root)]
    commands = {
        "flowc": Command([*flowc, "run", SPEC], root, fresh_state(root)),
        "duckdb": Command(baseline, root),
        "pandas": Command([*baseline, "--rename", "pandas"], root),
    }
    found = measure(runs, commands)
    ratio = found["flowc"].seconds / found["pandas"].seconds
    strict = found["flowc"].seconds / found["duckdb"].seconds
    label = f"overhead ({OVERHEAD_ROWS // 1_000_000}M rows)"
    return [
        Row(
            label,
            "wall, same job",
            f"{found['flowc'].seconds:.2f} s",
            f"{found['pandas'].seconds:.2f} s",
            f"{ratio:.2f}x",
            f"<= {OVERHEAD_LIMIT}x",
            verdict(ratio <= OVERHEAD_LIMIT),
        ),
        Row(
            "",
            "wall, SQL rename",
            f"{found['flowc'].seconds:.2f} s",
            f"{found['duckdb'].seconds:.2f} s",
            f"{strict:.2f}x",
            "-",
            "",
        ),
        Row(
            "",
            "CPU, SQL rename",
            f"{found['flowc'].cpu:.2f} s",
            f"{found['duckdb'].cpu:.2f} s",
            f"{found['flowc'].cpu / found['duckdb'].cpu:.2f}x",
            "-",
            "",
        ),
        Row(
            "",
            "RSS, SQL rename",
            f"{found['flowc'].peak_mb:.0f} MB",
            f"{found['duckdb'].peak_mb:.0f} MB",
            f"{found['flowc'].peak_mb / found['duckdb'].peak_mb:.2f}x",
            "-",
            "",
        ),
    ]


def bench_startup(flowc: list[str], runs: int) -> list[Row]:
    root = one_node_project()
    print("start-up: a one-node pipeline ...", flush=True)
    cold = measure(
        runs,
        {
            "flowc": Command(
                [*flowc, "run", ONE_NODE_SPEC], root, fresh_state(root, keep_cache=False)
            )
        },
    )
    run_child([*flowc, "run", ONE_NODE_SPEC], root)  # the warehouse and history exist from now
    warm = measure(runs, {"flowc": Command([*flowc, "run", ONE_NODE_SPEC], root)})["flowc"]
    first = cold["flowc"]
    return [
        Row(
            "start-up (1 node)",
            "wall",
            f"{warm.seconds:.3f} s",
            "Mage 2.9 s",
            f"{warm.seconds / 2.9:.2f}x",
            f"< {STARTUP_LIMIT_S} s",
            verdict(warm.seconds < STARTUP_LIMIT_S),
        ),
        Row("", "peak RSS", f"{warm.peak_mb:.0f} MB", "Mage 290 MB", "-", "-", ""),
        Row("", "CPU (user+sys)", f"{warm.cpu:.3f} s", "-", "-", "-", ""),
        Row("  first run", "wall", f"{first.seconds:.3f} s", "-", "-", "-", ""),
    ]


def bench_python(flowc: list[str], runs: int) -> list[Row]:
    root = taxi_project(PYTHON_ROWS)
    print(f"python blocks: green_taxi on {PYTHON_ROWS:,} rows, flowc vs pandas ...", flush=True)
    commands = {
        "flowc": Command([*flowc, "run", SPEC], root, fresh_state(root)),
        "pandas": Command([sys.executable, str(HERE / "pandas_baseline.py"), str(root)], root),
    }
    found = measure(runs, commands)
    ours, theirs = found["flowc"], found["pandas"]
    label = f"python blocks ({PYTHON_ROWS // 1_000}k rows)"
    return [
        Row(
            label,
            "CPU (user+sys)",
            f"{ours.cpu:.2f} s",
            f"{theirs.cpu:.2f} s",
            f"{ours.cpu / theirs.cpu:.2f}x",
            f"<= {PYTHON_CPU_LIMIT_S} s",
            verdict(ours.cpu <= PYTHON_CPU_LIMIT_S),
        ),
        Row(
            "",
            "peak RSS",
            f"{ours.peak_mb:.0f} MB",
            f"{theirs.peak_mb:.0f} MB",
            f"{ours.peak_mb / theirs.peak_mb:.2f}x",
            f"<= {PYTHON_MEMORY_LIMIT_MB:.0f} MB",
            verdict(ours.peak_mb <= PYTHON_MEMORY_LIMIT_MB),
        ),
        Row(
            "",
            "wall",
            f"{ours.seconds:.2f} s",
            f"{theirs.seconds:.2f} s",
            f"{ours.seconds / theirs.seconds:.2f}x",
            "-",
            "",
        ),
    ]


BENCH: dict[str, Callable[[list[str], int], list[Row]]] = {
    "memory": bench_memory,
    "overhead": bench_overhead,
    "startup": bench_startup,
    "python": bench_python,
}
HEADER = ("benchmark", "measure", "flowc", "baseline", "ratio", "target", "status")


# ----------------------------------------------------------------------------- main


def environment(flowc: list[str], runs: int) -> str:
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (
        f"flowc: {' '.join(flowc)}\n"
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"medians of {runs} run(s), whole processes, interleaved with their baselines\n"
        f"baselines: overhead = benchmarks/duckdb_baseline.py (same job: --rename pandas), "
        f"python blocks = "
        f"benchmarks/pandas_baseline.py, start-up = Mage as measured on this machine\n"
        f"peak RSS: max over the runs (floor: this script's own {floor:.0f} MB)"
    )


def compile_bytecode() -> None:
    """Write flowc's `.pyc` files, as installing it does: with PYTHONDONTWRITEBYTECODE set
    (some sandboxes set it) an editable install would compile flowc's ~40 modules from
    source in every timed run."""
    code = "import compileall, flowc, os; compileall.compile_dir(os.path.dirname(flowc.__file__))"
    run_child([sys.executable, "-q", "-c", code], REPO)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="benchmark `flowc run` (see README.md)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma list of benchmarks")
    parser.add_argument("--flowc", help="flowc executable (default: next to this Python)")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(BENCHES))
    if args.runs < 1 or unknown or not args.only:
        parser.error(f"need --runs >= 1 and benchmarks among {', '.join(BENCHES)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    flowc = find_flowc(args.flowc)
    if flowc is None:
        print("flowc not found next to this Python; pass --flowc PATH", file=sys.stderr)
        return 2
    rows: list[Row] = []
    try:
        compile_bytecode()
        for name in args.only:
            rows += BENCH[name](flowc, args.runs)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print()
    print(environment(flowc, args.runs))
    print()
    cells = [
        HEADER,
        *((r.bench, r.what, r.flowc, r.baseline, r.ratio, r.target, r.status) for r in rows),
    ]
    print(render_table(cells))
    return 0 if all(r.status != "FAIL" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
