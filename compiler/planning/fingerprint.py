"""Fingerprints: a hash of everything that determines a step's output.

A step's fingerprint is the SHA-256 of the canonical JSON (sorted keys, no spaces) of:
its kind, connection, SQL statements, Python entry point (path, function and the SHA-256 of
the file's content), materialization, fused CTEs, parameters (names and types), `source`,
`sink`, `transfer`, `check` and `incremental` details, the values it binds (when it has any),
its outputs (names and columns), and the fingerprints of its inputs, in order. Not included:
the step's id, retries, retry delay, timeout and `isolate` (they change how a step runs, not
what it makes), `resolve_at_run` (which follows from the upstream steps), `notes` (what it
says to a person) and parameter values (bound at run time; a run records them).

The SQL is generated from parsed trees without comments, so whitespace and comments in a spec
or a SQL file never change a fingerprint; any change to what the SQL means does, and it
changes the fingerprint of every step downstream through the input fingerprints.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from flowc.compiler.plan import STEP, CheckStep, Step

_EXCLUDED = {
    "id",
    "inputs",
    "isolate",
    "retries",
    "retry_delay_s",
    "timeout_s",
    "fingerprint",
    "resolve_at_run",
    "notes",
}
# Every field a step had in plan version 1, where one `Step` had every kind's fields, with
# its value when unset. A step is hashed in that shape, so that the fingerprints of plan
# version 2 are those of version 1 and a run after the upgrade finds its steps unchanged.
_VERSION_1: dict[str, Any] = {
    "check": None,
    "connection": None,
    "fused": [],
    "incremental": None,
    "isolate": False,
    "materialization": None,
    "parameters": [],
    "python": None,
    "sink": None,
    "source": None,
    "sql": None,
    "transfer": None,
    "values": [],
}
_SINK_VERSION_1: dict[str, Any] = {
    "cluster_by": [],
    "connection": None,
    "path": None,
    "table": None,
}


def fingerprint_steps(drafts: Sequence[dict[str, Any]]) -> list[Step]:
    """`Step`s from their fields, each with its fingerprint; inputs come before their readers.

    >>> [step] = fingerprint_steps([dict(id="a", kind="sql", node="a", connection="local",
    ...     inputs=[], outputs=[], sql=["SELECT 1"], materialization="table")])
    >>> step.fingerprint[:12]
    '66aa70ed0516'
    """
    done: dict[str, str] = {}
    steps: list[Step] = []
    for fields in drafts:
        step = STEP.validate_python({**fields, "fingerprint": ""})
        digest = fingerprint(step, [done[i] for i in step.inputs])
        done[step.id] = digest
        steps.append(step.model_copy(update={"fingerprint": digest}))
    return steps


def fingerprint(step: Step, upstream: Sequence[str]) -> str:
    # a step without bound values hashes as before `values` existed: fingerprints stay valid
    binds = isinstance(step, CheckStep) and step.values
    excluded = _EXCLUDED if binds else _EXCLUDED | {"values"}
    content = {**_VERSION_1, **step.model_dump(mode="json")}
    if content["sink"] is not None:
        content["sink"] = {**_SINK_VERSION_1, **content["sink"]}
    for name in excluded:
        content.pop(name, None)
    source = content.get("source") or {}
    for later in ("api", "headers", "urls"):  # added later: unset, the digest stays as it was
        if not source.get(later, True):
            del source[later]
    for said in ("columns", "line"):  # how a failure is shown, not what is tested
        (content.get("check") or {}).pop(said, None)
    content["upstream"] = list(upstream)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
