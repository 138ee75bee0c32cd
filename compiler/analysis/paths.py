"""The paths pass: where a spec writes and reads files is checked before anything runs.

A file sink (`parquet(...)`, `csv(...)`) writes under the project root, or under a folder
that flow.toml's `[project] allow_paths` names; never onto the project itself, its
`.flowc/` folder (run history, warehouse, caches), flow.toml or `.env`, a warehouse file, a
spec, a file the spec reads (`file(...)` SQL, a Python block) or a source's input, nor onto
a folder that holds one of those. A URL (`gs://...`) is not a local path: sinks write local
files only. `~` at the start of a path is the user's home folder (so it is outside the
project unless allowed). A sink's `mode` must be one its kind can honour. `file(...)` and
`python = "path:function"` paths obey the same root rule (`outside`, used by the names
pass). Everything here is computed from the text of the paths and flow.toml (recorded as
read, so that the check cache sees a change of `allow_paths` or of a warehouse path).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from flowc.compiler import ir
from flowc.compiler.diagnostics import Diagnostics
from flowc.compiler.driver import reads
from flowc.project.spans import Span

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")
_GLOB = re.compile(r"[*?\[{]")
FILE_SINKS = ("parquet", "csv")
ALLOW_HINT = (
    "to use a folder outside the project, list it in flow.toml: `[project] allow_paths = [...]`"
)


def resolve(root: Path, text: str) -> Path:
    """The absolute, normalized path that `text` names: relative to `root`, `~` expanded.
    Symbolic links are not followed: a link inside the project is a path inside it."""
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = root.absolute() / path
    return Path(os.path.normpath(path))


def within(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or below it (both absolute and normalized)."""
    return path == folder or folder in path.parents


def outside(root: Path, allow: Sequence[str], text: str) -> bool:
    """Whether the path `text` lies outside the project root and every allowed folder."""
    path = resolve(root, text)
    return not any(within(path, resolve(root, folder)) for folder in (".", *allow))


def url_scheme(text: str) -> str | None:
    """The scheme of a URL (`gs`, `s3`, `https`), None for a local path."""
    found = _URL.match(text)
    return found.group("scheme") if found else None


@dataclass(frozen=True)
class _Protected:
    path: Path
    what: str
    inside_too: bool = True  # writing below it is as bad (false: the project root)


def check_paths(
    spec: ir.Spec,
    root: Path,
    allow: Sequence[str],
    warehouses: Sequence[str],
    diagnostics: Diagnostics,
) -> None:
    """Report every file sink that writes where it must not, or in a mode it cannot honour."""
    reads.read_bytes(root / "flow.toml")  # what `allow` and `warehouses` come from
    protected = list(_protected(spec, root, warehouses))
    for node in spec.nodes:
        if not isinstance(node, ir.SinkNode) or node.to is None or node.to.name not in FILE_SINKS:
            continue
        if not node.to.args or not isinstance(node.to.args[0], ir.Str):
            continue
        value = node.to.args[0]
        if _check_target(value, root, allow, protected, diagnostics):
            # one target per sink: a sink's folder replaced would drop another sink's files
            what = f"the target of sink `{node.name}`"
            protected.append(_Protected(resolve(root, value.value), what))
        _check_mode(node, node.to, diagnostics)


def _check_target(
    value: ir.Str,
    root: Path,
    allow: Sequence[str],
    protected: list[_Protected],
    diagnostics: Diagnostics,
) -> bool:
    """Whether the sink's path is one it may write (else the reason is reported)."""
    text = value.value
    scheme = url_scheme(text)
    if scheme is not None:
        hint = "write a local path, then copy the files with your storage's own tool"
        diagnostics.report("F0232", value.span, path=text, scheme=scheme, hint=hint)
        return False
    if outside(root, allow, text):
        where = f" (it is {resolve(root, text)})" if text.startswith("~") else ""
        diagnostics.report("F0230", value.span, path=text, where=where, hint=ALLOW_HINT)
        return False
    target = resolve(root, text)
    for guarded in protected:
        what = _relation(target, guarded)
        if what is not None:
            hint = "write to a folder of its own, such as `out/...`"
            diagnostics.report("F0231", value.span, path=text, what=what, hint=hint)
            return False
    if target.suffix == ".flow":
        hint = "write to a folder of its own, such as `out/...`"
        diagnostics.report("F0231", value.span, path=text, what="is a spec file", hint=hint)
        return False
    return True


