"""Resource failures are the user's to act on: a full disk under the DuckDB warehouse, a file
size limit, DuckDB out of memory. Each run fails with one line naming the cause and what to
change (the flow.toml setting, where there is one), exits 1 and is recorded as failed, never
an internal error. The disk is really full: a small tmpfs mounted in a user namespace
(`unshare -rm`, no root needed), or a file size limit (RLIMIT_FSIZE with SIGXFSZ ignored, so
writes past it fail with EFBIG) on the real code path."""

from __future__ import annotations

import resource
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from flowc_cli import FLOWC, flowc

TOML = """[project]
name = "t"
[profiles.dev.warehouse]
type = "duckdb"
path = "w.duckdb"
{extra}
"""

SPEC = """pipeline p {{
  target = warehouse
}}
transform big {{
  sql = "{sql}"
  materialize = table
}}
"""

WIDE = "SELECT range AS n, md5(CAST(range AS VARCHAR)) AS h FROM range({rows})"


def _project(root: Path, *, rows: int = 300_000, extra: str = "", sql: str = WIDE) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "flow.toml").write_text(TOML.format(extra=extra))
    (root / "p.flow").write_text(SPEC.format(sql=sql.format(rows=rows)))
    return root


def _namespaces_work(where: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = f"mount -t tmpfs -o size=1m tmpfs {shlex.quote(str(where))}"
    return subprocess.run(["unshare", "-rm", "sh", "-c", probe], check=False).returncode == 0


@pytest.mark.parametrize(
    ("size", "filler"),
    [("4m", 0), ("1m", 880_000)],  # room for the run history's reserve; hardly any room at all
)
def test_a_full_disk_under_the_warehouse_fails_the_run_saying_so(
    tmp_path: Path, size: str, filler: int
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _namespaces_work(disk):
        pytest.skip("no user namespaces here to mount a small tmpfs in")
    _project(tmp_path / "project", rows=2_000_000)
    flowc_ = " ".join(shlex.quote(part) for part in FLOWC)
    script = f"""
mount -t tmpfs -o size={size} tmpfs {disk}
cp {tmp_path}/project/flow.toml {tmp_path}/project/p.flow {disk}/
cd {disk}
head -c {filler} /dev/zero > filler
{flowc_} run p.flow
echo "exit $?"
{flowc_} runs
df -k . | tail -1
"""
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300
    )
    out = done.stdout + done.stderr
    assert "exit 1" in out, out
    assert "the disk is full (no space left on device)" in out
    assert "set the connection's `path` in flow.toml to a larger disk" in out
    assert "internal error" not in out and "Traceback" not in out
    if not filler:  # with room for the reserve, recorded as failed, not interrupted
        history = out.split("exit 1", 1)[1]
        assert " failed " in history, history


def _limited(size: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def test_a_file_size_limit_fails_the_run_naming_it(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert flowc("runs", cwd=root).returncode == 0  # the run history exists: it may stay small
    done = subprocess.run(
        [*FLOWC, "run", "p.flow"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: _limited(200_000),
    )
    assert done.returncode == 1, done.stderr
    assert "the file size limit (`ulimit -f`) was reached" in done.stderr
    assert f"cannot write {root / 'w.duckdb'}" in done.stderr
    assert "failed" in flowc("runs", cwd=root).stdout


def test_duckdb_out_of_memory_names_memory_limit_in_flow_toml(tmp_path: Path) -> None:
    hungry = (
        "SELECT n % 1000 AS k, string_agg(md5(CAST(n AS VARCHAR)), ',') AS s "
        "FROM (SELECT range AS n FROM range({rows})) GROUP BY 1"
    )
    root = _project(tmp_path, rows=3_000_000, extra='memory_limit = "20MB"', sql=hungry)
    done = flowc("run", "p.flow", cwd=root)
    assert done.returncode == 1, done.stderr
    assert "DuckDB ran out of memory: " in done.stderr
    assert "raise `memory_limit` of the DuckDB connection in flow.toml" in done.stderr
    assert "SET memory_limit" not in done.stderr  # DuckDB's advice: not for a flowc user
    assert "failed" in flowc("runs", cwd=root).stdout
