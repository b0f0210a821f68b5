"""The REES46 slice as events, a pipeline declaring its fields, and batch feature specs."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from tests.ingest.test_real_data import REAL

REES46 = REAL / "rees46-multicategory/2019-Oct_head_20191001T0000-0250Z.csv.gz"

PIPELINE_YAML = """
pipelines:
  - id: web
    name: Web
    events:
      - name: view
        fields: &fields
          - {name: category_code, type: string}
          - {name: brand, type: string}
          - {name: price, type: number}
          - {name: product_id, type: string}
      - {name: cart, fields: *fields}
      - {name: purchase, fields: *fields}
"""


def rees46_rows() -> Iterator[dict[str, Any]]:
    with gzip.open(REES46, "rt", newline="") as f:
        for row in csv.DictReader(f):
            when = datetime.strptime(row["event_time"], "%Y-%m-%d %H:%M:%S UTC")
            props: dict[str, Any] = {"price": float(row["price"]), "product_id": row["product_id"]}
            for name in ("category_code", "brand"):
                if row[name]:
                    props[name] = row[name]
            yield {
                "event": row["event_type"],
                "ts": when.replace(tzinfo=UTC),
                "user_id": row["user_id"],
                "session_id": row["user_session"],
                "properties": props,
            }


def rees46_frame() -> pd.DataFrame:
    """The same events, one column per property (missing: None), ``ts`` UTC."""
    rows = []
    for r in rees46_rows():
        rows.append(
            {
                "event": r["event"],
                "ts": r["ts"],
                "user_id": r["user_id"],
                **{k: r["properties"].get(k) for k in ("category_code", "brand", "price")},
            }
        )
    return pd.DataFrame(rows)
