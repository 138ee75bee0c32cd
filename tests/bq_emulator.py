"""A real BigQuery endpoint for the tests: the `local-bigquery` emulator, provisioned as
/work/shared/tools/bigquery-emulator.md describes, started once per test session.

Provisioning (once per machine, cached): the emulator needs Python >= 3.13 (found at
`$FLOWC_PY313`, else pyenv's 3.13.0), in its own virtualenv under
`~/.cache/flowc/bigquery-emulator/<versions key>/`, with DuckDB pinned to 1.5.5 (the version
that has offline extension wheels) and those extensions copied into a HOME made for the
emulator, so that it never downloads an extension nor touches the user's own `~/.duckdb`.

The cache entry is built in a temporary folder next to it and renamed into place when
complete, under a file lock: a half-built entry (a killed install) is never used, and two
sessions provisioning at once build it once. The renamed virtualenv's console scripts would
point at the temporary path, so the emulator is started through its `python` (`-c`).

Where it cannot be provisioned (no Python 3.13, no package index) `Unavailable` says why, and
the `bigquery_emulator` fixture skips the tests that use it with that reason.

    python tests/bq_emulator.py    # provision (timed) and check that it starts
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LOCAL_BIGQUERY = "0.4.0"
DUCKDB = "1.5.5"
EXTENSIONS = ("icu", "ducklake", "json", "parquet", "spatial")
KEY = f"local-bigquery-{LOCAL_BIGQUERY}-duckdb-{DUCKDB}-py313"
PROJECT = "local"
READY = "ready"  # the marker written last, inside the entry, before the rename
INSTALL_TIMEOUT_S = 900
START_TIMEOUT_S = 60
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Unavailable(Exception):
    """The emulator cannot be provisioned or started here; the message says why."""


@dataclass(frozen=True)
class Emulator:
    endpoint: str  # http://127.0.0.1:<port>
    project: str
    pid: int


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "flowc" / "bigquery-emulator"


def find_python() -> Path:
    """Python 3.13: `$FLOWC_PY313`, else pyenv's 3.13.0 (the bare `python3.13` shim refuses
    to run unless pyenv has that version selected)."""
    given = os.environ.get("FLOWC_PY313")
    if given:
        candidates = [Path(given)]
    else:
        candidates = []
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                ["pyenv", "root"], capture_output=True, text=True, timeout=30, check=True
            )
            candidates.append(Path(done.stdout.strip()) / "versions/3.13.0/bin/python3.13")
        candidates.append(Path.home() / ".pyenv/versions/3.13.0/bin/python3.13")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise Unavailable(f"the BigQuery emulator needs Python 3.13 (set FLOWC_PY313); not at {looked}")


def provision() -> Path:
    """The cached entry (a folder with `venv/` and `home/`), built first if missing."""
    root = cache_root()
    entry = root / KEY
    if (entry / READY).is_file():
        return entry
    python = find_python()
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{KEY}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent session builds it; we wait for it
        if (entry / READY).is_file():
            return entry
        if entry.exists():  # not ready: left by an older, broken layout
            shutil.rmtree(entry)
        building = Path(tempfile.mkdtemp(prefix=f".{KEY}.", dir=root))
        try:
            _build(python, building)
            (building / READY).write_text(f"{LOCAL_BIGQUERY} {DUCKDB}\n")
            building.rename(entry)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return entry


def _build(python: Path, folder: Path) -> None:
    venv = folder / "venv"
    _run([str(python), "-m", "venv", str(venv)])
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "--quiet"]
    _run([*pip, f"local-bigquery=={LOCAL_BIGQUERY}"])
    # DuckDB 2.0.0 (what local-bigquery asks for) has no offline extension wheels: the
    # emulator would download icu/ducklake/spatial at start, which fails offline
    pins = [f"duckdb=={DUCKDB}", *(f"duckdb-extension-{e}=={DUCKDB}" for e in EXTENSIONS)]
    _run([*pip, "--no-deps", *pins])
    extensions = folder / "home/.duckdb/extensions" / f"v{DUCKDB}" / "linux_amd64"
    extensions.mkdir(parents=True)
    for found in venv.rglob("*.duckdb_extension"):
        shutil.copy2(found, extensions / found.name)
    if not any(extensions.iterdir()):
        raise Unavailable("the DuckDB extension wheels held no *.duckdb_extension file")


def _run(command: list[str]) -> None:
    try:
        subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=True,
        )
    except subprocess.CalledProcessError as error:
        tail = (error.stderr or error.stdout or "").strip().splitlines()[-3:]
        raise Unavailable(f"`{' '.join(command[-2:])}` failed: {' | '.join(tail)}") from None
    except subprocess.TimeoutExpired:
        raise Unavailable(f"`{' '.join(command[-2:])}` took over {INSTALL_TIMEOUT_S} s") from None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running(entry: Path, data_dir: Path) -> Iterator[Emulator]:
    """The emulator serving on free ports until the block ends; stopped by its PID."""
    port, grpc_port = _free_port(), _free_port()
    command = [
        str(entry / "venv/bin/python"),
        "-c",
        "import sys; from local_bigquery.cli import main; sys.exit(main())",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--grpc-port",
        str(grpc_port),
        "--data-dir",
        str(data_dir),
    ]
    environment = {**os.environ, "HOME": str(entry / "home")}
    log = (data_dir.parent / "emulator.log").open("wb")
    process = subprocess.Popen(
        command,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_until_up(endpoint, process, data_dir.parent / "emulator.log")
        yield Emulator(endpoint, PROJECT, process.pid)
    finally:
        _stop(process)
        log.close()


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, the kernel stops it when the test process dies
    (a killed pytest skips its fixtures' teardown, and would leave the emulator running)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
            raise Unavailable(f"the emulator exited with {process.returncode}: {tail}")
        try:
            with urllib.request.urlopen(
                f"{endpoint}/bigquery/v2/projects/{PROJECT}/datasets", timeout=2
            ):
                return
        except urllib.error.HTTPError:
            return  # it answers: good enough
        except OSError:
            time.sleep(0.2)
    raise Unavailable(f"the emulator did not answer at {endpoint} within {START_TIMEOUT_S} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the process we started, and its own process group (it made one: a new session)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# Set by `make test-fast`: the tests needing an external engine skip instead of starting it.
FAST_TIER = "FLOWC_TEST_FAST"


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The emulator for this session; the tests that use it are skipped, with the reason,
    where it cannot be provisioned."""
    if os.environ.get(FAST_TIER):
        pytest.skip("make test-fast leaves out the BigQuery emulator")
    try:
        entry = provision()
        folder = tmp_path_factory.mktemp("bigquery-emulator")
        data_dir = folder / "data"
        data_dir.mkdir()
        with running(entry, data_dir) as emulator:
            yield emulator
    except Unavailable as why:
        pytest.skip(f"no BigQuery emulator: {why}")


def main() -> None:
    started = time.perf_counter()
    entry = provision()
    provisioned = time.perf_counter() - started
    print(f"provisioned {entry} in {provisioned:.1f} s")
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        data_dir.mkdir()
        started = time.perf_counter()
        with running(entry, data_dir) as emulator:
            print(
                f"started {emulator.endpoint} (pid {emulator.pid}) in "
                f"{time.perf_counter() - started:.1f} s"
            )


if __name__ == "__main__":
    main()
