"""Declared columns at run time: their Arrow types, and batches conformed to them.

A declared column (`columns { fare decimal(10, 2) not null }`) is a contract on the data, so
every batch entering the pipeline from a file, a URL or a Python block passes `conform`:
columns are matched *by name* (case-insensitively, as DuckDB compares names; the output keeps
the declared spelling and order), cast to the declared type, and checked for `not null`. A
value that does not fit fails with a `DataError` naming where it came from, its 1-based row
and its column. Casts are safe casts: nothing is truncated, rounded or wrapped (`8.555` is not
a `decimal(10, 2)`, `3000000000` is not an `int`).
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, Protocol

import pyarrow as pa
import pyarrow.compute as pc
from flowc.runtime.errors import DataError, StepError

Extra = Literal["drop", "error"]  # columns the data has but does not declare
Missing = Literal["error", "null"]  # declared columns the data lacks


class ColumnLike(Protocol):
    """Anything that declares a column: the compiler's IR and plan columns both do."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def not_null(self) -> bool: ...


@dataclass(frozen=True)
class Column:
    """A declared column, for callers that have no compiler object at hand."""

    name: str
    type: str
    not_null: bool = False


_TYPE = re.compile(r"^\s*([a-z_ ]+?)\s*(?:\(\s*([0-9,\s]*)\))?\s*$", re.IGNORECASE)
_SIMPLE: dict[str, pa.DataType] = {
    "smallint": pa.int16(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "float": pa.float32(),
    "real": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "interval": pa.month_day_nano_interval(),
    "blob": pa.binary(),
    "bytea": pa.binary(),
    **{text: pa.string() for text in ("varchar", "char", "text", "string", "json", "uuid")},
}


def arrow_type(type_text: str) -> pa.DataType | None:
    """The Arrow type of a declared type name; None when flowc cannot tell (`unknown`).

    >>> arrow_type("decimal(10, 2)")
    Decimal128Type(decimal128(10, 2))
    >>> arrow_type("INT")
    DataType(int32)
    """
    match = _TYPE.match(type_text)
    if match is None:
        return None
    name = match.group(1).lower()
    args = [int(a) for a in (match.group(2) or "").split(",") if a.strip()]
    if name in ("decimal", "numeric"):
        precision, scale = (args + [18, 3][len(args) :])[:2]
        return (
            pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
        )
    return _SIMPLE.get(name)


def flow_type(kind: pa.DataType) -> str:
    """The type name a spec would declare for an Arrow type (`unknown` for nested types).

    >>> flow_type(pa.decimal128(10, 2)), flow_type(pa.timestamp("us", tz="UTC"))
    ('decimal(10, 2)', 'timestamptz')
    """
    if pa.types.is_decimal(kind):
        return f"decimal({kind.precision}, {kind.scale})"
    if pa.types.is_timestamp(kind):
        return "timestamptz" if kind.tz else "timestamp"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "varchar"
    for name in ("smallint", "int", "bigint", "float", "double", "boolean", "date", "blob"):
        if kind == _SIMPLE.get(name):
            return name
    if pa.types.is_integer(kind):
        return "bigint"
    return "unknown"


def match_names(
    declared: Sequence[str],
    actual: Sequence[str],
    origin: str,
    *,
    extra: Extra = "drop",
    missing: Missing = "error",
) -> dict[str, str | None]:
    """Map each declared name to the actual column holding it, compared case-insensitively
    (None: absent, where `missing="null"` allows it).

    >>> match_names(["VendorID"], ["vendorid", "x"], "a.csv")
    {'VendorID': 'vendorid'}
    """
    by_key: dict[str, list[str]] = {}
    for name in actual:
        by_key.setdefault(name.lower(), []).append(name)
    ambiguous = sorted(n for n in declared if len(by_key.get(n.lower(), [])) > 1)
    if ambiguous:
        raise StepError(f"{origin}: more than one column is named {_names(ambiguous)}")
    absent = [n for n in declared if n.lower() not in by_key]
    if absent and missing == "error":
        raise StepError(f"{origin} has no column {_names(absent)} (it has {_names(actual)})")
    if extra == "error":
        keys = {n.lower() for n in declared}
        undeclared = [n for n in actual if n.lower() not in keys]
        if undeclared:
            raise StepError(f"{origin} has undeclared column {_names(undeclared)}")
    return {n: by_key[n.lower()][0] if n.lower() in by_key else None for n in declared}


def _names(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) or "none"


@dataclass(frozen=True)
class Conformer:
    """Conforms batches from one `origin` to `columns`; `line_offset` turns a 1-based row
    into a line of the file (1 for a CSV with a header row, None when lines mean nothing)."""

    columns: tuple[ColumnLike, ...]
    origin: str
    extra: Extra = "drop"
    missing: Missing = "error"
    line_offset: int | None = None

    def batch(self, batch: pa.RecordBatch, first_row: int = 1) -> pa.RecordBatch:
        """`batch` with the declared columns only, in declared order and types."""
        names = self._names(batch.schema)
        arrays = [
            self._column(_column_or_nulls(batch, names[c.name], c), c, first_row)
            for c in self.columns
        ]
        return pa.RecordBatch.from_arrays(arrays, names=[c.name for c in self.columns])

    def stream(
        self, batches: Iterable[pa.RecordBatch], first_row: int = 1
    ) -> Iterator[pa.RecordBatch]:
        """Every batch conformed, rows numbered from `first_row` across the whole stream."""
        row = first_row
        for batch in batches:
            yield self.batch(batch, row)
            row += batch.num_rows

    def schema(self, actual: pa.Schema) -> pa.Schema:
        """The schema `batch` produces from batches of schema `actual`."""
        names = self._names(actual)
        fields = []
        for column in self.columns:
            name = names[column.name]
            kind = arrow_type(column.type)
            if kind is None:
                kind = actual.field(name).type if name is not None else pa.null()
            fields.append(pa.field(column.name, kind))
        return pa.schema(fields)

    def schema_names(self, actual: pa.Schema) -> list[str | None]:
        """The actual name of each declared column (None where it may be missing)."""
        names = self._names(actual)
        return [names[c.name] for c in self.columns]

    def _names(self, actual: pa.Schema) -> dict[str, str | None]:
        declared = [c.name for c in self.columns]
        return match_names(
            declared, actual.names, self.origin, extra=self.extra, missing=self.missing
        )

    def _column(self, array: pa.Array[Any], column: ColumnLike, first_row: int) -> pa.Array[Any]:
        target = arrow_type(column.type)
        if target is not None and array.type != target:
            array = self._cast(array, target, column, first_row)
        if column.not_null and array.null_count:
            index = pc.index(pc.is_null(array), True).as_py()
            self._fail(first_row + index, column, "is empty (NULL) but declared `not null`")
        return array

    def _cast(
        self, array: pa.Array[Any], target: pa.DataType, column: ColumnLike, first_row: int
    ) -> pa.Array[Any]:
        try:
            return pc.cast(array, target, safe=True)
        except pa.ArrowNotImplementedError:
            message = f"column `{column.name}` of type {array.type} cannot become {column.type}"
            raise StepError(f"{self.origin}: {message}") from None
        except pa.ArrowInvalid:
            index = _first_bad_row(array, target)
            value = array[index].as_py()
            self._fail(first_row + index, column, _not_valid(value, target, column.type))

    def _fail(self, row: int, column: ColumnLike, problem: str) -> NoReturn:
        line = "" if self.line_offset is None else f" (line {row + self.line_offset})"
        raise DataError(self.origin, row, column.name, problem, line=line)


def _not_valid(value: object, target: pa.DataType, declared: str) -> str:
    """Why `value` is not of the declared type, where the type's limits say it.

    >>> _not_valid("1.2345", pa.decimal128(10, 2), "decimal(10, 2)").split(":")[0]
    "'1.2345' has 4 decimal places, more than decimal(10, 2) keeps (2)"
    >>> _not_valid("abc", pa.int32(), "int")
    "'abc' is not a valid int"
    """
    invalid = f"{value!r} is not a valid {declared}"
    if not isinstance(target, pa.Decimal128Type | pa.Decimal256Type) or value is None:
        return invalid
    try:
        number = decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        return invalid
    if not number.is_finite():
        return f"{value!r} is not a number a {declared} can hold"
    exponent = number.as_tuple().exponent
    places = max(0, -exponent) if isinstance(exponent, int) else 0
    if places > target.scale:
        return (
            f"{value!r} has {places} decimal places, more than {declared} keeps "
            f"({target.scale}): round it in a transform or declare more places"
        )
    whole = len(str(abs(int(number)))) if abs(number) >= 1 else 0
    if whole > target.precision - target.scale:
        return (
            f"{value!r} has {whole} digits before the point, more than {declared} holds "
            f"({target.precision - target.scale}): declare a wider decimal"
        )
    return invalid


def _column_or_nulls(batch: pa.RecordBatch, name: str | None, column: ColumnLike) -> pa.Array[Any]:
    if name is not None:
        return batch.column(name)
    nulls: pa.Array[Any] = pa.array([None] * batch.num_rows, arrow_type(column.type) or pa.null())
    return nulls


def _first_bad_row(array: pa.Array[Any], target: pa.DataType) -> int:
    """The index of the first value that does not cast: the shortest failing prefix."""
    low, high = 0, len(array) - 1
    while low < high:
        middle = (low + high) // 2
        if _casts(array.slice(0, middle + 1), target):
            low = middle + 1
        else:
            high = middle
    return low


def _casts(array: pa.Array[Any], target: pa.DataType) -> bool:
    try:
        pc.cast(array, target, safe=True)
    except pa.ArrowInvalid:
        return False
    return True


def declared_schema(columns: Sequence[ColumnLike]) -> pa.Schema | None:
    """The Arrow schema of `columns`, or None when a type is unknown (read it from the data)."""
    fields = []
    for column in columns:
        kind = arrow_type(column.type)
        if kind is None:
            return None
        fields.append(pa.field(column.name, kind))
    return pa.schema(fields)
