"""Feature values of every entity of a key, exported (GET /v1/export/features): as of one
instant, or at every step of a time range, computed by the same offline function as
training sets (historical.py) — exactly what the online service served, or would have
served, then.

Entities come out in id order, each at its times in order. Without explicit ``entity_id``s
they are every entity of the key seen in an event before the last instant asked, read
``CHUNK_ENTITIES`` at a time; one page holds at most ``limit`` entities and carries the next
page's cursor (the last entity id). Memory is bounded by a chunk, whatever the page size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa

from dataintel.errors import InvalidInput
from dataintel.features.offline.historical import MEDIA_TYPES, HistoricalService
from dataintel.features.offline.historical_input import TIME
from dataintel.features.offline.schemas import ENTITY_ID, MAX_ROWS, TIMESTAMP, HistoricalFormat
from dataintel.features.online.partials import entity_sql
from dataintel.storage.analytics.queries import from_micros

CHUNK_ENTITIES = 10_000
MAX_TIMES = 1_000


@dataclass(slots=True)
class Sent:
    rows: int = 0


@dataclass(frozen=True, slots=True)
class FeatureExport:
    media_type: str
    body: Iterator[bytes]
    next_cursor: str | None
    sent: Sent


def entity_page(
    service: HistoricalService,
    entity_key: str,
    before_us: int,
    cursor: str | None,
    limit: int,
) -> tuple[list[str], str | None]:
    """Up to ``limit`` ids after ``cursor`` (in id order) of entities with an event before
    ``before_us``, and the next page's cursor."""
    entity = entity_sql(entity_key)
    params: list[object] = [service.config.project_id, from_micros(before_us)]
    after = ""
    if cursor is not None:
        params.append(cursor)
        after = f"AND {entity} > $3"
    query = (
        f"SELECT DISTINCT {entity} AS id FROM events "  # noqa: S608 - fixed SQL and a checked key
        f"WHERE project_id = $1 AND ts < $2 AND {entity} IS NOT NULL {after} "
        f"ORDER BY id LIMIT {int(limit) + 1}"
    )
    ids = [str(v) for v in service.analytics.sql(query, params).column("id").to_pylist()]
    more = len(ids) > limit
    ids = ids[:limit]
    return ids, (ids[-1] if more and ids else None)


def export_features(
    service: HistoricalService,
    entity_key: str,
    names: Sequence[str] | None,
    times_us: Sequence[int],
    ids: Sequence[str],
    next_cursor: str | None,
    fmt: HistoricalFormat,
) -> FeatureExport:
    if len(times_us) > MAX_TIMES:
        raise InvalidInput.field(["query", "step"], f"at most {MAX_TIMES} instants per export")
    if len(ids) * len(times_us) > MAX_ROWS:
        raise InvalidInput.field(
            ["query", "limit"],
            f"{len(ids)} entities x {len(times_us)} instants: at most {MAX_ROWS:,} rows per "
            "page; lower limit",
        )
    plan = service.plan(entity_key, names, fmt, ["query", "feature"])
    label_schema = pa.schema([pa.field(ENTITY_ID, pa.string()), pa.field(TIMESTAMP, TIME)])
    schema = plan.schema(label_schema)

    def batches() -> Iterator[pa.RecordBatch]:
        for begin in range(0, len(ids), CHUNK_ENTITIES):
            chunk = ids[begin : begin + CHUNK_ENTITIES]
            labels = pa.table(
                {
                    ENTITY_ID: pa.array([i for i in chunk for _ in times_us], pa.string()),
                    TIMESTAMP: pa.array([t for _ in chunk for t in times_us], pa.int64()).cast(
                        TIME
                    ),
                }
            )
            for batch in service.rows(labels, plan, schema):
                sent.rows += batch.num_rows
                yield batch

    sent = Sent()
    return FeatureExport(MEDIA_TYPES[fmt], plan.encode(batches(), schema), next_cursor, sent)
