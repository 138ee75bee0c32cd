"""Write deterministic, TLC-like NYC green-taxi trip files for the green_taxi example project.

    python specs/green_taxi/generate_data.py [--rows N] [--out DIR] [--seed S]

writes `green_tripdata_2020-10.csv.gz` and `green_tripdata_2020-11.csv.gz` into DIR (default:
`data/` next to this script, which is where the spec reads them). The files have the exact
column layout of the TLC's 2020 green-taxi CSV files and look like them: a header row, datetimes
as `2020-10-01 00:09:08`, amounts as `8.5`, empty `ehail_fee`, a few trips with no passengers or
no distance, a few refunds with negative amounts, a few pickups from the end of the previous
month, and some rows whose vendor fields (VendorID, RatecodeID, passenger_count, payment_type,
...) are empty, as in the real files.

The same arguments give byte-identical files (one seeded random generator per month, no
timestamp in the gzip header). Rows are streamed to disk, so `--rows 1000000` needs no more
memory than the default. Standard library only.
"""

import argparse
import csv
import gzip
import io
import random
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

HEADER = (
    "VendorID",
    "lpep_pickup_datetime",
    "lpep_dropoff_datetime",
    "store_and_fwd_flag",
    "RatecodeID",
    "PULocationID",
    "DOLocationID",
    "passenger_count",
    "trip_distance",
    "fare_amount",
    "extra",
    "mta_tax",
    "tip_amount",
    "tolls_amount",
    "ehail_fee",
    "improvement_surcharge",
    "total_amount",
    "payment_type",
    "trip_type",
    "congestion_surcharge",
)

# (year, month, days in month): the two files written, rows split by the number of days.
MONTHS = ((2020, 10, 31), (2020, 11, 30))
DEFAULT_ROWS = 5_000
DEFAULT_SEED = 2020
DEFAULT_OUT = Path(__file__).resolve().parent / "data"

# Busy green-taxi zones (Harlem, Astoria, Jamaica, Downtown Brooklyn, ...): most trips start
# or end in one of them; the rest are spread over all zones.
BUSY_ZONES = (74, 75, 41, 42, 82, 97, 7, 166, 244, 129, 95, 65, 181, 255, 260, 43, 152, 116)
ALL_ZONES = range(1, 264)

# Share of rows of each odd kind.
NO_VENDOR = 0.04  # vendor fields empty (their passenger_count is empty too)
ZERO_PASSENGERS = 0.02
ZERO_DISTANCE = 0.03
PREVIOUS_MONTH = 0.002  # pickup on the last day of the month before
REFUND = 0.3  # of the no-charge and dispute payments: amounts negated


def amount(hundredths: int) -> str:
    """Format an amount given in hundredths like the TLC files do: 850 -> `8.5`, 0 -> `0`."""
    sign = "-" if hundredths < 0 else ""
    whole, frac = divmod(abs(hundredths), 100)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:02d}".rstrip("0")


def zone(rng: random.Random) -> int:
    return rng.choice(BUSY_ZONES) if rng.random() < 0.7 else rng.choice(ALL_ZONES)


def trip_rows(
    rng: random.Random, year: int, month: int, days: int, count: int
) -> Iterator[list[str]]:
    """Yield `count` CSV rows of trips picked up in the given month."""
    month_start = datetime(year, month, 1)
    for _ in range(count):
        if rng.random() < PREVIOUS_MONTH:
            pickup = month_start - timedelta(seconds=rng.randrange(1, 86_400))
        else:
            pickup = month_start + timedelta(seconds=rng.randrange(days * 86_400))
        if rng.random() < ZERO_DISTANCE:
            distance = 0
            minutes = rng.uniform(0.2, 5.0)
        else:
            distance = round(min(rng.lognormvariate(0.6, 0.8), 40.0) * 100)
            minutes = distance / 100 * rng.uniform(2.5, 5.0) + rng.uniform(1.0, 6.0)
        dropoff = pickup + timedelta(seconds=round(minutes * 60))
        if rng.random() < NO_VENDOR:
            yield no_vendor_row(rng, pickup, dropoff, distance, minutes)
        else:
            yield vendor_row(rng, pickup, dropoff, distance, minutes)


