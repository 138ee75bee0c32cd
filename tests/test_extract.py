"""`http(...)` over several URLs, URL templates, and JSON APIs that page, throttle and fail,
against a real HTTP server on 127.0.0.1 that the tests start; specs run with `flowc run`."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
from flowc.compiler.plan import Api
from flowc.runtime.errors import StepError
from flowc.runtime.io.api import next_link, read_api
from flowc.runtime.io.columns import Column
from flowc.runtime.io.download import Policy, Url, expand, retry_after_s
from flowc_cli import flowc
from hypothesis import given, settings
from hypothesis import strategies as st

Reply = tuple[int, dict[str, str], bytes]
Route = Callable[[dict[str, str], dict[str, str]], Reply]


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


@dataclass
class _Server:
    """Answers each path with its route (query, headers -> status, headers, body)."""

    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def paths(self) -> list[str]:
        return [
            s.path + ("?" + urllib.parse.urlencode(s.query) if s.query else "") for s in self.seen
        ]

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                headers = dict(self.headers.items())
                server.seen.append(Seen(parts.path, query, headers, time.monotonic()))
                route = server.routes.get(parts.path)
                status, extra, body = route(query, headers) if route else (404, {}, b"")
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
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


def _ok(body: object, **headers: str) -> Reply:
    return 200, headers, json.dumps(body).encode()


def _static(body: bytes) -> Route:
    return lambda query, headers: (200, {}, body)


def _failing(times: int, status: int, route: Route, **headers: str) -> Route:
    """`route`, after `times` answers of `status` (with `headers`)."""
    left = [times]

    def answer(query: dict[str, str], request: dict[str, str]) -> Reply:
        if left[0] > 0:
            left[0] -= 1
            return status, dict(headers), b"busy"
        return route(query, request)

    return answer


ROWS = [{"id": i, "trip": {"fare": i * 1.5, "zone": f"z{i}"}, "tags": ["a"]} for i in range(7)]
COLUMNS = [Column("id", "int"), Column("trip_fare", "double"), Column("trip_zone", "varchar")]
FAST = Policy(attempts=4, first_wait_s=0.01)


def _api(url: str, api: Api, policy: Policy = FAST) -> list[dict[str, object]]:
    reader = read_api([Url(url, url)], api, columns=COLUMNS, policy=policy)
    rows: list[dict[str, object]] = reader.read_all().to_pylist()
    return rows


EXPECTED = [{"id": i, "trip_fare": i * 1.5, "trip_zone": f"z{i}"} for i in range(7)]


# --- pagination -----------------------------------------------------------------------------


def test_next_link_in_the_body_is_followed_to_the_last_page(server: _Server) -> None:
    def page(query: dict[str, str], headers: dict[str, str]) -> Reply:
        start = int(query.get("from", "0"))
        nxt = f"/rides?from={start + 3}" if start + 3 < len(ROWS) else None
        return _ok({"data": {"items": ROWS[start : start + 3]}, "links": {"next": nxt}})

    server.routes["/rides"] = page
    api = Api(records="data.items", paginate="next", next="links.next")
    assert _api(server.url("/rides"), api) == EXPECTED
    assert server.paths() == ["/rides", "/rides?from=3", "/rides?from=6"]


def test_link_header_next_is_followed(server: _Server) -> None:
    def page(query: dict[str, str], headers: dict[str, str]) -> Reply:
        n = int(query.get("page", "1"))
        link = {"Link": f'<{server.url("/rides")}?page={n + 1}>; rel="next"'} if n < 3 else {}
        return _ok(ROWS[(n - 1) * 3 : n * 3], **link)

    server.routes["/rides"] = page
    assert _api(server.url("/rides"), Api(records="", paginate="link")) == EXPECTED
    assert len(server.seen) == 3


def test_cursor_is_sent_until_the_body_has_none(server: _Server) -> None:
    def page(query: dict[str, str], headers: dict[str, str]) -> Reply:
        start = int(query.get("after", "0"))
        more = start + 4 < len(ROWS)
        return _ok(
            {"rows": ROWS[start : start + 4], "meta": {"next": str(start + 4) if more else ""}}
        )

    server.routes["/rides"] = page
    api = Api(records="rows", paginate="cursor", cursor="meta.next", cursor_param="after")
    assert _api(server.url("/rides?key=1"), api) == EXPECTED
    assert server.paths() == ["/rides?key=1", "/rides?key=1&after=4"]


def test_offset_pages_until_a_short_page(server: _Server) -> None:
    def page(query: dict[str, str], headers: dict[str, str]) -> Reply:
        offset, limit = int(query["skip"]), int(query["limit"])
        return _ok({"rows": ROWS[offset : offset + limit]})

    server.routes["/rides"] = page
    api = Api(records="rows", paginate="offset", offset_param="skip", page_size=3)
    assert _api(server.url("/rides"), api) == EXPECTED
    assert [s.query for s in server.seen] == [
        {"skip": "0", "limit": "3"},
        {"skip": "3", "limit": "3"},
        {"skip": "6", "limit": "3"},
    ]


def test_page_numbers_until_an_empty_page(server: _Server) -> None:
    def page(query: dict[str, str], headers: dict[str, str]) -> Reply:
        n = int(query["page"])
        return _ok({"rows": ROWS[(n - 1) * 5 : n * 5]})

    server.routes["/rides"] = page
    assert _api(server.url("/rides"), Api(records="rows", paginate="page")) == EXPECTED
    assert [s.query["page"] for s in server.seen] == ["1", "2", "3"]


def test_a_server_that_pages_in_a_circle_fails_instead_of_looping(server: _Server) -> None:
    server.routes["/rides"] = lambda q, h: _ok({"rows": ROWS[:1], "next": "/rides"})
    api = Api(records="rows", paginate="next", next="next")
    with pytest.raises(StepError, match="pages in a circle"):
        _api(server.url("/rides"), api)


def test_records_that_are_no_list_fail_naming_the_path(server: _Server) -> None:
    server.routes["/rides"] = lambda q, h: _ok({"rows": {"id": 1}})
    with pytest.raises(StepError, match='`records = "rows"` is a dict there'):
        _api(server.url("/rides"), Api(records="rows"))


# --- throttling and transient failures ------------------------------------------------------


def test_429_waits_as_long_as_retry_after_says(server: _Server) -> None:
    route = _failing(1, 429, lambda q, h: _ok({"rows": ROWS}), **{"Retry-After": "1"})
    server.routes["/rides"] = route
    assert _api(server.url("/rides"), Api(records="rows")) == EXPECTED
    first, second = server.seen
    assert second.at - first.at >= 1.0  # the exponential wait alone would be 0.01 s


def test_503_with_retry_after_0_and_transient_500s_are_retried(server: _Server) -> None:
    route = _failing(2, 500, lambda q, h: _ok({"rows": ROWS}))
    server.routes["/rides"] = _failing(1, 503, route, **{"Retry-After": "0"})
    assert _api(server.url("/rides"), Api(records="rows")) == EXPECTED
    assert len(server.seen) == 4


def test_a_page_that_keeps_failing_fails_after_the_policys_attempts(server: _Server) -> None:
    server.routes["/rides"] = _failing(99, 502, lambda q, h: _ok({"rows": ROWS}))
    with pytest.raises(StepError, match="HTTP 502"):
        _api(server.url("/rides"), Api(records="rows"), Policy(attempts=3, first_wait_s=0.01))
    assert len(server.seen) == 3


def test_retry_after_reads_seconds_and_http_dates() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("3") == 3.0
    assert retry_after_s("Thu, 01 Jan 2026 12:00:05 GMT", now) == 5.0
    assert retry_after_s("100000") == 300.0
    assert retry_after_s("soon") is None
    assert next_link('<https://x/a?p=2>; rel="next"') == "https://x/a?p=2"
    assert next_link('<https://x/a?p=9>; rel="last"') is None


def test_expand_fills_params_and_keeps_secrets_out_of_the_shown_url() -> None:
    url = expand("https://x/{month}?token=${TOKEN}", {"month": "10"}, {"TOKEN": "hunter2"})
    assert (url.actual, url.shown) == ("https://x/10?token=hunter2", "https://x/10?token=${TOKEN}")
    assert url.masked("https://x/11?token=hunter2") == "https://x/11?token=${TOKEN}"
    with pytest.raises(StepError, match="`TOKEN` is not set") as raised:
        expand("https://x/?token=${TOKEN}", {}, {})
    assert "hunter2" not in str(raised.value)


# --- whole specs ----------------------------------------------------------------------------

TOML = '[project]\nname = "h"\n[profiles.dev.local]\ntype = "duckdb"\npath = "w.duckdb"\n'


def _project(tmp_path: Path, flow: str) -> Path:
    (tmp_path / "flow.toml").write_text(TOML)
    (tmp_path / "h.flow").write_text(flow)
    return tmp_path


def _rows(tmp_path: Path, query: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        return con.execute(query).fetchall()


MONTHS = """
pipeline h {{
  target = local
  retry_delay = "10ms"
  params {{ year varchar = "2020" }}
}}
source trips {{
  from = http("{url}/trips_{{year}}-{{month}}.csv.gz", format = "csv",
              each = {{ month = ["10", "11", "12"] }})
  columns {{ id int  month varchar }}
}}
transform kept {{ sql = "SELECT * FROM trips" materialize = table }}
"""


def _month(month: str) -> bytes:
    return gzip.compress(f"id,month\n1,{month}\n2,{month}\n".encode())


def test_a_url_template_loads_every_month_into_one_table(server: _Server, tmp_path: Path) -> None:
    for month in ("10", "11", "12"):
        server.routes[f"/trips_2020-{month}.csv.gz"] = _static(_month(month))
    _project(tmp_path, MONTHS.format(url=server.url("")))
    done = flowc("run", "h.flow", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    months = "SELECT month, count(*) FROM flowc_internal.kept GROUP BY month ORDER BY month"
    found = _rows(tmp_path, months)
    assert found == [("10", 2), ("11", 2), ("12", 2)]
    assert [s.path for s in server.seen] == [
        "/trips_2020-10.csv.gz",
        "/trips_2020-11.csv.gz",
        "/trips_2020-12.csv.gz",
    ]


def test_a_parameter_in_the_url_comes_from_the_run(server: _Server, tmp_path: Path) -> None:
    for month in ("10", "11", "12"):
        server.routes[f"/trips_2021-{month}.csv.gz"] = _static(_month(month))
    _project(tmp_path, MONTHS.format(url=server.url("")))
    done = flowc("run", "h.flow", "--param", "year=2021", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {s.path[7:11] for s in server.seen} == {"2021"}


def test_one_failing_url_loads_nothing(server: _Server, tmp_path: Path) -> None:
    server.routes["/trips_2020-10.csv.gz"] = _static(_month("10"))
    server.routes["/trips_2020-12.csv.gz"] = _static(_month("12"))  # 11 is missing: a 404
    _project(tmp_path, MONTHS.format(url=server.url("")))
    done = flowc("run", "h.flow", cwd=tmp_path)
    assert done.returncode == 1
    assert "trips_2020-11.csv.gz failed: HTTP 404" in done.stderr
    tables = (
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema IN ('main', 'flowc_internal')"
    )
    assert _rows(tmp_path, tables) == []


def test_a_list_of_urls_is_read_in_order(server: _Server, tmp_path: Path) -> None:
    server.routes["/a.csv"] = _static(b"id,month\n1,a\n")
    server.routes["/b.csv"] = _static(b"id,month\n2,b\n")
    flow = MONTHS.format(url="").replace(
        'http("/trips_{year}-{month}.csv.gz", format = "csv",\n'
        '              each = { month = ["10", "11", "12"] })',
        f'http(["{server.url("/a.csv")}", "{server.url("/b.csv")}"])',
    )
    _project(tmp_path, flow)
    done = flowc("run", "h.flow", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    kept = "SELECT id, month FROM flowc_internal.kept ORDER BY id"
    assert _rows(tmp_path, kept) == [(1, "a"), (2, "b")]


API = """
pipeline h {{ target = local  retry_delay = "10ms" }}
source rides {{
  from = http("{url}/rides?api_key=${{API_KEY}}", format = "json", records = "data",
              paginate = "next", next = "next",
              headers = {{ Authorization = "Bearer ${{API_TOKEN}}" }})
  columns {{ id int  trip_fare double  trip_zone varchar }}
}}
transform kept {{ sql = "SELECT * FROM rides" materialize = table }}
"""


def test_an_api_spec_pages_authenticates_and_never_shows_its_secrets(
    server: _Server, tmp_path: Path
) -> None:
    def page(query: dict[str, str], headers: dict[str, str]) -> Reply:
        if headers.get("Authorization") != "Bearer t0ken-xyz" or query.get("api_key") != "k3y-abc":
            return 401, {}, b"no"
        start = int(query.get("from", "0"))
        nxt = f"/rides?api_key={query['api_key']}&from={start + 4}" if start < 4 else None
        return _ok({"data": ROWS[start : start + 4], "next": nxt})

    server.routes["/rides"] = _failing(1, 429, page, **{"Retry-After": "0"})
    _project(tmp_path, API.format(url=server.url("")))
    (tmp_path / ".env").write_text("API_TOKEN=t0ken-xyz\n")
    env = {"API_KEY": "k3y-abc"}
    done = flowc("run", "h.flow", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    kept = "SELECT count(*), sum(trip_fare) FROM flowc_internal.kept"
    assert _rows(tmp_path, kept) == [(7, 31.5)]
    plan = flowc("compile", "h.flow", "--output", str(tmp_path / "out"), cwd=tmp_path, env=env)
    assert plan.returncode == 0, plan.stderr

    def second_page_down(query: dict[str, str], headers: dict[str, str]) -> Reply:
        return (500, {}, b"down") if "from" in query else page(query, headers)

    server.routes["/rides"] = second_page_down  # its URL, from the server, echoes the key
    failed = flowc("run", "h.flow", cwd=tmp_path, env=env)
    assert failed.returncode == 1
    assert "/rides?api_key=${API_KEY}&from=4 failed" in failed.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".env"]
    written = [p.read_bytes().decode(errors="replace") for p in files]
    for text in [done.stdout, done.stderr, failed.stdout, failed.stderr, *written]:
        assert "t0ken-xyz" not in text
        assert "k3y-abc" not in text


# --- one column list for several nodes ------------------------------------------------------

SHARED = """
pipeline h { target = local }

