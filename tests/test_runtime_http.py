"""`http(url, format)` sources against a real HTTP server on 127.0.0.1 that the tests start."""

from __future__ import annotations

import gzip
import http.server
import re
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from flowc.runtime.errors import DataError, StepError
from flowc.runtime.io.columns import Column
from flowc.runtime.io.download import read_http
from flowc_cli import flowc
from hypothesis import given, settings
from hypothesis import strategies as st

CSV = b"id,name\n1,a\n2,b\n"


class _Server:
    """Serves `routes` (path → body); the first `failures[path]` requests get a 503."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.failures: dict[str, int] = {}
        self.requests: list[str] = []
        handler = self._handler()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                if server.failures.get(self.path, 0) > 0:
                    server.failures[self.path] -= 1
                    self.send_error(503, "try again")
                    return
                body = server.routes.get(self.path)
                if body is None:
                    self.send_error(404, "not here")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def server() -> Iterator[_Server]:
    running = _Server()
    running.thread.start()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


COLUMNS = [Column("id", "int"), Column("name", "varchar")]


def test_csv_over_http(server: _Server) -> None:
    server.routes["/trips.csv"] = CSV
    table = read_http(server.url("/trips.csv"), "csv", columns=COLUMNS).read_all()
    assert table.column("name").to_pylist() == ["a", "b"]


def test_gzip_body_is_recognised_by_its_bytes(server: _Server) -> None:
    server.routes["/trips"] = gzip.compress(CSV)
    table = read_http(server.url("/trips"), "csv", columns=COLUMNS).read_all()
    assert table.num_rows == 2


def test_ndjson_over_http(server: _Server) -> None:
    server.routes["/r.json"] = b'{"id": 1, "name": "a"}\n{"id": 2}\n'
    table = read_http(server.url("/r.json"), "json", columns=COLUMNS).read_all()
    assert table.column("name").to_pylist() == ["a", None]


def test_a_server_failing_twice_then_succeeding_is_retried(server: _Server) -> None:
    server.routes["/flaky.csv"] = CSV
    server.failures["/flaky.csv"] = 2
    reader = read_http(server.url("/flaky.csv"), "csv", columns=COLUMNS, first_wait_s=0.01)
    assert reader.read_all().num_rows == 2
    assert server.requests == ["/flaky.csv"] * 3


def test_retries_give_up_after_the_attempts(server: _Server) -> None:
    server.routes["/down.csv"] = CSV
    server.failures["/down.csv"] = 10
    with pytest.raises(StepError, match="HTTP 503"):
        read_http(server.url("/down.csv"), "csv", attempts=3, first_wait_s=0.01)
    assert len(server.requests) == 3


def test_a_404_is_not_retried(server: _Server) -> None:
    with pytest.raises(StepError, match="HTTP 404"):
        read_http(server.url("/missing.csv"), "csv", first_wait_s=0.01)
    assert server.requests == ["/missing.csv"]


def test_a_refused_connection_fails_after_retries(tmp_path: Path) -> None:
    with pytest.raises(StepError, match="after 2 attempt"):
        read_http("http://127.0.0.1:9/x.csv", "csv", attempts=2, first_wait_s=0.01)


def test_a_bad_value_names_the_url(server: _Server) -> None:
    server.routes["/bad.csv"] = b"id,name\n1,a\nx,b\n"
    url = server.url("/bad.csv")
    with pytest.raises(DataError, match=re.escape(f"{url}, row 2 (line 3), column `id`")):
        read_http(url, "csv", columns=COLUMNS).read_all()


# --- bodies that do not arrive whole (issue 12, item 3) ----------------------------------------
#
# http.server cannot misbehave the ways a network or a broken server does, so this server
# writes its responses on raw sockets: the first `faulty` requests of a path get the fault,
# the later ones the whole body.

ROWS = b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(3000))
ROW_COUNT = 3000


def _head(length: int | None = None, chunked: bool = False) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Connection: close"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunks(body: bytes, size: int = 4096) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


GZIPPED = gzip.compress(ROWS)
ZSTD = pa.compress(ROWS, "zstd", asbytes=True)

# fault -> (what a faulty response sends, the whole body a good one sends)
FAULTS: dict[str, tuple[bytes, bytes]] = {
    "short body": (_head(len(ROWS)) + ROWS[: len(ROWS) // 2], ROWS),
    "chunk cut short": (_head(chunked=True) + _chunks(ROWS)[:5000], ROWS),
    "bad chunk size": (_head(chunked=True) + _chunks(ROWS[:4096]) + b"zz\r\n", ROWS),
    "no last chunk": (_head(chunked=True) + _chunks(ROWS), ROWS),
    "truncated gzip": (
        _head(len(GZIPPED) // 2) + GZIPPED[: len(GZIPPED) // 2],
        GZIPPED,
    ),
    "corrupt gzip": (_head(len(GZIPPED)) + _flip(GZIPPED, len(GZIPPED) - 6), GZIPPED),
    "truncated zstd": (_head(len(ZSTD) - 10) + ZSTD[:-10], ZSTD),
    "reset": (_head(len(ROWS)) + ROWS[:5000], ROWS),  # then a TCP reset
    "stall": (_head(len(ROWS)) + ROWS[:5000], ROWS),  # then silence past the timeout
}


class _RawServer:
    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.faulty: dict[str, int] = {}
        self.requests: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, fault: str) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}/{fault.replace(' ', '-')}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                data = connection.recv(65536)
                if not data:
                    return
                request += data
            fault = request.split(b" ")[1].decode().lstrip("/").replace("-", " ")
            self.requests.append(fault)
            bad, body = FAULTS[fault]
            if self.faulty.get(fault, 0) <= 0:
                connection.sendall(_head(len(body)) + body)
                return
            self.faulty[fault] -= 1
            connection.sendall(bad)
            if fault == "reset":
                linger = struct.pack("ii", 1, 0)
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            elif fault == "stall":
                self._stop.wait(5)

    def close(self) -> None:
        self._stop.set()
        self.socket.close()


@pytest.fixture
def raw() -> Iterator[_RawServer]:
    server = _RawServer()
    server.thread.start()
    yield server
    server.close()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_body_that_breaks_off_is_retried_until_whole(raw: _RawServer, fault: str) -> None:
    raw.faulty[fault] = 2
    url = raw.url(fault)
    table = read_http(url, "csv", columns=COLUMNS, first_wait_s=0.01, timeout_s=1).read_all()
    assert table.num_rows == ROW_COUNT
    assert raw.requests == [fault] * 3


CAUSES = {
    "short body": f"the body ended after {len(ROWS) // 2} of its {len(ROWS)} bytes",
    "chunk cut short": "the body broke off after 4096 bytes (a broken chunked encoding)",
    "bad chunk size": "the body broke off after 4096 bytes (a broken chunked encoding)",
    "no last chunk": f"the body broke off after {len(ROWS)} bytes (a broken chunked encoding)",
    "truncated gzip": "the gzip body is truncated or corrupt",
    "corrupt gzip": "the gzip body is truncated or corrupt",
    "truncated zstd": "the zstd body is truncated or corrupt",
    "reset": "the connection was reset halfway ([Errno 104] Connection reset by peer)",
    "stall": "timed out",
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_body_that_never_arrives_whole_fails_saying_why(raw: _RawServer, fault: str) -> None:
    raw.faulty[fault] = 10
    with pytest.raises(StepError) as caught:
        read_http(raw.url(fault), "csv", attempts=2, first_wait_s=0.01, timeout_s=1)
    assert f"failed after 2 attempt(s): {CAUSES[fault]}" in caught.value.message
    assert raw.requests == [fault] * 2


@settings(max_examples=40)
@given(cut=st.integers(min_value=0, max_value=len(GZIPPED) - 1), honest=st.booleans())
def test_no_prefix_of_a_gzip_body_is_ever_loaded(cut: int, honest: bool) -> None:
    """Cut anywhere, announced by the whole body's length or (honest, once its first two
    bytes say gzip) by its own: never rows."""
    server = _RawServer()
    server.thread.start()
    try:
        honest = honest and cut >= len(b"\x1f\x8b")
        length = cut if honest else len(GZIPPED)
        FAULTS["cut"] = (_head(length) + GZIPPED[:cut], GZIPPED)
        server.faulty["cut"] = 10
        with pytest.raises(StepError, match="failed after 1 attempt"):
            read_http(server.url("cut"), "csv", attempts=1, timeout_s=1)
    finally:
        FAULTS.pop("cut", None)
        server.close()


FLOW = """
pipeline h {{
  target = local
  retries = {retries}
  retry_delay = "10ms"
}}
source rows {{
  from = http("{url}", format = "csv")
  columns {{ id int  name varchar }}
}}
transform kept {{ sql = "SELECT * FROM rows" materialize = table }}
"""


@pytest.mark.parametrize(("retries", "attempts"), [(0, 4), (5, 6)])
def test_flowc_run_retries_under_the_nodes_policy_and_loads_nothing_partial(
    raw: _RawServer, tmp_path: Path, retries: int, attempts: int
) -> None:
    (tmp_path / "flow.toml").write_text(
        '[project]\nname = "h"\n[profiles.dev.local]\ntype = "duckdb"\npath = "w.duckdb"\n'
    )
    (tmp_path / "h.flow").write_text(FLOW.format(retries=retries, url=raw.url("short body")))
    raw.faulty["short body"] = 100
    done = flowc("run", "h.flow", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert f"failed after {attempts} attempt(s): the body ended after" in done.stderr
    assert raw.requests == ["short body"] * attempts
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        found = con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE NOT starts_with(table_schema, '_flowc_')"
        ).fetchall()
    assert found == []
    raw.faulty["short body"] = 1  # the next run: one broken body, then the whole one
    again = flowc("run", "h.flow", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM flowc_internal.kept").fetchall() == [(ROW_COUNT,)]
