"""Metadata SQL of the anomaly detector: the stored metric series and the evaluations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from dataintel.storage.metadata.models import IngestStat
from dataintel.storage.metadata.monitoring_models import MetricEvaluation, MetricPoint


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def anomalous(session: Session, project_id: str, start: datetime) -> set[tuple[str, datetime]]:
    """(metric, bucket) of the stored points judged anomalous since ``start``."""
    query = select(MetricPoint.metric, MetricPoint.bucket).where(
        MetricPoint.project_id == project_id,
        MetricPoint.bucket >= start,
        MetricPoint.anomalous.is_(True),
    )
    return {(m, b) for m, b in session.execute(query)}


def save_points(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert metric points (project_id, metric, bucket, value, support, anomalous)."""
    if not rows:
        return
    statement = _insert(session)(MetricPoint)
    statement = statement.on_conflict_do_update(
        index_elements=["project_id", "metric", "bucket"],
        set_={
            "value": statement.excluded.value,
            "support": statement.excluded.support,
            "anomalous": statement.excluded.anomalous,
        },
    )
    for start in range(0, len(rows), 1000):
        session.execute(statement, list(rows[start : start + 1000]))


def save_evaluations(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    statement = _insert(session)(MetricEvaluation)
    columns = ("value", "status", "expected", "spread", "score", "baseline", "evaluated_at")
    statement = statement.on_conflict_do_update(
        index_elements=["project_id", "metric", "bucket"],
        set_={c: getattr(statement.excluded, c) for c in columns},
    )
    session.execute(statement, list(rows))


def evaluations(
    session: Session,
    project_id: str,
    since: datetime | None,
    filters: tuple[str | None, str | None],
    limit: int,
) -> Sequence[MetricEvaluation]:
    """The verdicts, newest bucket first; ``filters``: (metric, status), None for any."""
    metric, status = filters
    query = select(MetricEvaluation).where(MetricEvaluation.project_id == project_id)
    if since is not None:
        query = query.where(MetricEvaluation.bucket >= since)
    if metric is not None:
        query = query.where(MetricEvaluation.metric == metric)
    if status is not None:
        query = query.where(MetricEvaluation.status == status)
    order = (MetricEvaluation.bucket.desc(), MetricEvaluation.metric)
    return session.scalars(query.order_by(*order).limit(limit)).all()


def ingest_counts(
    session: Session, project_id: str, start: datetime, end: datetime
) -> list[tuple[datetime, int, int]]:
    """(hour of arrival, events received, of them rejected), all pipelines and events."""
    received = IngestStat.accepted + IngestStat.duplicate + IngestStat.rejected
    query = (
        select(IngestStat.hour, func.sum(received), func.sum(IngestStat.rejected))
        .where(
            IngestStat.project_id == project_id,
            IngestStat.hour >= start,
            IngestStat.hour < end,
        )
        .group_by(IngestStat.hour)
    )
    return [(h, int(n or 0), int(r or 0)) for h, n, r in session.execute(query)]
