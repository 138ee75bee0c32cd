"""Shared test settings: the hypothesis profiles.

- `default`, used by every plain `pytest` run (`make test`): derandomized, so that CI sees the
  same examples on every run, and sized so that tests/test_fuzz.py runs a few thousand examples
  in well under a minute.
- `slow`, for the tests marked `slow` (`make test-slow`, i.e.
  `pytest -m slow --hypothesis-profile=slow`): 20 times as many examples, and random ones, so
  that every slow run explores new inputs (a failure prints the seed that reproduces it).

Tests that need a real Postgres or the BigQuery emulator are marked `postgres` / `bigquery`
here, from the fixtures they use, so that `make test-fast` (the edit-test loop) can leave them
out; `make test` runs them all.
"""

from __future__ import annotations

import pytest
from bq_emulator import bigquery_emulator  # noqa: F401 - the session's BigQuery emulator
from hypothesis import HealthCheck, settings

EXAMPLES = 500  # per property test in the default profile

_RELAXED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "default",
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=_RELAXED,
)
settings.register_profile(
    "slow",
    max_examples=EXAMPLES * 20,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=_RELAXED,
)
settings.load_profile("default")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite tests/golden/ from the compiler's current output (review the diff)",
    )


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


# The fixture that starts each external engine, and the marker of the tests that use it.
_ENGINE_FIXTURES = {"pg_server": "postgres", "bigquery_emulator": "bigquery"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in _ENGINE_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, marker))


pytest_plugins = ["pg_server"]  # the `pg_server` and `pg` fixtures: a real PostgreSQL
