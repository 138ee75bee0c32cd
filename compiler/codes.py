"""The registry of diagnostic codes and their message texts.

Every diagnostic flowc emits has a stable code from this table. Messages are `str.format`
templates filled by the pass that reports them; `docs/errors.md` lists every code with a
failing example, and a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True)
class Code:
    code: str
    severity: Severity
    title: str
    template: str


def _codes(*codes: Code) -> dict[str, Code]:
    return {code.code: code for code in codes}


CODES: dict[str, Code] = _codes(
    # F01xx: reading and parsing a .flow file
    Code("F0101", "error", "syntax error", "{detail}"),
    Code("F0102", "error", "unterminated string", 'unterminated string: missing closing `"`'),
    Code(
        "F0103",
        "error",
        "unterminated raw string",
        'unterminated raw string opened here: missing closing `"""`',
    ),
    Code("F0104", "error", "unclosed block", "expected `}}` to close `{block}` opened at {opened}"),
    Code("F0105", "error", "invalid escape", "invalid escape sequence `{escape}` in string"),
    Code("F0106", "error", "unexpected character", "unexpected character `{char}`"),
    Code("F0107", "error", "unreadable file", "cannot read `{path}`: {reason}"),
    Code(
        "F0108",
        "error",
        "unmatched closing brace",
        "unexpected `{char}`: nothing is open here to close",
    ),
    # F02xx: structure, names and references
    Code("F0201", "error", "missing pipeline", "no `pipeline` block in this file"),
    Code(
        "F0202",
        "error",
        "second pipeline",
        "a file holds exactly one `pipeline` block; this is a second one",
    ),
    Code("F0203", "error", "duplicate node", "`{name}` is defined more than once"),
    Code("F0204", "error", "duplicate attribute", "`{name}` is set more than once in {block}"),
    Code("F0205", "error", "unknown attribute", "`{name}` is not an attribute of {where}"),
    Code("F0206", "error", "unknown block kind", "unknown block kind `{kind}`"),
    Code("F0207", "error", "unknown kind", "unknown {what} kind `{kind}`"),
    Code("F0208", "error", "unknown node", "unknown node `{name}`"),
    Code(
        "F0209", "error", "unknown connection", "unknown connection `{name}` in profile `{profile}`"
    ),
    Code("F0210", "error", "missing attribute", "{where} needs {needed}"),
    Code("F0211", "error", "conflicting attributes", "{where} sets both `{first}` and `{second}`"),
    Code("F0212", "error", "wrong value", "`{name}` must be {expected}, not {got}"),
    Code("F0213", "error", "bad arguments", "{detail}"),
    Code("F0214", "error", "unknown check", "unknown check `{name}` in `expect`"),
    Code("F0215", "error", "unknown sub-block", "`{name} {{ ... }}` is not a block of {where}"),
    Code("F0216", "error", "missing file", "file `{path}` does not exist under the project root"),
    Code("F0217", "error", "bad python entry point", "{detail}"),
    Code("F0218", "error", "unknown type", "unknown column type `{name}`"),
    Code("F0219", "error", "duplicate column", "column `{name}` is declared more than once"),
    Code("F0220", "error", "sink mode needs key", "`mode = merge` needs `key = [...]`"),
    Code(
        "F0221",
        "error",
        "incremental needs key",
        "`materialize = incremental` needs `unique_key` or `time_column`",
    ),
    Code("F0222", "error", "misplaced item", "{detail}"),
    Code(
        "F0223",
        "error",
        "template variable not given",
        "`{{{name}}}` in the URL of `{node}` is given neither by `each` nor by a parameter",
    ),
    Code(
        "F0224",
        "error",
        "unknown pagination",
        "unknown pagination {kind}: next, link, cursor, offset or page",
    ),
    Code("F0225", "error", "invalid http option", "{detail}"),
    Code("F0226", "error", "unknown schema", "unknown schema `{name}`"),
    Code(
        "F0227",
        "error",
        "columns given twice",
        "`{node}` has both `columns = {name}` and a `columns {{ ... }}` block",
    ),
    # F023x: where sinks, SQL files and Python blocks may be
    Code(
        "F0230", "error", "path outside the project", "`{path}` is outside the project root{where}"
    ),
    Code("F0231", "error", "protected path", "a sink cannot write `{path}`: it {what}"),
    Code(
        "F0232",
        "error",
        "unsupported URL",
        "`{path}`: a sink writes local files; `{scheme}://` URLs are not supported",
    ),
    Code("F0233", "error", "sink mode not supported", "`mode = {mode}` on a {kind} sink: {detail}"),
    # F03xx: SQL and schemas
    Code("F0301", "error", "unknown column", "unknown column `{name}`"),
    Code("F0302", "error", "ambiguous column", "column `{name}` is ambiguous: it is in {tables}"),
    Code(
        "F0303",
        "error",
        "unknown table",
        "unknown table `{name}`: no node or `table(...)` source has that name",
    ),
    Code("F0304", "error", "SQL syntax error", "SQL syntax error: {detail}"),
    Code("F0305", "error", "not a query", "a SQL transform holds one SELECT query; this is {got}"),
    Code(
        "F0306",
        "error",
        "expect names missing column",
        "`{check}` names unknown column `{name}` of `{node}`",
    ),
    Code(
        "F0307",
        "warning",
        "schema unknown",
        "the columns of `{node}` cannot be known offline: {reason}",
    ),
    Code("F0308", "error", "unsupported in dialect", "{detail}"),
    Code(
        "F0309",
        "error",
        "not readable",
        "`{name}` is a sink; SQL can read sources and transforms only",
    ),
    Code("F0310", "error", "invalid SQL expression", "invalid SQL in `check(...)`: {detail}"),
    Code(
        "F0311",
        "error",
        "duplicate output column",
        "the query outputs column `{name}` more than once",
    ),
    Code(
        "F0312",
        "note",
        "columns from a file header",
        "the columns of `{node}` are read from the header of `{path}`",
    ),
    Code("F0313", "error", "invalid table name", "`{name}` cannot be a table name: {detail}"),
    # F04xx: the graph
    Code("F0401", "error", "cycle", "cycle in the pipeline: {path}"),
    # F05xx: parameters
    Code(
        "F0501",
        "error",
        "undeclared parameter",
        "parameter `:{name}` is not declared in `pipeline {{ params {{ ... }} }}`",
    ),
    Code(
        "F0502",
        "error",
        "parameter value type",
        "default of `{name}` must be of type `{type}`: {detail}",
    ),
    Code("F0503", "error", "unknown parameter type", "unknown parameter type `{name}`"),
    Code("F0504", "error", "duplicate parameter", "parameter `{name}` is declared more than once"),
    Code(
        "F0505", "warning", "unused parameter", "parameter `{name}` is declared but no SQL uses it"
    ),
    Code(
        "F0506",
        "error",
        "reserved parameter name",
        "parameter `{name}`: names starting with `flowc_` are flowc's own",
    ),
    # F06xx: flow.toml, profiles and connections
    Code("F0601", "error", "invalid flow.toml", "flow.toml is not valid TOML: {detail}"),
    Code("F0602", "error", "unknown profile", "unknown profile `{name}`"),
    Code(
        "F0603", "error", "unknown connection type", "connection `{name}` has unknown type `{type}`"
    ),
    Code("F0604", "error", "missing connection key", "connection `{name}` ({type}) needs `{key}`"),
    Code(
        "F0605",
        "error",
        "missing environment variable",
        "environment variable `{var}` is not set (used by {where})",
    ),
    Code("F0606", "error", "invalid connection value", "{detail}"),
    Code(
        "F0607",
        "warning",
        "unknown connection key",
        "connection `{name}` ({type}) has no setting `{key}`",
    ),
    Code("F0608", "error", "invalid project setting", "{detail}"),
    # F07xx: schedules and durations
    Code("F0701", "error", "invalid cron", "invalid cron expression `{expr}`: {detail}"),
    Code("F0702", "error", "invalid duration", "invalid duration `{value}`"),
    # F072x: how Python blocks run
    Code(
        "F0720",
        "warning",
        "isolate without a Python block",
        "`isolate` applies to Python blocks; `{node}` {runs}",
    ),
    # F08xx: unit tests (`test` blocks)
    Code("F0801", "error", "test of unknown node", "unknown node `{name}` in `test {test}`"),
    Code("F0802", "error", "node not testable", "`{name}` is a {kind}; a test runs a transform"),
    Code("F0803", "error", "input not read", "`{node}` does not read `{name}`"),
    Code("F0804", "error", "unknown fixture column", "`{name}` is not a column of `{node}`"),
    Code("F0805", "error", "fixture value type", "{what} is `{type}`: {detail}"),
    Code(
        "F0806",
        "error",
        "row length",
        "this row has {got} value(s); the header names {want} column(s)",
    ),
    Code(
        "F0807",
        "error",
        "unknown test parameter",
        "parameter `{name}` is not declared in `pipeline {{ params {{ ... }} }}`",
    ),
    # F09xx: flowc itself
    Code("F0901", "error", "internal error", "internal error in flowc: {detail}"),
    # F10xx: running a step (reported by `flowc run`, not by `flowc check`)
    Code("F1001", "error", "SQL refused at run time", "the engine refused the SQL of `{node}`"),
)


def lookup(code: str) -> Code:
    return CODES[code]
