"""Python transforms: a user's function called with its inputs, its result checked.

`transform snake_trips { python = "blocks/rename.py:to_snake_case"  inputs = [clean_trips] }`

Binding. Each input binds to the parameter of the same name; the inputs left over bind, in
their `inputs = [...]` order, to the parameters left over, in signature order. So a function
may name its parameters after the nodes, or call them anything and take them by position,
or mix the two.

Data forms, chosen per parameter by its annotation (string annotations, as written under
`from __future__ import annotations`, are resolved, or else read as text):

- none, or `pandas.DataFrame`: a DataFrame (the default); decimal columns are Arrow-backed
  (`pd.ArrowDtype`), so amounts stay exact and need no conversion to Python objects;
- `pyarrow.Table`: the whole input as one table;
- `Iterator[pyarrow.RecordBatch]` (or `Iterable`, `Generator`): the batches, streamed;
- `pyarrow.RecordBatchReader`: the reader itself.

The result may be any of these forms too. With declared `columns`, it must have exactly
those columns (compared case-insensitively, in any order; no more, no fewer), and every value
must cast to its declared type; it is streamed on in declared order and types.
"""

from __future__ import annotations

import collections.abc
import inspect
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
from flowc.runtime.errors import StepError
from flowc.runtime.io.columns import ColumnLike, Conformer, declared_schema
from flowc.runtime.usercode import userpy

Form = Literal["pandas", "arrow", "batches", "reader"]
_ITERATORS = (
    collections.abc.Iterator,
    collections.abc.Iterable,
    collections.abc.Generator,
)
_TEXT_FORMS: dict[str, Form] = {
    "DataFrame": "pandas",
    "Table": "arrow",
    "RecordBatchReader": "reader",
}
_FORMS_TEXT = "pandas.DataFrame, pyarrow.Table or Iterator[pyarrow.RecordBatch]"


def run_transform(
    root: Path,
    entry: str,
    inputs: Mapping[str, pa.RecordBatchReader],
    *,
    columns: Sequence[ColumnLike] | None = None,
    node: str | None = None,
) -> pa.RecordBatchReader:
    """Call the transform `entry` (`path.py:function`) on `inputs` (in declared order) and
    stream its result, checked against `columns` when they are declared."""
    function = userpy.load_function(root, entry, node=node)
    binding = bind(function, list(inputs), node=node)
    forms = parameter_forms(function, node=node)
    kwargs = {param: as_form(inputs[name], forms[param]) for param, name in binding.items()}
    what = f"`{entry}`"
    result = userpy.call_user(function, root=root, node=node, what=what, **kwargs)

    def guard(items: Iterable[object]) -> Iterator[object]:
        return userpy.guarded(items, root=root, node=node, what=what)

    empty = declared_schema(columns) if columns else None
    reader = userpy.to_reader(result, origin=what, guard=guard, empty=empty)
    if columns is None:
        return reader
    conformer = Conformer(tuple(columns), f"the result of {what}", extra="error")
    schema = conformer.schema(reader.schema)
    return pa.RecordBatchReader.from_batches(schema, conformer.stream(reader))


def bind(
    function: Callable[..., Any], inputs: Sequence[str], *, node: str | None = None
) -> dict[str, str]:
    """Parameter name → input name: by name first, then the rest by position.

    >>> def f(zones, trips_df): ...
    >>> bind(f, ["trips", "zones"])
    {'zones': 'zones', 'trips_df': 'trips'}
    """
    parameters = _data_parameters(function)
    names = {p.name for p in parameters if p.kind != p.POSITIONAL_ONLY}
    binding = {name: name for name in inputs if name in names}
    left = [p for p in parameters if p.name not in binding and p.kind != p.KEYWORD_ONLY]
    rest = [name for name in inputs if name not in binding]
    if len(rest) > len(left):
        taken = ", ".join(p.name for p in parameters) or "none"
        raise StepError(
            f"the function takes {len(parameters)} input(s) ({taken}) "
            f"but the node has {len(inputs)}: {', '.join(inputs)}",
            node=node,
        )
    binding.update({p.name: name for p, name in zip(left, rest, strict=False)})
    unbound = [p.name for p in parameters if p.name not in binding and p.default is p.empty]
    if unbound:
        raise StepError(f"no input for parameter(s) {', '.join(unbound)}", node=node)
    return binding


def _data_parameters(function: Callable[..., Any]) -> list[inspect.Parameter]:
    kinds = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )
    return [p for p in inspect.signature(function).parameters.values() if p.kind in kinds]


def parameter_forms(function: Callable[..., Any], *, node: str | None = None) -> dict[str, Form]:
    """The data form each parameter asks for by its annotation."""
    try:
        signature = inspect.signature(function, eval_str=True)
    except Exception:  # an annotation naming something imported only for type checkers
        signature = inspect.signature(function)
    return {
        name: data_form(p.annotation, parameter=name, node=node)
        for name, p in signature.parameters.items()
    }


def data_form(annotation: object, *, parameter: str = "", node: str | None = None) -> Form:
    """The form an annotation asks for (see the module docs).

    >>> data_form("Iterator[pa.RecordBatch]")
    'batches'
    """
    if annotation is inspect.Parameter.empty or annotation is None:
        return "pandas"
    form = _text_form(annotation) if isinstance(annotation, str) else _type_form(annotation)
    if form is None:
        written = inspect.formatannotation(annotation)
        raise StepError(
            f"parameter `{parameter}` is annotated `{written}`; flowc passes {_FORMS_TEXT}",
            node=node,
        )
    return form


def _type_form(annotation: object) -> Form | None:
    if annotation is pd.DataFrame:
        return "pandas"
    if annotation is pa.Table:
        return "arrow"
    if annotation is pa.RecordBatchReader:
        return "reader"
    if typing.get_origin(annotation) in _ITERATORS:
        return "batches"
    return None


def _text_form(text: str) -> Form | None:
    text = text.replace(" ", "")
    if text.split("[")[0].rsplit(".", 1)[-1] in ("Iterator", "Iterable", "Generator"):
        return "batches"
    last = text.rsplit(".", 1)[-1]
    forms: dict[str, Form] = {
        "DataFrame": "pandas",
        "Table": "arrow",
        "RecordBatchReader": "reader",
    }
    return forms.get(last)


def as_form(reader: pa.RecordBatchReader, form: Form) -> object:
    """An input in the form a parameter asked for."""
    if form == "reader":
        return reader
    if form == "batches":
        return iter(reader)
    table = reader.read_all()
    if form == "arrow":
        return table
    # each column's Arrow memory is released as soon as it is converted: the peak is about
    # one copy of the input, not two
    return table.to_pandas(types_mapper=_pandas_type, split_blocks=True, self_destruct=True)


def _pandas_type(arrow: pa.DataType) -> pd.ArrowDtype | None:
    """Decimals stay Arrow-backed in pandas: exact, and no Python object per value."""
    return pd.ArrowDtype(arrow) if pa.types.is_decimal(arrow) else None
