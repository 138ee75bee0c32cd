"""docs/tutorial.md as a newcomer follows it: every shell block is run, in order, in one
folder that starts empty, and every file the text shows is written where it says, against a
local web server (standing in for the TLC's downloads) and a real PostgreSQL."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from pg_server import PgDatabase

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"
DOWNLOADS = "https://github.com/DataTalksClub/nyc-tlc-data/releases/download/green/"
FILE_HEADER = re.compile(r"# ([\w./-]+\.(?:toml|flow|py))\n")


def blocks() -> list[tuple[str, str]]:
    """The fenced blocks of the tutorial, in order: (language, text)."""
    return re.findall(r"^```(\w+)\n(.*?)^```$", TUTORIAL.read_text(), re.DOTALL | re.MULTILINE)


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A web server with the three monthly files, generated like the TLC's (December is
    November's file again: the generator writes two months)."""
    folder = tmp_path_factory.mktemp("tlc")
    generator = ROOT / "specs" / "green_taxi" / "generate_data.py"
    subprocess.run(
        [sys.executable, str(generator), "--rows", "2000", "--out", str(folder)],
        check=True,
        capture_output=True,
    )
    shutil.copy(folder / "green_tripdata_2020-11.csv.gz", folder / "green_tripdata_2020-12.csv.gz")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_every_block_of_the_tutorial_runs(downloads: str, pg: PgDatabase, tmp_path: Path) -> None:
    env = {
        **os.environ,
        **pg.env(),  # the environment wins over the tutorial's .env
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    cwd = tmp_path
    ran, written = [], []
    for language, text in blocks():
        header = FILE_HEADER.match(text)
        if header:  # a file the tutorial shows: written where it says
            path = cwd / header.group(1)
            path.write_text(text.replace(DOWNLOADS, downloads))
            written.append(header.group(1))
        elif language == "sh":
            script = f"set -euo pipefail\ncd {cwd}\n{text}\npwd >&3\n"
            done = subprocess.run(
                ["bash", "-c", f"exec 3>{tmp_path / '.cwd'}\n{script}"],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, f"{text}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr
            cwd = Path((tmp_path / ".cwd").read_text().strip())
            ran.append((text, done.stdout))
    assert written == ["flow.toml", "specs/green_taxi.flow", "blocks/snake.py"]
    assert len(ran) == 6
    project = tmp_path / "taxi"
    said = "\n".join(stdout for _, stdout in ran)
    assert said.count("checked 1 file: no problems found") == 2  # dev, then every profile
    assert said.count("succeeded: 12 steps") == 2  # on DuckDB, then on Postgres
    assert "green_taxi (dev)  0 6 * * *" in said
    assert "clean_trips.not_null(VendorID, lpep_pickup_date)" in said
    spec = (project / "specs" / "green_taxi.flow").read_text()
    assert spec.count("source ") == 1 and "columns = auto" not in spec  # one declared source

    with duckdb.connect(str(project / ".flowc" / "warehouse.duckdb"), read_only=True) as con:
        [(on_duckdb,)] = con.execute("SELECT count(*) FROM ny_taxi.green_taxi").fetchall()
    assert on_duckdb > 2000  # three months of 2000 rows, less the trips cleaned away
    [(on_postgres,)] = pg.query("SELECT count(*) FROM ny_taxi.green_taxi")
    assert on_postgres == on_duckdb
    columns = {
        row[0]
        for row in pg.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'green_taxi'"
        )
    }
    assert {"vendor_id", "pu_location_id", "lpep_pickup_date"} <= columns
    days = sorted(p.name for p in (project / "out" / "green_taxi").iterdir())
    assert days[0].startswith("lpep_pickup_date=2020-") and len(days) > 50
    assert pq.read_table(project / "out" / "green_taxi").num_rows == on_duckdb
    assert ".env" in (project / ".gitignore").read_text().split()
