"""`http(url, format)` sources against a real HTTP server on 127.0.0.1 that the tests start."""

from __future__ import annotations

import gzip
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flowc.runtime.columns import Column
from flowc.runtime.download import read_http
from flowc.runtime.errors import DataError, StepError

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
