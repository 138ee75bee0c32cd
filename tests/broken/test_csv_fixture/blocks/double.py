import pandas as pd


def doubled(big_trips: pd.DataFrame) -> pd.DataFrame:
    return big_trips.assign(amount=big_trips["amount"] * 2)
