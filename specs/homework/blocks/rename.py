"""Rename the TLC green-taxi columns to snake_case (the `snake_trips` transform)."""

import re

import pandas as pd

# "PULocationID" -> "PU_LocationID": an upper-case run followed by a capitalised word.
_ACRONYM_WORD = re.compile(r"([A-Z]+)([A-Z][a-z])")
# "VendorID" -> "Vendor_ID", "Location_ID": a lower-case letter or digit before a capital.
_WORD_BOUNDARY = re.compile(r"([a-z0-9])([A-Z])")


def snake_case(name: str) -> str:
    """`VendorID` -> `vendor_id`, `PULocationID` -> `pu_location_id`; snake_case is kept."""
    name = _ACRONYM_WORD.sub(r"\1_\2", name)
    name = _WORD_BOUNDARY.sub(r"\1_\2", name)
    return name.lower()


def to_snake_case(clean_trips: pd.DataFrame) -> pd.DataFrame:
    """Return `clean_trips` with every column renamed to snake_case; the data is unchanged.

    VendorID -> vendor_id, RatecodeID -> ratecode_id, PULocationID -> pu_location_id,
    DOLocationID -> do_location_id; names already in snake_case (lpep_pickup_datetime,
    lpep_pickup_date, ...) are kept as they are.
    """
    return clean_trips.rename(columns=snake_case)
