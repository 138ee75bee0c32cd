"""Python transforms and sources: loading, binding, data forms, output checks, user frames."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from flowc.runtime.errors import DataError, StepError
from flowc.runtime.io.columns import Column
from flowc.runtime.io.sources import read_python
from flowc.runtime.usercode.pyblocks import bind, data_form, run_transform
from flowc.runtime.usercode.userpy import to_reader
from hypothesis import given
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
TRIPS = pa.table({"VendorID": pa.array([1, 2], pa.int32()), "fare": [8.5, 9.0]})
ZONES = pa.table({"zone": ["Harlem", "Astoria"]})


def arrow_schema(**types: pa.DataType) -> pa.Schema:
    """A schema from names and types (in a form the pyarrow stubs accept)."""
    return pa.schema(list(types.items()))


def reader(table: pa.Table) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=1))


def block(root: Path, source: str, name: str = "blocks/b.py") -> str:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip())
    return name


def run(root: Path, entry: str, *, zones: bool = False, **columns: str) -> pa.Table:
    declared = [Column(n, t) for n, t in columns.items()] or None
    inputs = {"trips": reader(TRIPS)} | ({"zones": reader(ZONES)} if zones else {})
    return run_transform(root, entry, inputs, columns=declared, node="n").read_all()


def test_inputs_bind_by_name_else_by_position() -> None:
    def by_name(zones: object, trips: object) -> None: ...
    def by_position(a: object, b: object) -> None: ...
    def mixed(first: object, zones: object) -> None: ...

    assert bind(by_name, ["trips", "zones"]) == {"zones": "zones", "trips": "trips"}
    assert bind(by_position, ["trips", "zones"]) == {"a": "trips", "b": "zones"}
    assert bind(mixed, ["trips", "zones"]) == {"zones": "zones", "first": "trips"}
    with pytest.raises(StepError, match="takes 1 input"):
        bind(lambda only: None, ["trips", "zones"])
    with pytest.raises(StepError, match="no input for parameter"):
        bind(lambda a, b, c: None, ["trips", "zones"])


def test_pandas_by_default_with_the_green_taxi_rename_block(tmp_path: Path) -> None:
    shutil.copytree(REPO / "specs" / "green_taxi" / "blocks", tmp_path / "blocks")
    inputs = {"clean_trips": reader(TRIPS)}
    declared = [Column("vendor_id", "int"), Column("fare", "double")]
    out = run_transform(tmp_path, "blocks/rename.py:to_snake_case", inputs, columns=declared)
    assert out.schema == arrow_schema(vendor_id=pa.int32(), fare=pa.float64())
    assert out.read_all().column("vendor_id").to_pylist() == [1, 2]


def test_string_annotations_choose_arrow_and_batches(tmp_path: Path) -> None:
    entry = block(
        tmp_path,
        """
        from __future__ import annotations
        from collections.abc import Iterator
        import pyarrow as pa

        def f(zones: pa.Table, trips: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            assert isinstance(zones, pa.Table) and zones.num_rows == 2
            for batch in trips:
                assert isinstance(batch, pa.RecordBatch)
                yield batch.drop_columns(["fare"])
        """,
    )
    table = run(tmp_path, f"{entry}:f", zones=True, vendorid="bigint")
    assert table.to_pylist() == [{"vendorid": 1}, {"vendorid": 2}]


def test_annotations_only_type_checkers_can_resolve_are_read_as_text(tmp_path: Path) -> None:
    entry = block(
        tmp_path,
        """
        from __future__ import annotations
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            import pyarrow as pa

        def f(trips: pa.Table, zones: pa.Table) -> pa.Table:
            return trips.append_column("n", type(trips).from_pydict({"n": [1, 2]})["n"])
        """,
    )
    assert run(tmp_path, f"{entry}:f", zones=True).column("n").to_pylist() == [1, 2]
    assert data_form("pd.DataFrame") == "pandas"
    assert data_form("typing.Iterator[pa.RecordBatch]") == "batches"
    with pytest.raises(StepError, match="annotated `int`"):
        data_form(int, parameter="x")


def test_output_is_checked_against_declared_columns(tmp_path: Path) -> None:
    entry = block(
        tmp_path,
        """
        import pandas as pd

        def wrong_names(trips):
            return trips.rename(columns={"fare": "price"})

        def lossy(trips):
            trips["fare"] = [1.0, 2.5]
            return trips
        """,
    )
    with pytest.raises(StepError, match="has no column `fare`"):
        run(tmp_path, f"{entry}:wrong_names", VendorID="int", fare="double")
    with pytest.raises(StepError, match="undeclared column `fare`"):
        run(tmp_path, f"{entry}:lossy", VendorID="int")
    with pytest.raises(DataError, match=re.escape("row 2, column `fare`: 2.5 is not a valid int")):
        run(tmp_path, f"{entry}:lossy", VendorID="int", fare="int")


def test_a_user_exception_shows_only_the_users_frames(tmp_path: Path) -> None:
    entry = block(
        tmp_path,
        """
        def helper(frame):
            raise ValueError(f"bad fare in {len(frame)} rows")

        def f(trips):
            return helper(trips)
        """,
    )
    with pytest.raises(StepError) as caught:
        run(tmp_path, f"{entry}:f")
    error = caught.value
    assert error.node == "n"
    assert error.message == "`blocks/b.py:f` raised ValueError: bad fare in 2 rows"
    shown = error.user_traceback or ""
    assert 'b.py", line 5, in f' in shown and "line 2, in helper" in shown
    assert "ValueError: bad fare in 2 rows" in shown
    assert "flowc" not in shown and "importlib" not in shown
    assert str(error).startswith("n: `blocks/b.py:f` raised ValueError")


def test_an_exception_inside_a_returned_generator_is_the_users_too(tmp_path: Path) -> None:
    entry = block(
        tmp_path,
        """
        import pyarrow as pa

        def f(trips: pa.Table):
            for batch in trips.to_batches():
                yield batch
                raise KeyError("late")
        """,
    )
    entry_text = f"{entry}:f"
    with pytest.raises(StepError, match="raised KeyError") as caught:
        inputs = {"trips": reader(TRIPS)}
        run_transform(tmp_path, entry_text, inputs, node="n").read_all()
    assert "flowc" not in (caught.value.user_traceback or "")


def test_an_error_at_import_time_is_reported_with_its_frames(tmp_path: Path) -> None:
    entry = block(tmp_path, "x = 1 / 0\ndef f(trips):\n    return trips\n")
    with pytest.raises(StepError, match="raised ZeroDivisionError") as caught:
        run(tmp_path, f"{entry}:f")
    assert 'b.py", line 1, in <module>' in (caught.value.user_traceback or "")


def test_missing_file_or_function(tmp_path: Path) -> None:
    block(tmp_path, "def f():\n    pass\n")
    with pytest.raises(StepError, match="no Python file"):
        run(tmp_path, "blocks/none.py:f")
    with pytest.raises(StepError, match="defines no function `g`"):
        run(tmp_path, "blocks/b.py:g")


def test_python_sources_return_frames_tables_or_batches(tmp_path: Path) -> None:
    entry = block(
        tmp_path,
        """
        import pandas as pd
        import pyarrow as pa

        def frame(run_date):
            return pd.DataFrame({"id": [1, 2], "day": [run_date, run_date]})

        def table():
            return pa.table({"id": [3]})

        def batches():
            for i in range(3):
                yield pa.record_batch({"id": [i]})
        """,
        name="blocks/load.py",
    )
    declared = [Column("id", "bigint"), Column("day", "date")]
    params = {"run_date": "2020-10-01", "unused": 1}
    got = read_python(tmp_path, f"{entry}:frame", columns=declared, params=params).read_all()
    assert str(got.column("day")[0].as_py()) == "2020-10-01"
    assert read_python(tmp_path, f"{entry}:table").read_all().num_rows == 1
    streamed = read_python(tmp_path, f"{entry}:batches", columns=[Column("id", "int")])
    assert streamed.schema == arrow_schema(id=pa.int32())
    assert streamed.read_all().column("id").to_pylist() == [0, 1, 2]


# --- what a block returns (issue 12, item 13) -------------------------------------------------

WRONG_RESULTS: list[tuple[object, str]] = [
    ({"vendor_id": [1, 2]}, "returned a dict; a Python block returns a pandas DataFrame"),
    (None, "returned None; "),
    ("VendorID", "returned a str; "),
    (b"VendorID", "returned a bytes; "),
    (7, "returned an int; "),
    (pd.Series([1, 2]), "returned a pandas.Series; "),
    (np.array([1, 2]), "returned a numpy.ndarray; "),
    ((row for row in [{"vendor_id": 1}]), "yielded a dict (item 1); "),  # a list of them is rows
    ((batch for batch in [TRIPS.to_batches()[0], 3]), "yielded an int (item 2); "),
]


@pytest.mark.parametrize(("result", "said"), WRONG_RESULTS, ids=lambda v: type(v).__name__)
def test_a_wrong_result_says_what_it_got_and_what_is_accepted(result: object, said: str) -> None:
    with pytest.raises(StepError) as caught:
        to_reader(result, origin="`blocks/b.py:f`").read_all()
    message = caught.value.message
    assert message.startswith(f"`blocks/b.py:f` {said}"), message
    assert "RecordBatch" in message and "DataFrame" in message  # what is accepted


def test_a_list_of_dicts_is_rows() -> None:
    rows = [{"id": 1, "name": "a"}, {"id": 2, "extra": True}]
    table = to_reader(rows, origin="f").read_all()
    assert table.column_names == ["id", "name", "extra"]  # every key, in first-seen order
    assert table.to_pylist() == [
        {"id": 1, "name": "a", "extra": None},
        {"id": 2, "name": None, "extra": True},
    ]


def test_a_dict_of_columns_gets_the_fix() -> None:
    with pytest.raises(StepError, match=re.escape("return `pandas.DataFrame(d)`")):
        to_reader({"x": [1]}, origin="f")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


@given(json_values)
def test_whatever_a_block_returns_is_rows_or_a_step_error(value: object) -> None:
    try:
        to_reader(value, origin="f").read_all()
    except StepError as error:
        assert error.message.startswith(("f returned ", "f yielded ")), error.message
    else:  # only a list of dicts is rows (docs/language.md, Python blocks)
        rows = isinstance(value, list) and all(isinstance(r, dict) for r in value) and any(value)
        assert rows, f"{value!r} was taken for rows"


def test_an_empty_generator_with_declared_columns_is_zero_rows(tmp_path: Path) -> None:
    entry = block(tmp_path, "def f(trips):\n    return iter(())\n")
    assert run(tmp_path, f"{entry}:f", VendorID="int").num_rows == 0
    with pytest.raises(StepError, match=r"empty iterator: its columns are unknown \(declare"):
        run(tmp_path, f"{entry}:f")


def test_a_generator_left_unread_is_closed_and_its_clean_up_runs(tmp_path: Path) -> None:
    entry = block(
        tmp_path,
        """
        from pathlib import Path
        import pyarrow as pa

        def f(trips):
            try:
                yield pa.record_batch({"VendorID": pa.array([1], pa.int32())})
                yield pa.record_batch({"VendorID": pa.array(["x"])})  # not an int
            finally:
                Path(__file__).with_name("closed").write_text("yes")
                raise SystemExit(3)  # a clean-up that misbehaves too: the first ending wins
        """,
    )
    with pytest.raises(StepError, match=r"yielded a batch \(item 2\) whose values do not fit"):
        run(tmp_path, f"{entry}:f", VendorID="int")
    assert (tmp_path / "blocks" / "closed").read_text() == "yes"
