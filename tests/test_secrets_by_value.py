"""Secrets are masked by value: wherever a secret of flow.toml sits (a table, an inline table,
a URL's userinfo, a `${VAR}` from `.env`) and wherever its value shows up again (a comment on
the line in error, a line a diagnostic quotes, a message of a failed step), no output, no run
history line holds it."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from click.testing import CliRunner
from flowc.cli import cli
from flowc.project import secrets
from flowc_cli import flowc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SPEC = 'pipeline p {\n  target = warehouse\n}\ntransform t {\n  sql = "SELECT 1 AS x"\n}\n'

# how the secret is set (each a `[profiles.pg]` body; SECRET is the value)
SETTINGS = {
    "inline": 'warehouse = {{ type = "postgres", host = "h", dbname = "d", user = "u", '
    'password = "{s}", port = "{port}" }}{comment}',
    "table": '[profiles.pg.warehouse]\ntype = "postgres"\nhost = "h"\nport = "{port}"{comment}\n'
    'user = "u"\ndbname = "d"\npassword = "{s}"',
    "url": '[profiles.pg.warehouse]\ntype = "postgres"\nurl = "postgres://me:{s}@h:5432/d"\n'
    'port = "{port}"{comment}',
    "inline url": 'warehouse = {{ type = "postgres", url = "postgresql://u:{s}@db/x", '
    'dbname = "{port}" }}{comment}',
    "env": '[profiles.pg.warehouse]\ntype = "postgres"\nhost = "h"\nport = "{port}"{comment}\n'
    'user = "u"\ndbname = "d"\npassword = "${{PG_SECRET}}"',
    "broken toml": 'warehouse = {{ type = "postgres", password = "{s}", port = }}{comment}',
}

secret_texts = st.text(string.ascii_letters + string.digits + "!%^*-_", min_size=6, max_size=24)


def _project(root: Path, how: str, secret: str, port: str, comment: bool) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "specs").mkdir(exist_ok=True)
    (root / "specs" / "p.flow").write_text(SPEC)
    body = SETTINGS[how].format(s=secret, port=port, comment=f"  # was {secret}" if comment else "")
    toml = f'[project]\nname = "x"\ndefault_profile = "pg"\n\n[profiles.pg]\n{body}\n'
    if how != "inline" and how != "inline url" and how != "broken toml":
        toml = toml.replace("[profiles.pg]\n", "")
    (root / "flow.toml").write_text(toml)
    (root / ".env").write_text(f"PG_SECRET={secret}\n")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    how=st.sampled_from(sorted(SETTINGS)),
    secret=secret_texts,
    port=st.sampled_from(["abc", "0", "99999", "5432"]),
    comment=st.booleans(),
    output=st.sampled_from(["text", "json", "github"]),
)
def test_no_secret_of_flow_toml_is_ever_shown_by_check(
    tmp_path_factory: pytest.TempPathFactory,
    how: str,
    secret: str,
    port: str,
    comment: bool,
    output: str,
) -> None:
    secret = f"Zq{secret}"  # never a word of a message
    root = Path(tmp_path_factory.mktemp("project"))
    _project(root, how, secret, port, comment)
    result = CliRunner().invoke(
        cli, ["check", str(root), "--profile", "pg", "--format", output], catch_exceptions=False
    )
    assert result.exit_code in (0, 1), result.output
    assert secret not in result.output
    if output == "json":
        json.loads(result.output)  # masking kept it a document
    build = root / "build"
    spec = str(root / "specs" / "p.flow")
    compiled = CliRunner().invoke(cli, ["compile", spec, "--profile", "pg", "-o", str(build)])
    assert compiled.exit_code in (0, 1), compiled.output
    assert secret not in compiled.output
    for path in build.rglob("*"):
        assert not path.is_file() or secret.encode() not in path.read_bytes(), path


def test_a_failed_run_never_records_a_secret_of_flow_toml(tmp_path: Path) -> None:
    """The value of a secret the run's own profile does not hold (another profile's password)
    is masked in the step's error, the run events and the run history."""
    secret = "Zq-s3cret-of-another-profile"
    (tmp_path / "specs").mkdir()
    spec = SPEC.replace("SELECT 1 AS x", f"SELECT CAST('{secret}' AS INTEGER) AS x")
    (tmp_path / "specs" / "p.flow").write_text(spec)
    (tmp_path / "flow.toml").write_text(
        '[project]\nname = "x"\ndefault_profile = "dev"\n\n'
        '[profiles.dev.warehouse]\ntype = "duckdb"\npath = ".flowc/w.duckdb"\n\n'
        "[profiles.pg]\n"
        f'warehouse = {{ type = "postgres", url = "postgres://me:{secret}@db/x" }}\n'
    )
    runs = [flowc("run", "specs/p.flow", *extra, cwd=tmp_path) for extra in ([], ["--json"])]
    assert [done.returncode for done in runs] == [1, 1]
    history = flowc("runs", cwd=tmp_path)
    run_id = history.stdout.split()[0]
    shown = [history, flowc("show", run_id, cwd=tmp_path), *runs]
    text = "".join(done.stdout + done.stderr for done in shown)
    assert "Could not convert string" in text  # the failure is reported...
    assert secret not in text  # ...without the secret
    assert secret.encode() not in (tmp_path / ".flowc" / "state.db").read_bytes()


def test_mask_hides_the_password_of_any_url_and_every_known_value() -> None:
    text = "cannot reach postgres://me:pa55word@db:5432/x with token Zq12345 (or Zq1)"
    shown = secrets.mask(text, {"Zq12345", "Zq1"})
    assert shown == "cannot reach postgres://me:***@db:5432/x with token *** (or Zq1)"