def _relation(target: Path, guarded: _Protected) -> str | None:
    """How `target` collides with `guarded` ("is ...", "holds ...", "is inside ..."), if it does."""
    if target == guarded.path:
        return "is " + guarded.what
    if within(guarded.path, target):
        return "holds " + guarded.what
    if guarded.inside_too and within(target, guarded.path):
        return "is inside " + guarded.what
    return None


def _protected(spec: ir.Spec, root: Path, warehouses: Sequence[str]) -> Iterator[_Protected]:
    """What no sink may write over, nor sit inside, nor hold."""
    yield _Protected(resolve(root, "."), "the project root", inside_too=False)
    yield _Protected(resolve(root, ".flowc"), "flowc's own folder (run history, warehouse)")
    yield _Protected(resolve(root, "flow.toml"), "the project's flow.toml")
    yield _Protected(resolve(root, ".env"), "the project's .env")
    yield _Protected(Path(os.path.normpath(Path(spec.file).absolute())), "this spec")
    for path in warehouses:
        yield _Protected(resolve(root, path), f"the warehouse file `{path}`")
    for node in spec.nodes:
        yield from _read_by(node, root)


def _read_by(node: ir.Node, root: Path) -> Iterator[_Protected]:
    if isinstance(node, ir.SourceNode) and node.from_ is not None:
        call = node.from_
        if call.name in ("csv", "parquet", "json") and call.args:
            path = call.args[0]
            if isinstance(path, ir.Str) and url_scheme(path.value) is None:
                prefix = _GLOB.split(path.value, maxsplit=1)[0]
                fixed = prefix if prefix == path.value else str(Path(prefix + "x").parent)
                yield _Protected(resolve(root, fixed), f"the input of source `{node.name}`")
    python = getattr(node, "python", None)
    if isinstance(python, ir.PythonEntry):
        yield _Protected(resolve(root, python.path), f"the Python block of `{node.name}`")
    sql = getattr(node, "sql", None)
    if isinstance(sql, ir.SqlBody) and sql.from_file:
        file = Path(os.path.normpath(Path(sql.file).absolute()))
        yield _Protected(file, f"the SQL file of `{node.name}`")


def _check_mode(node: ir.SinkNode, to: ir.Call, diagnostics: Diagnostics) -> None:
    """`replace` and `append` suit every file sink; `merge` suits a partitioned Parquet sink
    whose key is its partition columns (a merge then replaces the partitions it writes)."""
    if node.mode is None or node.mode.parts[0] != "merge" or not node.key:
        return  # no key: F0220 already says so
    partitions = _refs(to.keyword("partition_by"))
    keys = [k.dotted.lower() for k in node.key]
    if to.name == "parquet" and partitions and sorted(keys) == sorted(partitions):
        return
    if to.name == "parquet":
        detail = "a Parquet sink merges whole partitions: its `key` must be its `partition_by`"
        hint = 'partition by the key: `parquet("out/x", partition_by = [day])` with `key = [day]`'
    else:
        detail = "a CSV file cannot replace some of its rows in place"
        hint = "use `mode = append` or `replace`, or a partitioned Parquet or table sink"
    _report_mode(node.mode.span, to.name, detail, hint, diagnostics)


def _report_mode(span: Span, kind: str, detail: str, hint: str, diagnostics: Diagnostics) -> None:
    diagnostics.report("F0233", span, kind=kind, mode="merge", detail=detail, hint=hint)


def _refs(keyword: ir.Keyword | None) -> list[str]:
    if keyword is None:
        return []
    value = keyword.value
    items = value.items if isinstance(value, ir.ListValue) else (value,)
    return [item.dotted.lower() for item in items if isinstance(item, ir.Ref)]
