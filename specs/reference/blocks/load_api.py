"""The `custom` source: a Python block that loads rows from an API (docs/language.md)."""

import pandas as pd

# What the (imaginary) trips API answers; a real block would fetch it, e.g. with urllib.request.
_RECORDS: list[dict[str, int | str]] = [
    {"id": 1, "name": "Creative Mobile Technologies"},
    {"id": 2, "name": "VeriFone"},
]


def load_trips() -> pd.DataFrame:
    """Return the API's records as a DataFrame with the declared columns `id` and `name`.

    A source block gets no input data, only the pipeline parameters it names; it may return a
    pandas DataFrame, an Arrow table, a list of dicts or an iterator of Arrow record batches.
    """
    frame = pd.DataFrame.from_records(_RECORDS, columns=["id", "name"])
    return frame.astype({"id": "int64", "name": "string"})
