"""Check a Python entry point `"blocks/rename.py:to_snake_case"` without importing it.

The file is parsed with `ast`, never executed: `flowc check` must not run user code.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Sequence
from pathlib import Path

from flowc.compiler import ir
from flowc.compiler.analysis import paths
from flowc.compiler.diagnostics import Diagnostics, did_you_mean
from flowc.compiler.driver import reads

_EXAMPLE = 'python = "blocks/rename.py:to_snake_case"'


def check_entry_point(
    value: ir.Str, root: Path, diagnostics: Diagnostics, *, allow: Sequence[str] = ()
) -> ir.PythonEntry | None:
    """The entry point named by `value`, if its file exists (under the project root or an
    allowed folder) and defines the function."""
    path_text, _, function = value.value.rpartition(":")
    if not path_text or not function.isidentifier() or not path_text.endswith(".py"):
        detail = f'`"{value.value}"` is not of the form "path/to/file.py:function"'
        diagnostics.report("F0217", value.span, detail=detail, hint=f"for example: {_EXAMPLE}")
        return None
    if paths.outside(root, allow, path_text):
        where = " (Python blocks are read under the project root)"
        diagnostics.report("F0230", value.span, path=path_text, where=where, hint=paths.ALLOW_HINT)
        return None
    path = root / path_text
    source = reads.read_bytes(path)
    if source is None:
        diagnostics.report("F0216", value.span, path=path_text, hint=f"the project root is {root}")
        return None
    functions = _top_level_functions(path, source, value, diagnostics)
    if functions is None:
        return None
    if function not in functions:
        hint = did_you_mean(function, functions) or _defined(functions)
        detail = f"`{path_text}` defines no top-level function `{function}`"
        diagnostics.report("F0217", value.span, detail=detail, hint=hint)
        return None
    arguments = functions[function]
    return ir.PythonEntry(path=path_text, function=function, span=value.span, arguments=arguments)


def _top_level_functions(
    path: Path, source: bytes, value: ir.Str, diagnostics: Diagnostics
) -> dict[str, tuple[str, ...]] | None:
    """The file's top-level functions and the names of their parameters."""
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as error:
        detail = f"`{path.name}` has a Python syntax error at line {error.lineno}: {error.msg}"
        diagnostics.report("F0217", value.span, detail=detail)
        return None
    except ValueError as error:
        diagnostics.report("F0107", value.span, path=str(path), reason=str(error))
        return None
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        node.name: tuple(
            a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)
        )
        for node in tree.body
        if isinstance(node, kinds)
    }


def _defined(functions: Collection[str]) -> str:
    if not functions:
        return "the file defines no functions"
    return "it defines: " + ", ".join(f"`{f}`" for f in sorted(functions))
