"""The flow.toml pass: profiles, connections, `${VAR}` expansion, every F06xx at its line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from flowc.compiler.analysis.project_file import load_project
from flowc.compiler.diagnostics import Diagnostics
from flowc.project.config import (
    BigQuerySettings,
    DuckDBSettings,
    PostgresSettings,
    Profile,
    ProjectConfig,
    find_project_root,
    secret_values,
)

DEV_PG = """\
[project]
name = "taxi"
default_profile = "dev"

[profiles.dev.warehouse]
type     = "postgres"
host     = "${PGHOST}"
port     = "${PGPORT:-5432}"
dbname   = "${PGDATABASE}"
user     = "${PGUSER}"
password = "${PGPASSWORD}"
schema   = "${PGSCHEMA:-public}"

[profiles.prod.warehouse]
type        = "bigquery"
project     = "${GCP_PROJECT}"
dataset     = "ny_taxi"
credentials = "${GOOGLE_APPLICATION_CREDENTIALS:-}"
"""

PG_ENV = {"PGHOST": "db", "PGDATABASE": "taxi", "PGUSER": "me", "PGPASSWORD": "pw"}


def write(root: Path, toml: str | None, dotenv: str | None = None) -> Path:
    if toml is not None:
        (root / "flow.toml").write_text(textwrap.dedent(toml), encoding="utf-8")
    if dotenv is not None:
        (root / ".env").write_text(dotenv, encoding="utf-8")
    return root


def load(
    root: Path, toml: str | None, profile: str | None = None, env: dict[str, str] | None = None
) -> tuple[ProjectConfig, list[Profile], Diagnostics]:
    return load_project(write(root, toml), profile=profile, env={} if env is None else env)


def found(diagnostics: Diagnostics) -> list[tuple[str, int]]:
    """Each diagnostic as (code, line), sorted."""
    return sorted((d.code, d.span.line) for d in diagnostics)


def only(diagnostics: Diagnostics, code: str) -> tuple[str, str | None, str]:
    [diagnostic] = [d for d in diagnostics if d.code == code]
    return diagnostic.message, diagnostic.hint, diagnostic.span.start_text()


# --- the project root and the implicit profile ----------------------------------------------


def test_root_is_the_nearest_folder_with_flow_toml(tmp_path: Path) -> None:
    write(tmp_path, "")
    (tmp_path / "specs" / "deep").mkdir(parents=True)
    spec = tmp_path / "specs" / "deep" / "a.flow"
    spec.write_text("", encoding="utf-8")
    assert find_project_root(spec) == tmp_path
    assert find_project_root(tmp_path / "specs") == tmp_path


def test_without_flow_toml_the_spec_folder_is_the_root(tmp_path: Path) -> None:
    spec = tmp_path / "a.flow"
    spec.write_text("", encoding="utf-8")
    assert find_project_root(spec) == tmp_path
    assert find_project_root(tmp_path) == tmp_path


def test_relative_spec_gives_relative_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "")
    (tmp_path / "specs").mkdir()
    monkeypatch.chdir(tmp_path / "specs")
    assert find_project_root(Path("a.flow")) == Path("..")


def test_without_flow_toml_one_default_profile_with_local(tmp_path: Path) -> None:
    config, [profile], diagnostics = load(tmp_path, None)
    assert (config.file, config.name, list(config.profiles)) == (None, tmp_path.name, ["default"])
    assert profile.name == "default" and list(profile.connections) == ["local"]
    local = profile.connections["local"]
    assert local.settings == DuckDBSettings(path=".flowc/local.duckdb")
    assert local.span.file == str(tmp_path)
    assert len(diagnostics) == 0


def test_every_profile_gets_local_unless_it_defines_one(tmp_path: Path) -> None:
    toml = """\
    [profiles.a.warehouse]
    type = "duckdb"

    [profiles.b.local]
    type = "duckdb"
    path = "b.duckdb"
    read_only = true
    """
    _, [a, b], diagnostics = load(tmp_path, toml, profile="all")
    assert list(a.connections) == ["local", "warehouse"]
    assert a.connections["local"].settings == DuckDBSettings(path=".flowc/local.duckdb")
    assert a.connections["warehouse"].settings == DuckDBSettings(path=".flowc/warehouse.duckdb")
    assert b.connections["local"].settings == DuckDBSettings(path="b.duckdb", read_only=True)
    assert a.connections["local"].span.start_text() == "1:1"
    assert len(diagnostics) == 0


def test_config_keeps_structure_and_selected_profiles_are_expanded(tmp_path: Path) -> None:
    config, [dev], diagnostics = load(tmp_path, DEV_PG, env=PG_ENV)
    assert (config.name, config.default_profile) == ("taxi", "dev")
    assert config.file == str(tmp_path / "flow.toml")
    assert sorted(config.profiles) == ["dev", "prod"]
    assert config.profiles["prod"].connections["warehouse"].type == "bigquery"
    assert config.profiles["dev"].connections["warehouse"].settings is None
    settings = dev.connections["warehouse"].settings
    assert isinstance(settings, PostgresSettings)
    assert (settings.host, settings.port, settings.dbname, settings.user) == (
        "db",
        5432,
        "taxi",
        "me",
    )
    assert settings.password is not None and settings.password.get_secret_value() == "pw"
    assert settings.db_schema == "public" and settings.sslmode is None
    assert dev.connections["warehouse"].span.start_text() == "5:1"
    assert len(diagnostics) == 0


# --- choosing profiles -------------------------------------------------------------------


def test_profile_all_selects_every_profile_in_order(tmp_path: Path) -> None:
    env = PG_ENV | {"GCP_PROJECT": "p"}
    _, profiles, diagnostics = load(tmp_path, DEV_PG, profile="all", env=env)
    assert [p.name for p in profiles] == ["dev", "prod"]
    bigquery = profiles[1].connections["warehouse"].settings
    assert bigquery == BigQuerySettings(project="p", dataset="ny_taxi")
    assert len(diagnostics) == 0


def test_the_only_profile_is_the_default(tmp_path: Path) -> None:
    _, [profile], diagnostics = load(tmp_path, '[profiles.solo.db]\ntype = "duckdb"\n')
    assert profile.name == "solo" and len(diagnostics) == 0


def test_several_profiles_and_no_default_is_an_error(tmp_path: Path) -> None:
    toml = '[project]\nname = "x"\n[profiles.a.db]\ntype = "duckdb"\n'
    toml += '[profiles.b.db]\ntype = "duckdb"\n'
    _, profiles, diagnostics = load(tmp_path, toml)
    assert profiles == [] and found(diagnostics) == [("F0608", 1)]
    assert "no `default_profile`" in only(diagnostics, "F0608")[0]


def test_f0602_unknown_profile_at_line_one(tmp_path: Path) -> None:
    _, profiles, diagnostics = load(tmp_path, DEV_PG, profile="prd", env=PG_ENV)
    assert profiles == []
    assert only(diagnostics, "F0602") == ("unknown profile `prd`", "did you mean `prod`?", "1:1")


def test_f0608_default_profile_must_exist(tmp_path: Path) -> None:
    toml = '[project]\ndefault_profile = "dve"\n\n[profiles.dev.db]\ntype = "duckdb"\n'
    _, profiles, diagnostics = load(tmp_path, toml)
    assert profiles == []
    message, hint, at = only(diagnostics, "F0608")
    assert (hint, at) == ("did you mean `dev`?", "2:1") and "`dve`" in message


def test_f0608_unknown_project_key_and_top_level_table(tmp_path: Path) -> None:
    toml = '[project]\nname = "x"\ndefault_profil = "dev"\n\n[profile.dev.db]\ntype = "duckdb"\n'
    _, _, diagnostics = load(tmp_path, toml)
    assert found(diagnostics) == [("F0608", 3), ("F0608", 5)]
    hints = sorted(d.hint or "" for d in diagnostics)
    assert hints == ["did you mean `default_profile`?", "did you mean `profiles`?"]


def test_f0608_profile_named_all_and_connection_not_a_table(tmp_path: Path) -> None:
    toml = '[profiles.all.db]\ntype = "duckdb"\n\n[profiles.dev]\ntype = "duckdb"\n'
    _, _, diagnostics = load(tmp_path, toml, profile="all")
    assert found(diagnostics) == [("F0608", 1), ("F0608", 5)]


# --- F0601 .. F0607 -----------------------------------------------------------------------


def test_f0601_toml_syntax_error_at_its_line_and_column(tmp_path: Path) -> None:
    config, profiles, diagnostics = load(tmp_path, '[project]\nname = "x"\n[profiles.dev\n')
    message, _, at = only(diagnostics, "F0601")
    assert at == "3:14" and message.startswith("flow.toml is not valid TOML: Expected ']'")
    assert "(at line" not in message
    assert profiles == [] and config.file is not None


def test_f0603_unknown_type_with_suggestion(tmp_path: Path) -> None:
    toml = '[profiles.dev.warehouse]\nhost = "x"\ntype = "postgress"\n'
    config, _, diagnostics = load(tmp_path, toml)
    message, hint, at = only(diagnostics, "F0603")
    assert message == "connection `profiles.dev.warehouse` has unknown type `postgress`"
    assert (hint, at) == ("did you mean `postgres`?", "3:8")  # at the value
    assert "warehouse" not in config.profiles["dev"].connections


def test_f0604_missing_keys_at_the_header(tmp_path: Path) -> None:
    toml = """\
    [profiles.dev.untyped]
    path = "x"

    [profiles.dev.warehouse]
    type = "postgres"
    host = "db"
    """
    _, _, diagnostics = load(tmp_path, toml)
    assert found(diagnostics) == [("F0604", 1), ("F0604", 4), ("F0604", 4)]
    messages = sorted(d.message for d in diagnostics)
    assert messages[1] == "connection `profiles.dev.warehouse` (postgres) needs `dbname`"
    assert messages[2] == "connection `profiles.dev.warehouse` (postgres) needs `user`"


def test_f0604_settings_of_a_broken_connection_are_none(tmp_path: Path) -> None:
    toml = '[profiles.dev.bq]\ntype = "bigquery"\nurl = "x"\n'
    _, [dev], diagnostics = load(tmp_path, toml)
    assert found(diagnostics) == [("F0604", 1), ("F0607", 3)]
    assert dev.connections["bq"].settings is None


def test_f0608_connection_keys_directly_in_a_profile(tmp_path: Path) -> None:
    _, _, diagnostics = load(tmp_path, '[profiles.dev]\ntype = "duckdb"\n')
    message = only(diagnostics, "F0608")[0]
    assert message == "`type` is a connection setting: put it under `[profiles.dev.<connection>]`"


def test_f0604_structural_errors_are_reported_for_every_profile(tmp_path: Path) -> None:
    toml = '[project]\ndefault_profile = "dev"\n[profiles.dev.db]\ntype = "duckdb"\n'
    toml += '[profiles.prod.warehouse]\ntype = "bigquery"\ndataset = "${DATASET}"\n'
    _, [dev], diagnostics = load(tmp_path, toml)
    message, _, at = only(diagnostics, "F0604")
    assert (message, at) == (
        "connection `profiles.prod.warehouse` (bigquery) needs `project`",
        "5:1",
    )
    assert dev.name == "dev" and len(diagnostics) == 1


def test_f0605_missing_variable_names_it_and_the_connection(tmp_path: Path) -> None:
    env = {k: v for k, v in PG_ENV.items() if k != "PGPASSWORD"}
    _, [dev], diagnostics = load(tmp_path, DEV_PG, env=env)
    message, _, at = only(diagnostics, "F0605")
    assert at == "11:13"  # at `${PGPASSWORD}` inside the value
    assert "`PGPASSWORD`" in message
    assert "`password` of connection `profiles.dev.warehouse`" in message
    assert dev.connections["warehouse"].settings is None
    assert len(diagnostics) == 1  # prod's ${GCP_PROJECT} is not checked for dev


def test_f0605_reported_for_each_selected_profile(tmp_path: Path) -> None:
    _, _, diagnostics = load(tmp_path, DEV_PG, profile="all", env={})
    variables = sorted(d.message.split("`")[1] for d in diagnostics)
    assert variables == ["GCP_PROJECT", "PGDATABASE", "PGHOST", "PGPASSWORD", "PGUSER"]
    assert {d.code for d in diagnostics} == {"F0605"}


def test_f0605_suggests_a_similar_variable(tmp_path: Path) -> None:
    toml = '[profiles.dev.bq]\ntype = "bigquery"\nproject = "${GCP_PROJET}"\n'
    _, _, diagnostics = load(tmp_path, toml, env={"GCP_PROJECT": "p"})
    _, hint, at = only(diagnostics, "F0605")
    assert at == "3:12" and hint is not None and hint.startswith("did you mean `GCP_PROJECT`?")


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('port = "${PGPORT}"', "from 1 to 65535, not what `${PGPORT}` expands to"),
        ('port = "abc"', "from 1 to 65535, not `abc`"),
        ("port = 0", "from 1 to 65535, not `0`"),
        ("port = true", "must be an integer or a string, not a boolean"),
        ('sslmode = "requir"', "must be one of disable"),
        ('schema = "${PGSCHEMA:-${X}}"', "that is not `${NAME}`"),
    ],
)
def test_f0606_invalid_values(tmp_path: Path, line: str, needle: str) -> None:
    toml = f'[profiles.dev.pg]\ntype = "postgres"\nhost = "h"\ndbname = "d"\nuser = "u"\n{line}\n'
    _, [dev], diagnostics = load(tmp_path, toml, env={"PGPORT": "70000"})
    message, hint, at = only(diagnostics, "F0606")
    assert needle in message and at == f"6:{line.index('=') + 3}"  # at the value
    assert dev.connections["pg"].settings is None
    if "sslmode" in line:
        assert hint == "did you mean `require`?"


def test_duckdb_memory_limit_is_a_size(tmp_path: Path) -> None:
    toml = '[profiles.dev.db]\ntype = "duckdb"\nmemory_limit = "${LIMIT:-1.5GB}"\n'
    _, [dev], diagnostics = load(tmp_path, toml)
    assert dev.connections["db"].settings == DuckDBSettings(
        path=".flowc/db.duckdb", memory_limit="1.5GB"
    )
    assert len(diagnostics) == 0
    _, _, diagnostics = load(tmp_path, toml, env={"LIMIT": "lots"})
    message, hint, at = only(diagnostics, "F0606")
    assert "is not a size: `lots`" in message and hint == 'write it like "512MB" or "4GB"'
    assert at == "3:16"


def test_f0606_url_checks_never_show_the_url(tmp_path: Path) -> None:
    toml = '[profiles.dev.pg]\ntype = "postgres"\nurl = "mysql://u:hunter2@h/d"\nhost = "h"\n'
    _, _, diagnostics = load(tmp_path, toml)
    assert found(diagnostics) == [("F0606", 3), ("F0606", 4)]
    assert all("hunter2" not in d.message for d in diagnostics)


def test_postgres_url_form(tmp_path: Path) -> None:
    toml = '[profiles.dev.pg]\ntype = "postgres"\nurl = "${DATABASE_URL}"\nsslmode = "require"\n'
    url = "postgresql://me:s3cr%40t@db:6543/taxi"
    _, [dev], diagnostics = load(tmp_path, toml, env={"DATABASE_URL": url})
    settings = dev.connections["pg"].settings
    assert isinstance(settings, PostgresSettings) and settings.url is not None
    assert settings.url.get_secret_value() == url and settings.host is None
    assert settings.sslmode == "require" and len(diagnostics) == 0


def test_f0607_unknown_key_is_a_warning_with_suggestion(tmp_path: Path) -> None:
    toml = '[profiles.dev.db]\ntype = "duckdb"\n\npaht = "x.duckdb"\n'
    _, [dev], diagnostics = load(tmp_path, toml)
    [diagnostic] = diagnostics
    assert (diagnostic.code, diagnostic.severity, diagnostic.span.start_text()) == (
        "F0607",
        "warning",
        "4:1",
    )
    assert diagnostic.message == "connection `profiles.dev.db` (duckdb) has no setting `paht`"
    assert diagnostic.hint == "did you mean `path`?"
    assert dev.connections["db"].settings == DuckDBSettings(path=".flowc/db.duckdb")


def test_locator_follows_dotted_and_quoted_keys(tmp_path: Path) -> None:
    toml = """\
    [profiles.dev]
    # a comment = 1
    db.type = "duckdb"
    db . "paht" = "x"
    [profiles."prod".wh]
    note = \"\"\"
    [profiles.fake]
    \"\"\"
      "type" = "bigqery"
    """
    _, _, diagnostics = load(tmp_path, toml, profile="all")
    assert found(diagnostics) == [("F0603", 9), ("F0607", 4)]


# --- expansion and .env ---------------------------------------------------------------------


def test_defaults_apply_when_unset_or_empty(tmp_path: Path) -> None:
    toml = '[profiles.dev.db]\ntype = "duckdb"\npath = "${DIR:-data}/${NAME:-x}.duckdb"\n'
    _, [dev], _ = load(tmp_path, toml, env={"DIR": ""})
    assert dev.connections["db"].settings == DuckDBSettings(path="data/x.duckdb")
    _, [dev], _ = load(tmp_path, toml, env={"DIR": "d", "NAME": "n"})
    assert dev.connections["db"].settings == DuckDBSettings(path="d/n.duckdb")


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    write(tmp_path, DEV_PG, "PGHOST=from-dotenv\nPGUSER=dotenv-user\nexport PGDATABASE='taxi'\n")
    env = {"PGHOST": "from-env", "PGPASSWORD": "pw"}
    _, [dev], diagnostics = load_project(tmp_path, profile=None, env=env)
    settings = dev.connections["warehouse"].settings
    assert isinstance(settings, PostgresSettings)
    assert (settings.host, settings.user, settings.dbname) == ("from-env", "dotenv-user", "taxi")
    assert len(diagnostics) == 0


def test_environment_defaults_to_os_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in PG_ENV.items():
        monkeypatch.setenv(key, value)
    _, [dev], diagnostics = load_project(write(tmp_path, DEV_PG), profile="dev")
    assert isinstance(dev.connections["warehouse"].settings, PostgresSettings)
    assert len(diagnostics) == 0


def test_bigquery_empty_credentials_mean_default_credentials(tmp_path: Path) -> None:
    env = {"GCP_PROJECT": "p", "GOOGLE_APPLICATION_CREDENTIALS": ""}
    _, [prod], _ = load(tmp_path, DEV_PG, profile="prod", env=env)
    assert prod.connections["warehouse"].settings == BigQuerySettings(
        project="p", dataset="ny_taxi"
    )


# --- secrets --------------------------------------------------------------------------------

SECRET = "Tr0ub4dor&3-secret"
URL_SECRET = "c0rrect-h0rse"

SECRETS_TOML = """\
[project]
default_profile = "dev"