schema people {
  columns {
    id    int not null
    name  varchar
  }
}

source a {
  from    = csv("data/a.csv")
  columns = people
}

source b {
  from    = csv("data/b.csv")
  columns = people
}

transform both {
  sql = "SELECT * FROM a UNION ALL SELECT * FROM b"
  materialize = table
}
"""


def test_a_schema_declared_once_types_every_source_that_names_it(tmp_path: Path) -> None:
    _project(tmp_path, SHARED)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("name,id\nx,1\n")
    (tmp_path / "data" / "b.csv").write_text("id,name,extra\n2,y,z\n")
    done = flowc("run", "h.flow", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    both = 'SELECT * FROM flowc_internal."both" ORDER BY id'
    assert _rows(tmp_path, both) == [(1, "x"), (2, "y")]
    types = (
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'b' AND table_schema = 'flowc_internal' ORDER BY ordinal_position"
    )
    assert _rows(tmp_path, types) == [("INTEGER",), ("VARCHAR",)]
    (tmp_path / "data" / "b.csv").write_text("id,name\n,y\n")  # `not null` holds for b too
    failed = flowc("run", "h.flow", cwd=tmp_path)
    assert failed.returncode == 1
    assert "data/b.csv" in failed.stderr and "id" in failed.stderr


def test_a_python_transform_takes_its_columns_from_a_schema(tmp_path: Path) -> None:
    flow = SHARED.replace(
        'transform both {\n  sql = "SELECT * FROM a UNION ALL SELECT * FROM b"\n',
        'transform both {\n  python = "blocks/b.py:both"\n  inputs = [a, b]\n  columns = people\n',
    )
    _project(tmp_path, flow)
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "b.py").write_text(
        "import pandas as pd\n\ndef both(a, b):\n    return pd.concat([a, b])\n"
    )
    done = flowc("compile", "h.flow", "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    plan = json.loads(next((tmp_path / "out").rglob("plan.json")).read_text())
    [step] = [s for s in plan["steps"] if s["id"] == "both.py"]
    assert [(c["name"], c["type"]) for c in step["outputs"][0]["columns"]] == [
        ("id", "int"),
        ("name", "varchar"),
    ]


# --- every record once, in order, whatever the paging ---------------------------------------


def _paged(total: int, size: int, kind: str) -> Route:
    """An API of `total` records `{"id": i}` handing out `size` at a time, paging by `kind`."""
    records = [{"id": i} for i in range(total)]

    def answer(query: dict[str, str], headers: dict[str, str]) -> Reply:
        if kind == "offset":
            start = int(query["offset"])
        elif kind == "page":
            start = (int(query["page"]) - 1) * size
        else:  # next, cursor: where the previous page ended
            start = int(query.get("at", "0"))
        end = start + size
        more = end < total
        body = {
            "rows": records[start:end],
            "next": f"/api?at={end}" if more and kind == "next" else None,
            "cursor": str(end) if more and kind == "cursor" else None,
        }
        return _ok(body)

    return answer


@settings(max_examples=40, deadline=None)
@given(
    total=st.integers(0, 40),
    size=st.integers(1, 9),
    kind=st.sampled_from(["next", "cursor", "offset", "page"]),
)
def test_every_record_is_read_once_in_order_whatever_the_paging(
    total: int, size: int, kind: str
) -> None:
    running = _Server()
    running.thread.start()
    try:
        running.routes["/api"] = _paged(total, size, kind)
        api = Api(
            records="rows",
            paginate=kind,  # type: ignore[arg-type]
            next="next",
            cursor="cursor",
            cursor_param="at",
            page_size=size,
        )
        url = running.url("/api")
        reader = read_api([Url(url, url)], api, columns=[Column("id", "int")], policy=FAST)
        assert reader.read_all().column("id").to_pylist() == list(range(total))
    finally:
        running.httpd.shutdown()
        running.httpd.server_close()


def test_explain_says_how_many_urls_a_source_reads(tmp_path: Path) -> None:
    _project(tmp_path, MONTHS.format(url="https://example.org"))
    done = flowc("explain", "h.flow", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "reads http https://example.org/trips_{year}-10.csv.gz and 2 more URL(s)" in done.stdout
