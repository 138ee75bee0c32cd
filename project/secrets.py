"""Secrets by value: every secret a project's flow.toml holds or names, and the masking of any
text flowc shows (diagnostics, run events, run history) that contains one.

Masking by key (`password = "..."` lines) misses a password in an inline table, in a comment,
in a URL or in a message quoting a line; masking by value does not care about the syntax. The
secrets of a project are

- the values of secret keys (`is_secret_key`: `password`, `url`, `credentials`, any key
  naming a password, secret, token or key), wherever the key sits (tables, inline tables);
- what a `${VAR}` in such a value expands to (from `.env` and the environment);
- the password of every URL in flow.toml (`postgres://user:pw@host`), as written and decoded.

Besides, `mask` hides the password of any `scheme://user:password@` URL it meets, known or not.
Values shorter than `MIN_LENGTH` are masked by key only: masking every `a` of a message would
make it unreadable, and a password that short protects nothing.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from flowc.project import env as variables
from flowc.project.config import url_password

MASK = "***"
MIN_LENGTH = 4

_SECRET_KEYS = ("password", "credentials", "url")
_SECRET_WORDS = ("password", "secret", "token", "key")
# Laxer than `env.VARIABLE` on purpose: a default may hold `${`. Such a value is malformed
# (flow.toml checking rejects it), but what it names is still masked.
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/:@\"']*:)([^\s/@\"']+)@")
# `key = "value"` / `key = 'value'` anywhere on a line: the fallback for a flow.toml that does not
# parse (its error line is shown, and may hold a password)
_ASSIGNMENT = re.compile(r"""([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')""")


def in_project(root: Path, env: Mapping[str, str] | None = None) -> frozenset[str]:
    """Every secret of `root/flow.toml` (see the module docstring); `env=None` reads `.env`
    and `os.environ`. A missing or unreadable file has none."""
    try:
        text = (root / "flow.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return frozenset()
    environ = _environment(root) if env is None else env
    found: set[str] = set()
    for key, value in _assignments(text):
        if is_secret_key(key.rsplit(".", 1)[-1]):
            found.add(value if "${" not in value else "")
            found.update(_expansions(value, environ))
        for url in (value, _expand(value, environ)):
            found.update(_url_passwords(url))
    return frozenset(s for s in found if len(s) >= MIN_LENGTH)


def is_secret_key(key: str) -> bool:
    """Whether the value of a flow.toml key must never be shown.

    >>> is_secret_key("api_token"), is_secret_key("host")
    (True, False)
    """
    lowered = key.lower()
    return lowered in _SECRET_KEYS or any(word in lowered for word in _SECRET_WORDS)


def mask(text: str, secrets: Collection[str]) -> str:
    """`text` with every secret in it, and every URL's password, replaced by `***`."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_LENGTH:
            text = text.replace(secret, MASK)
    return _URL_PASSWORD.sub(rf"\g<1>{MASK}@", text)


def _assignments(text: str) -> Iterator[tuple[str, str]]:
    """Every string value of flow.toml with its key: parsed, and also found by pattern, so that
    a file with a syntax error (or a value the parser reads differently) still gives its
    secrets."""
    with contextlib.suppress(tomllib.TOMLDecodeError):
        yield from _walk(tomllib.loads(text))
    for match in _ASSIGNMENT.finditer(text):
        yield match.group(1), match.group(2) if match.group(2) is not None else match.group(3)


def _walk(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for name, value in node.items():
            yield from _walk(value, str(name))
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)
    elif isinstance(node, str):
        yield key, node


def _expansions(value: str, env: Mapping[str, str]) -> set[str]:
    """What the `${VAR}`s of a secret value expand to, one by one and as a whole."""
    if "${" not in value:
        return set()
    parts = {env.get(m.group(1)) or m.group(2) or "" for m in _VAR.finditer(value)}
    return {*parts, _expand(value, env)} - {""}


def _expand(value: str, env: Mapping[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1)) or m.group(2) or "", value)


def _url_passwords(url: str) -> set[str]:
    return url_password(url) if "://" in url else set()


def _environment(root: Path) -> dict[str, str]:
    """`.env` under the real environment, as flow.toml checking reads them (an unreadable
    `.env` sets nothing: that is flow.toml checking's to report)."""
    dotenv: dict[str, str] = {}
    if (root / ".env").is_file():
        with contextlib.suppress(OSError, UnicodeDecodeError):
            dotenv = variables.read_dotenv(root / ".env")
    return variables.environment(dotenv, None)
