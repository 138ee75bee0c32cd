"""`${VAR}` in flow.toml values, and where variables come from: the environment over `.env`.

The rules, which LANGUAGE §5 leaves to flowc:

- `${VAR}` is the variable's value (empty when set empty); an unset one is the reader's to
  report (`unset`), never a KeyError;
- `${VAR:-default}` is the default when the variable is unset *or empty*, as in the shell; a
  default holds no `}` and no `${`;
- nothing else is special: a lone `$` stays as written, there is no escape (`$${X}` is a `$`
  and then X's value), and a `${` of another shape is malformed (`well_formed`).

`.env` values are taken literally (no interpolation inside `.env`); the environment wins.

>>> expand("postgres://${USER}@${HOST:-localhost}/db", {"USER": "ann"})
'postgres://ann@localhost/db'
>>> unset("${USER}:${PASSWORD}", {"USER": "ann"})
['PASSWORD']
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

VARIABLE = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>(?:[^}$]|\$(?!\{))*))?\}"
)


def well_formed(text: str) -> bool:
    """Whether every `${` of `text` starts a `${NAME}` or a `${NAME:-default}`.

    >>> well_formed("${A} costs $5"), well_formed("${A:-${B}}"), well_formed("${1}")
    (True, False, False)
    """
    return "${" not in VARIABLE.sub("", text)


def unset(text: str, env: Mapping[str, str]) -> list[str]:
    """The variables of `text`, in order, that have neither a value in `env` nor a default."""
    return [found["name"] for found in VARIABLE.finditer(text) if _value(found, env) is None]


def expand(text: str, env: Mapping[str, str]) -> str:
    """`text` with its variables replaced by their values in `env` (an `unset` one by "")."""
    return VARIABLE.sub(lambda found: _value(found, env) or "", text)


def _value(found: re.Match[str], env: Mapping[str, str]) -> str | None:
    value = env.get(found["name"])
    default = found["default"]
    return value if default is None else (value or default)


def read_dotenv(path: Path) -> dict[str, str]:
    """The variables a `.env` file sets, literally; raises OSError or UnicodeDecodeError when
    it cannot be read."""
    from dotenv import dotenv_values  # only here: importing dotenv costs ~30 ms of start-up

    values = dotenv_values(path, interpolate=False, encoding="utf-8")
    return {key: value for key, value in values.items() if value is not None}


def environment(dotenv: Mapping[str, str], env: Mapping[str, str] | None) -> dict[str, str]:
    """The variables `${VAR}` reads: `dotenv` under `env` (None: the process environment)."""
    return {**dotenv, **(os.environ if env is None else env)}