def vendor_row(
    rng: random.Random, pickup: datetime, dropoff: datetime, distance: int, minutes: float
) -> list[str]:
    """A complete row as written by the taximeter of vendor 1 or 2."""
    vendor = 2 if rng.random() < 0.8 else 1
    ratecode = rng.choices((1, 5, 2, 3, 4), weights=(960, 30, 5, 3, 2))[0]
    trip_type = 2 if ratecode == 5 else 1
    if rng.random() < ZERO_PASSENGERS:
        passengers = 0
    else:
        passengers = rng.choices((1, 2, 3, 4, 5, 6), weights=(850, 80, 20, 10, 25, 15))[0]
    payment = rng.choices((1, 2, 3, 4), weights=(55, 42, 2, 1))[0]

    if ratecode == 2:  # JFK flat fare
        fare = 5_200
    elif ratecode == 5:  # negotiated
        fare = rng.choice((1_000, 1_500, 2_000, 2_500, 3_000, 4_000))
    else:  # $2.50 initial, then per distance and time; in steps of 50 cents
        fare = 250 + 250 * distance // 100 + round(30 * minutes)
        fare -= fare % 50
    hour = pickup.hour
    if ratecode == 5:
        extra = 0
    elif hour >= 20 or hour < 6:
        extra = 50
    elif 16 <= hour < 20 and pickup.weekday() < 5:
        extra = 100
    else:
        extra = 0
    mta_tax = 0 if trip_type == 2 else 50
    tip = round(fare * rng.choice((0.0, 0.15, 0.2, 0.25, 0.3))) if payment == 1 else 0
    tolls = 612 if rng.random() < 0.04 else 0
    improvement = 30
    congestion = 275 if rng.random() < 0.08 else 0
    amounts = [fare, extra, mta_tax, tip, tolls, improvement, congestion]
    if payment in (3, 4) and rng.random() < REFUND:
        amounts = [-value for value in amounts]
    fare, extra, mta_tax, tip, tolls, improvement, congestion = amounts
    return [
        str(vendor),
        pickup.isoformat(" "),
        dropoff.isoformat(" "),
        "Y" if rng.random() < 0.005 else "N",
        str(ratecode),
        str(zone(rng)),
        str(zone(rng)),
        str(passengers),
        amount(distance),
        amount(fare),
        amount(extra),
        amount(mta_tax),
        amount(tip),
        amount(tolls),
        "",  # ehail_fee: always empty in the 2020 files
        amount(improvement),
        amount(sum(amounts)),
        str(payment),
        str(trip_type),
        amount(congestion),
    ]


def no_vendor_row(
    rng: random.Random, pickup: datetime, dropoff: datetime, distance: int, minutes: float
) -> list[str]:
    """A row without the vendor fields, like the dispatched trips of the real files."""
    fare = 200 + 240 * distance // 100 + round(35 * minutes)
    extra = 275 if rng.random() < 0.3 else 0
    tolls = 612 if rng.random() < 0.06 else 0
    improvement = 30
    return [
        "",
        pickup.isoformat(" "),
        dropoff.isoformat(" "),
        "",
        "",
        str(zone(rng)),
        str(zone(rng)),
        "",
        amount(distance),
        amount(fare),
        amount(extra),
        "0",
        "0",
        amount(tolls),
        "",
        amount(improvement),
        amount(fare + extra + tolls + improvement),
        "",
        "",
        "",
    ]


def write_month(path: Path, rows: Iterator[list[str]]) -> int:
    """Stream `rows` into a gzip CSV at `path` (atomically: via a temporary file); count them."""
    temporary = path.with_name(path.name + ".tmp")
    written = 0
    with (
        temporary.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as packed,
        io.TextIOWrapper(packed, encoding="utf-8", newline="") as text,
    ):
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(HEADER)
        for row in rows:
            writer.writerow(row)
            written += 1
    temporary.replace(path)
    return written


def split_rows(total: int) -> list[int]:
    """Rows per month, in proportion to the days of each month."""
    all_days = sum(days for _, _, days in MONTHS)
    counts = [total * days // all_days for _, _, days in MONTHS]
    counts[-1] += total - sum(counts)
    return counts


def positive_int(text: str) -> int:
    value = int(text.replace("_", "").replace(",", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write TLC-like green-taxi trip files (Oct and Nov 2020) for green_taxi.",
    )
    parser.add_argument(
        "--rows",
        type=positive_int,
        default=DEFAULT_ROWS,
        help=f"total rows over both files (default {DEFAULT_ROWS:,}; e.g. 1000000)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output folder (default: data/ next to this script)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    args = parser.parse_args(argv)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for (year, month, days), count in zip(MONTHS, split_rows(args.rows), strict=True):
        rng = random.Random(args.seed * 100 + month)
        path = out / f"green_tripdata_{year}-{month:02d}.csv.gz"
        written = write_month(path, trip_rows(rng, year, month, days, count))
        print(f"{path}: {written:,} rows, {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
