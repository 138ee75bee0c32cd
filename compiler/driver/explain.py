"""`flowc explain`: the plan for a person — what runs where, in which order, and why.

It shows exactly what `flowc run` will do: every step with its kind, connection,
materialization and the steps it waits for, the ephemeral transforms fused into each query,
and the checks with what happens when they fail.
"""

from __future__ import annotations

from flowc.compiler import plan


def explain(compiled: plan.Plan) -> str:
    """A readable account of `compiled`."""
    pipeline = compiled.pipeline
    lines = [
        f"pipeline {pipeline.name} (project {compiled.project}, profile {compiled.profile})",
        f"  spec {pipeline.spec}, SQL written in {pipeline.dialect}",
        "  connections: "
        + ", ".join(
            f"{c.name} ({c.type}, parameters as {c.placeholder})" for c in compiled.connections
        ),
    ]
    if compiled.params:
        lines.append(
            "  params: " + ", ".join(f"{p.name} {p.type} = {p.default!r}" for p in compiled.params)
        )
    if pipeline.schedule:
        lines.append(f"  schedule: {pipeline.schedule}")
    lines += ["", f"{len(compiled.steps)} steps, in order:"]
    width = len(str(len(compiled.steps)))
    for index, step in enumerate(compiled.steps, start=1):
        lines.append(f"  {index:>{width}}. {_step(step)}")
        lines += [f"  {'':>{width}}  {detail}" for detail in _details(step)]
    lines += _homes(compiled)
    inlined = {n: i for n, i in compiled.nodes.items() if i.materialization == "ephemeral"}
    if inlined:
        lines += ["", "ephemeral transforms (no step; inlined as CTEs):"]
        for name, info in inlined.items():
            into = ", ".join(info.inlined_into) or "nothing reads it"
            lines.append(f"  {name} -> {into}")
    return "\n".join(lines) + "\n"


def _homes(compiled: plan.Plan) -> list[str]:
    """Where each node's table lives: the internal schema, or where users read."""
    internal = compiled.pipeline.internal_schema
    lines = []
    for name, info in compiled.nodes.items():
        if info.kind == "sink" or info.materialization == "ephemeral" or not info.connection:
            continue
        if info.external:
            where = f"reads {info.external}"
        elif info.internal:
            where = f"internal schema {internal}"
        else:
            where = "published (publish = true): the connection's own schema"
        lines.append(f"  {name}: {info.connection}, {where}")
    if not lines:
        return []
    return ["", "where the nodes' tables live (sinks write where they name):", *lines]


def _step(step: plan.Step) -> str:
    where = step.connection or "python"
    text = f"{step.id}: {step.kind} on {where}"
    if isinstance(step, plan.LoadStep | plan.SqlStep | plan.TransferStep) and step.materialization:
        text += f", {step.materialization}"
    return text


def _details(step: plan.Step) -> list[str]:
    details = []
    if step.inputs:
        details.append("after " + ", ".join(step.inputs))
    if isinstance(step, plan.Fusing) and step.fused:
        details.append("fuses " + ", ".join(step.fused))
    details += _payload(step)
    if isinstance(step, plan.Resolving) and step.resolve_at_run:
        names = ", ".join(step.resolve_at_run)
        details.append(f"planned again at run time, once the columns of {names} are known")
    details += [f"note: {note}" for note in step.notes]
    return details


def _payload(step: plan.Step) -> list[str]:
    """What the step's kind does, said in a line or two."""
    match step:
        case plan.SqlStep():
            binds = ", ".join(f":{p.name} ({p.type})" for p in step.parameters)
            return [
                *([f"binds {binds}"] if binds else []),
                *(["incremental: planned as a full refresh"] if step.incremental else []),
            ]
        case plan.LoadStep(source=source):
            more = len(source.urls) - 1
            others = f" and {more} more URL(s)" if more > 0 else ""
            pages = f" (a JSON API, paged by {source.api.paginate})" if source.api else ""
            return [f"reads {source.kind} {source.path}{others}{pages}"]
        case plan.PythonStep(python=python):
            isolated = " in a worker process (isolate)" if step.isolate else ""
            return [f"calls {python.path}:{python.function}{isolated}"]
        case plan.TransferStep(transfer=t):
            return [
                f"copies {t.node}: {t.from_connection or 'python'} -> {t.to_connection or 'python'}"
            ]
        case plan.CheckStep(check=check):
            return [f"tests {check.description}; on failure: {check.on_fail}"]
        case plan.ExportStep(sink=s):
            mode = _FILE_MODES.get((s.kind, s.mode), s.mode)
            where = s.table if isinstance(s, plan.TableSink) else s.path
            return [f"writes {s.kind} {where} ({mode})"]


# What a mode does to files, said where it is not what a table's mode does
_FILE_MODES = {
    ("parquet", "append"): "append: new files beside the old",
    ("parquet", "merge"): "merge: replaces the partitions it writes, keeps the others",
    ("csv", "append"): "append: rows added below the old",
}
