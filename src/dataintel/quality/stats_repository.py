"""Metadata SQL of feature statistics: the daily rows the drift job writes, and reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from dataintel.storage.metadata.monitoring_models import FeatureStatistics

COLUMNS = ("count", "nulls", "mean", "quantiles", "histogram", "drift", "computed_at")


def save(session: Session, row: dict[str, Any]) -> None:
    """Upsert one feature's statistics of one day (a re-run replaces them)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(FeatureStatistics).values(**row)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["project_id", "feature", "day"],
            set_={c: getattr(statement.excluded, c) for c in COLUMNS},
        )
    )


def days(
    session: Session, project_id: str, feature: str, since: datetime | None, limit: int
) -> Sequence[FeatureStatistics]:
    """The feature's daily statistics, newest first."""
    query = select(FeatureStatistics).where(
        FeatureStatistics.project_id == project_id, FeatureStatistics.feature == feature
    )
    if since is not None:
        query = query.where(FeatureStatistics.day >= since)
    return session.scalars(query.order_by(FeatureStatistics.day.desc()).limit(limit)).all()
