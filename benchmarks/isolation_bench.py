"""Benchmark Python blocks in a worker process (`isolate = true`) against in-process; one table.

    python benchmarks/isolation_bench.py [--runs 7] [--rows 1000000,4000000] [--steps 20]

What it measures (medians of `--runs`), in this process unless said otherwise:

- per step: one call of a transform that returns its input (100 rows), in flowc's process
  (`pyblocks.run_transform`) and in a worker (`isolated.run_block`: a fork from the fork
  server, the block loaded there, the rows through Arrow IPC files in shared memory);
- data: the same call on `--rows` rows (an int64, a float64 and a short string column) — the
  cost of handing rows over and back (written once each way, memory-mapped on the other side);
- the fork server's start: the first isolated call of a process (it imports pyarrow, pandas
  and flowc's runtime once), measured in a fresh child process each run;
- whole runs: `flowc run` of a chain of `--steps` Python transforms, in-process and with
  `isolate = true` on the pipeline, as processes (wall clock).

See benchmarks/README.md for the numbers and the decision they support.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
from check_bench import find_flowc, render_table
from flowc.runtime.usercode import isolated, pyblocks
from run_bench import run_child

WORK = Path(__file__).resolve().parent / ".work" / "isolation"
BLOCK = """
import pyarrow as pa


def load():
    return pa.table({"id": pa.array(range(100), pa.int64())})


def same(rows: pa.Table) -> pa.Table:
    return rows
"""
FLOW_TOML = '[project]\nname = "iso"\n[profiles.dev.local]\ntype = "duckdb"\npath = "w.duckdb"\n'
FIRST_CALL = """
import sys, time
from pathlib import Path
import pyarrow as pa
from flowc.runtime import isolated
rows = pa.table({"id": [1]})
given = {"rows": pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches())}
started = time.perf_counter()
isolated.run_block(Path(sys.argv[1]), "blocks/b.py:same", kind="transform", inputs=given)
print(time.perf_counter() - started)
"""


def project() -> Path:
    if WORK.exists():
        shutil.rmtree(WORK)
    (WORK / "blocks").mkdir(parents=True)
    (WORK / "blocks" / "b.py").write_text(BLOCK)
    (WORK / "flow.toml").write_text(FLOW_TOML)
    return WORK


def chain(root: Path, steps: int, isolate: bool) -> str:
    name = f"chain_{'iso' if isolate else 'inproc'}.flow"
    lines = [f"pipeline p {{ target = local  isolate = {'true' if isolate else 'false'} }}"]
    lines.append('source t0 { python = "blocks/b.py:load" }')
    for n in range(1, steps + 1):
        lines.append(f'transform t{n} {{ python = "blocks/b.py:same"  inputs = [t{n - 1}] }}')
    lines.append(f'transform last {{ sql = "SELECT count(*) AS n FROM t{steps}" }}')
    (root / name).write_text("\n".join(lines) + "\n")
    return name


def table(rows: int) -> pa.Table:
    ids = pa.array(range(rows), pa.int64())
    return pa.table(
        {"id": ids, "x": pa.compute.multiply(ids, 0.5), "s": pa.compute.cast(ids, pa.string())}
    )


def reader(data: pa.Table) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(data.schema, data.to_batches())


def timed(call: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def in_process(root: Path, data: pa.Table) -> Callable[[], object]:
    return lambda: pyblocks.run_transform(
        root, "blocks/b.py:same", {"rows": reader(data)}
    ).read_all()


def in_worker(root: Path, data: pa.Table) -> Callable[[], object]:
    def call() -> object:
        out = isolated.run_block(
            root, "blocks/b.py:same", kind="transform", inputs={"rows": reader(data)}
        )
        return out.read_all()

    return call


def first_call(root: Path, runs: int) -> float:
    samples = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", FIRST_CALL, str(root)],
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def whole_runs(flowc: list[str], root: Path, steps: int, runs: int) -> tuple[float, float]:
    specs = {isolate: chain(root, steps, isolate) for isolate in (False, True)}
    walls: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(runs):
        for isolate, spec in specs.items():
            for state in (root / ".flowc" / "state.db", root / "w.duckdb"):
                state.unlink(missing_ok=True)
            walls[isolate].append(run_child([*flowc, "run", spec], root).seconds)
    return statistics.median(walls[False]), statistics.median(walls[True])


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rows", default="1000000,4000000")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--flowc", help="flowc executable (default: next to this Python)")
    args = parser.parse_args(argv)
    flowc = find_flowc(args.flowc)
    if flowc is None:
        print("flowc not found next to this Python; pass --flowc PATH", file=sys.stderr)
        return 2
    root = project()
    small = table(100)
    in_worker(root, small)()  # the fork server starts here, not in a timed call
    rows_out: list[tuple[str, ...]] = [("measure", "in-process", "isolated", "difference")]
    here, there = (
        timed(in_process(root, small), args.runs),
        timed(in_worker(root, small), args.runs),
    )
    rows_out.append(("one step, 100 rows", ms(here), ms(there), ms(there - here)))
    for count in (int(n) for n in args.rows.split(",")):
        data = table(count)
        megabytes = data.nbytes / 1e6
        here = timed(in_process(root, data), args.runs)
        there = timed(in_worker(root, data), args.runs)
        per_100 = (there - here) / megabytes * 100
        label = f"one step, {count:,} rows ({megabytes:.0f} MB)"
        rows_out.append((label, ms(here), ms(there), f"{ms(there - here)} ({ms(per_100)}/100 MB)"))
    start = first_call(root, max(3, args.runs // 2))
    rows_out.append(("fork server start (first call)", "-", ms(start), ms(start)))
    plain, isolated_wall = whole_runs(flowc, root, args.steps, args.runs)
    per_step = (isolated_wall - plain) / args.steps
    label = f"flowc run, {args.steps} Python steps"
    rows_out.append((label, f"{plain:.2f} s", f"{isolated_wall:.2f} s", f"{ms(per_step)}/step"))
    through = isolated._shared_memory() or tempfile.gettempdir()
    print(f"medians of {args.runs} runs; rows handed over through {through}")
    print(render_table(rows_out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