[profiles.dev.warehouse]
type     = "postgres"
host     = "db"
dbname   = "${PGDATABASE}"
user     = "me"
password = "${PGPASSWORD}"
sslmode  = "nope"
port     = "${PGPASSWORD}"
api_token = "${PGPASSWORD}"

[profiles.dev.other]
type = "postgres"
url  = "${DATABASE_URL}"
port = "${DATABASE_URL}"

[profiles.dev.bq]
type        = "bigquery"
project     = "p"
credentials = "${PGPASSWORD}"
api_endpoint = "${PGPASSWORD}"
"""


def test_secrets_never_appear_in_models_or_diagnostics(tmp_path: Path) -> None:
    write(tmp_path, SECRETS_TOML, f"PGPASSWORD={SECRET}\n")
    env = {"DATABASE_URL": f"postgresql://me:{URL_SECRET}@db/x"}
    config, profiles, diagnostics = load_project(tmp_path, profile="all", env=env)
    assert {d.code for d in diagnostics} >= {"F0605", "F0606", "F0607"}
    shown = [str(config), repr(config), config.model_dump_json()]
    shown += [text for p in profiles for text in (str(p), repr(p), p.model_dump_json())]
    shown += [f"{d.message} {d.hint}" for d in diagnostics]
    for text in shown:
        assert SECRET not in text and URL_SECRET not in text


def test_secret_values_lists_every_secret(tmp_path: Path) -> None:
    toml = """\
    [profiles.dev.warehouse]
    type     = "postgres"
    host     = "db"
    dbname   = "d"
    user     = "me"
    password = "${PGPASSWORD}"

    [profiles.dev.other]
    type = "postgres"
    url  = "${DATABASE_URL}"
    """
    write(tmp_path, toml, f"PGPASSWORD={SECRET}\n")
    env = {"DATABASE_URL": f"postgresql://me:{URL_SECRET}@db/x"}
    _, [dev], diagnostics = load_project(tmp_path, profile="dev", env=env)
    assert len(diagnostics) == 0
    assert {SECRET, URL_SECRET, env["DATABASE_URL"]} == secret_values(dev)
