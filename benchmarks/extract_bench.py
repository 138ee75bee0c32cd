"""Benchmark `http()` extracts: several gzip CSV URLs, and a paged JSON API, over a local
HTTP server (127.0.0.1), against reading the same data from local files; prints medians.

    python benchmarks/extract_bench.py [--runs 3] [--rows 300000] [--pages 200]

- `3 csv.gz URLs`: the green-taxi generator's files (Oct, Nov, and Nov again as Dec) served
  over HTTP and read with `read_http` (download, gunzip, parse, conform), against
  `read_csv` of the same three files on disk (the baseline: the HTTP part is the difference).
- `JSON API`: `--pages` pages of 500 records (5 columns, one nested object) paged by `next`
  links, read with `read_api`, against `json.loads` of the same bodies and `pa.Table
  .from_pylist` of their records (the baseline: what reading them by hand would cost).
"""

from __future__ import annotations

import argparse
import http.server
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from flowc.compiler.plan import Api
from flowc.runtime.io.api import read_api
from flowc.runtime.io.columns import Column
from flowc.runtime.io.download import Policy, Url, read_http
from flowc.runtime.io.sources import read_csv

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "specs" / "green_taxi" / "generate_data.py"
PAGE = 500
TLC = [
    Column("VendorID", "int"),
    Column("lpep_pickup_datetime", "timestamp"),
    Column("passenger_count", "int"),
    Column("trip_distance", "double"),
    Column("fare_amount", "decimal(10, 2)"),
    Column("total_amount", "decimal(10, 2)"),
]
API_COLUMNS = [
    Column("id", "bigint"),
    Column("name", "varchar"),
    Column("fare", "double"),
    Column("trip_zone", "varchar"),
    Column("trip_minutes", "int"),
]


def _server(routes: dict[str, bytes]) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd


def _median(runs: int, work: Callable[[], int]) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        rows = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), rows


def _pages(pages: int) -> dict[str, bytes]:
    routes = {}
    for n in range(pages):
        records = [
            {
                "id": n * PAGE + i,
                "name": f"r{i}",
                "fare": i * 0.5,
                "trip": {"zone": f"z{i % 7}", "minutes": i % 60},
            }
            for i in range(PAGE)
        ]
        more = f"/api?page={n + 1}" if n + 1 < pages else None
        routes[f"/api?page={n}"] = json.dumps({"data": records, "next": more}).encode()
    return routes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--pages", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="flowc-extract-bench-"))
    try:
        subprocess.run(
            [sys.executable, str(GENERATOR), "--rows", str(args.rows), "--out", str(folder)],
            check=True,
            capture_output=True,
        )
        files = sorted(folder.glob("*.csv.gz"))
        shutil.copy(files[-1], folder / "green_tripdata_2020-12.csv.gz")
        files = sorted(folder.glob("*.csv.gz"))
        routes = {f"/{f.name}": f.read_bytes() for f in files}
        routes |= _pages(args.pages)
        httpd = _server(routes)
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        urls = [Url(f"{base}/{f.name}", f.name) for f in files]

        def over_http() -> int:
            return read_http(urls, "csv", columns=TLC).read_all().num_rows

        def from_disk() -> int:
            return read_csv(folder, "*.csv.gz", columns=TLC).read_all().num_rows

        api = Api(records="data", paginate="next", next="next")
        first = Url(f"{base}/api?page=0", "/api?page=0")

        def api_read() -> int:
            policy = Policy()
            return read_api([first], api, columns=API_COLUMNS, policy=policy).read_all().num_rows

        bodies = [routes[f"/api?page={n}"] for n in range(args.pages)]

        def by_hand() -> int:
            rows = [r for b in bodies for r in json.loads(b)["data"]]
            return pa.Table.from_pylist(rows).num_rows

        print(f"{'case':<28} {'rows':>9} {'flowc s':>9} {'baseline s':>11} {'ratio':>6}")
        for name, mine, baseline in (
            ("3 csv.gz URLs vs disk", over_http, from_disk),
            (f"JSON API {args.pages} pages vs loads", api_read, by_hand),
        ):
            took, rows = _median(args.runs, mine)
            base_took, _ = _median(args.runs, baseline)
            ratio = took / base_took
            print(f"{name:<28} {rows:>9,} {took:>9.3f} {base_took:>11.3f} {ratio:>6.2f}")
        httpd.shutdown()
        return 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
