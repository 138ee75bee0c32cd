"""Benchmark the peak memory of a long `flowc run` (DuckDB): 2,000 nodes over 1,000 rows.

    python benchmarks/memory_bench.py [--runs 3] [--nodes 2000] [--rows 1000]
        [--flowc PATH] [--compare PATH]

Generates `benchmarks/.work/memory_<nodes>_<rows>/` (reused while its stamp matches): a
project of 20 CSV sources of `rows` rows, SQL transforms (filters, 1:1 joins, windows, grouped
unions; every one keeps at most `rows` rows, so the data stays small and what grows is the node
count), `expect` checks on every tenth transform and one CSV sink; nodes in all: `nodes`. Then
runs `flowc run` on it in a child process, from a fresh `.flowc/` each time, and reads the
child's peak RSS from the rusage `os.wait4` returns for it. `--compare PATH` runs another flowc
executable too (e.g. one installed from main), interleaved; the table shows medians. Exit
status: 0 when flowc's median peak is under the target, 1 otherwise. See README.md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from check_bench import find_flowc, render_table
from run_bench import BenchError, Command, measure

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
SPEC = "specs/memory.flow"
STAMP = ".memory_stamp.json"
VERSION = 1  # bump when the generated project changes
SOURCES = 20
TARGET_MB = 300.0
COLUMNS = "id, grp, amount, label, day"
LABELS = ("alpha", "beta", "gamma", "delta", "it's", "back\\slash")

FLOW_TOML = """\
[project]
name = "memory_bench"
default_profile = "dev"

[profiles.dev.local]
type = "duckdb"
path = ".flowc/local.duckdb"
"""

SOURCE = """\
source src_{i} {{
  from = csv("data/src_{i}.csv", header = true)
  columns {{
    id      bigint  not null
    grp     int     not null
    amount  double
    label   varchar
    day     date
  }}
}}
"""

TEMPLATES = (
    "SELECT id, grp, amount * 1.01 AS amount, label, day FROM {a} WHERE amount >= 0",
    "SELECT a.id, a.grp, a.amount + b.amount AS amount, a.label, b.day\n"
    "    FROM {a} AS a JOIN {b} AS b ON a.id = b.id",
    "SELECT id, grp, sum(amount) OVER (PARTITION BY grp ORDER BY id) AS amount, label, day\n"
    "    FROM {a}",
    "SELECT id, grp, max(amount) AS amount, min(label) AS label, min(day) AS day\n"
    "    FROM (SELECT {columns} FROM {a} UNION ALL SELECT {columns} FROM {b}) AS u\n"
    "    GROUP BY id, grp",
)

CHECKS = """\
  expect {
    not_null(id)
    unique(id)
    accepted_values(label, ["alpha", "beta", "gamma", "delta", "it's", "back\\\\slash"])
  }
"""


def spec_text(nodes: int, seed: int) -> str:
    rng = random.Random(seed)
    names = [f"src_{i}" for i in range(SOURCES)]
    parts = ['pipeline memory {\n  dialect = "duckdb"\n}\n']
    parts += [SOURCE.format(i=i) for i in range(SOURCES)]
    for index in range(nodes - SOURCES - 1):
        recent = names[-50:]
        a, b = rng.choice(recent), rng.choice(names)
        sql = TEMPLATES[index % len(TEMPLATES)].format(a=a, b=b, columns=COLUMNS)
        name = f"t_{index:04d}"
        checks = CHECKS if index % 10 == 0 else ""
        parts.append(f'transform {name} {{\n  sql = """\n    {sql}\n  """\n{checks}}}\n')
        names.append(name)
    parts.append(f'sink last {{\n  input = {names[-1]}\n  to = csv("out/last.csv")\n}}\n')
    return "\n".join(parts)


def csv_text(rows: int, rng: random.Random) -> str:
    lines = ["id,grp,amount,label,day"]
    for row in range(rows):
        label = rng.choice(LABELS).replace('"', '""')
        day = f"2020-{1 + row % 12:02d}-{1 + row % 28:02d}"
        lines.append(f'{row + 1},{row % 10},{rng.uniform(0, 900):.2f},"{label}",{day}')
    return "\n".join(lines) + "\n"


def project(nodes: int, rows: int, seed: int) -> Path:
    """The generated project (reused while its stamp matches)."""
    root = WORK / f"memory_{nodes}_{rows}"
    wanted = {"version": VERSION, "nodes": nodes, "rows": rows, "seed": seed}
    stamp = root / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "specs").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "flow.toml").write_text(FLOW_TOML)
    (root / SPEC).write_text(spec_text(nodes, seed))
    rng = random.Random(seed + 1)
    for i in range(SOURCES):
        (root / "data" / f"src_{i}.csv").write_text(csv_text(rows, rng))
    stamp.write_text(json.dumps(wanted) + "\n")
    return root


def fresh(root: Path) -> Command:
    def clear() -> None:
        shutil.rmtree(root / ".flowc", ignore_errors=True)
        shutil.rmtree(root / "out", ignore_errors=True)

    return Command([], root, before=clear)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flowc", default=None, help="the flowc executable to measure")
    parser.add_argument("--compare", default=None, help="another flowc executable, e.g. main's")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    flowc = find_flowc(args.flowc)
    if flowc is None:
        print("no flowc executable found: pass --flowc", file=sys.stderr)
        return 2
    root = project(args.nodes, args.rows, args.seed)
    print(f"memory: flowc run, {args.nodes:,} nodes over {args.rows:,} rows ({root}) ...")
    executables = {"flowc": flowc, **({"compare": [args.compare]} if args.compare else {})}
    commands = {
        name: Command([*exe, "run", SPEC], root, before=fresh(root).before)
        for name, exe in executables.items()
    }
    try:
        measured = measure(args.runs, commands)
    except BenchError as error:
        print(error, file=sys.stderr)
        return 1
    rows = [("flowc", "median peak MB", "peaks MB", "median s", "target", "status")]
    for name, found in measured.items():
        peaks = [s.peak_mb for s in found.samples]
        median = statistics.median(peaks)
        status = ("PASS" if median < TARGET_MB else "FAIL") if name == "flowc" else "-"
        shown = " ".join(executables[name]) if name == "compare" else "this tree"
        rows.append(
            (
                shown,
                f"{median:.0f}",
                " ".join(f"{p:.0f}" for p in peaks),
                f"{found.seconds:.1f}",
                f"< {TARGET_MB:.0f}",
                status,
            )
        )
    print(render_table(rows))
    median = statistics.median(s.peak_mb for s in measured["flowc"].samples)
    return 0 if median < TARGET_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
