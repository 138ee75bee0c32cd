"""`flowc init DIR`: a small working project to start from.

It checks clean and runs on the embedded default (DuckDB) as soon as it is written:
a CSV source with declared columns, a SQL transform with `expect` checks, a Python
transform, a table and a CSV sink, and a unit test (`flowc test`).
"""

from __future__ import annotations

from pathlib import Path

from flowc.project.errors import UsageError

FLOW_TOML = """\
[project]
name = "{name}"
default_profile = "dev"

# dev: everything in a local DuckDB file; nothing to install or start.
[profiles.dev.local]
type = "duckdb"
path = ".flowc/local.duckdb"

# A Postgres profile looks like this (values from the environment or a .env file):
# [profiles.prod.local]
# type     = "postgres"
# host     = "${{POSTGRES_HOST:-localhost}}"
# port     = "${{POSTGRES_PORT:-5432}}"
# dbname   = "${{POSTGRES_DBNAME}}"
# user     = "${{POSTGRES_USER}}"
# password = "${{POSTGRES_PASSWORD}}"     # keep it in .env (git ignores it), never here
# schema   = "${{POSTGRES_SCHEMA:-public}}"
"""

EXAMPLE_FLOW = '''\
# An example pipeline: check it with `flowc check`, run it with `flowc run specs/example.flow`.

pipeline example {
  description = "Orders: load, keep the paid ones, add a label, total per day"
  params {
    min_amount double = 0
  }
}

source orders {
  from = csv("data/orders.csv", header = true)
  columns {
    order_id   int       not null
    ordered_at timestamp not null
    customer   varchar
    amount     decimal(10, 2)
    status     varchar
  }
}

transform paid_orders {
  sql = """
    SELECT order_id, CAST(ordered_at AS DATE) AS order_date, customer, amount
    FROM orders
    WHERE status = 'paid' AND amount > :min_amount
  """
  expect {
    not_null(order_id, order_date)
    unique(order_id)
    check("amount > 0")
  }
}

transform labelled_orders {
  python = "blocks/label.py:add_size"
  inputs = [paid_orders]
  columns {
    order_id   int
    order_date date
    customer   varchar
    amount     decimal(10, 2)
    size       varchar
  }
}

transform daily_totals {
  sql = """
    SELECT order_date, COUNT(*) AS orders, SUM(amount) AS revenue
    FROM labelled_orders
    GROUP BY order_date
  """
  materialize = table
}

sink orders_table {
  input = labelled_orders
  to    = table(local, "sales.orders")
  mode  = replace
}

sink daily_file {
  input = daily_totals
  to    = csv("out/daily_totals.csv")
}

# A unit test: `flowc test` runs `paid_orders` on these rows, offline, and compares.
test paid_orders_keeps_paid_orders {
  node   = paid_orders
  params = { min_amount = 10 }
  given {
    orders = rows(
      [order_id, ordered_at,            amount, status],
      [1,        "2024-03-01 08:15:00", 12.50,  "paid"],
      [2,        "2024-03-01 09:15:00", 40.00,  "refunded"],
      [3,        "2024-03-02 10:15:00", 5.50,   "paid"],
    )
  }
  expected = rows([order_id, order_date, amount], [1, "2024-03-01", 12.50])
}
'''

LABEL_PY = '''\
"""A Python block: gets `paid_orders` as a pandas DataFrame, returns one."""

import pandas as pd


def add_size(paid_orders: pd.DataFrame) -> pd.DataFrame:
    """Label each order small, medium or large by its amount."""
    amount = paid_orders["amount"].astype(float)
    labelled = paid_orders.copy()
    labelled["size"] = pd.cut(
        amount, bins=[0, 20, 100, float("inf")], labels=["small", "medium", "large"]
    ).astype(str)
    return labelled
'''

_CUSTOMERS = ("ada", "grace", "edsger", "barbara", "donald")
_STATUSES = ("paid", "paid", "paid", "refunded", "pending")


def _orders_csv() -> str:
    lines = ["order_id,ordered_at,customer,amount,status"]
    for order in range(1, 41):
        day = 1 + order % 7
        amount = (order * 37) % 180 + 5
        customer = _CUSTOMERS[order % len(_CUSTOMERS)]
        status = _STATUSES[order % len(_STATUSES)]
        lines.append(
            f"{order},2024-03-0{day} {8 + order % 10:02}:15:00,{customer},{amount}.50,{status}"
        )
    return "\n".join(lines) + "\n"


def files(name: str) -> dict[str, str]:
    """The project's files by path relative to its folder."""
    return {
        "flow.toml": FLOW_TOML.format(name=name),
        "specs/example.flow": EXAMPLE_FLOW,
        "blocks/label.py": LABEL_PY,
        "data/orders.csv": _orders_csv(),
        ".gitignore": ".flowc/\nout/\n.env\n",
    }


# What a folder may already hold for `flowc init` to use it: a fresh `git init` (or another
# version control's folder) or a virtualenv made first, as people start projects.
_ALLOWED = frozenset({".git", ".hg", ".svn", ".venv", "venv"})


def scaffold(folder: Path) -> list[Path]:
    """Write a new project into `folder`, which must not exist or hold only `.git` (and the
    like: `_ALLOWED`)."""
    if folder.exists() and (
        not folder.is_dir() or any(p.name not in _ALLOWED for p in folder.iterdir())
    ):
        raise UsageError(
            f"{folder} already exists and is not an empty folder (it may hold only .git or a .venv)"
        )
    name = folder.resolve().name.replace("-", "_") or "example"
    written = []
    for relative, text in files(name).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
