"""The anomaly detector: each run judges a project's last complete hour of every watched
metric (anomaly_metrics.py) against its seasonal baseline (model/anomaly.py), stores the
series and the verdicts, and raises or clears one alert per metric (alerts.observe).

A run for slot ``t`` judges the last bucket that ended by ``t``: an incident in a
bucket is alerted at the first run after that bucket ends, within one schedule interval. The
run is idempotent for a slot: the same series, verdicts and alert states come out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from dataintel.model.anomaly import Point, Verdict, judge, season
from dataintel.model.monitoring import AnomalySettings
from dataintel.model.snapshot import ConfigSnapshot
from dataintel.quality import alert_repository, alerts
from dataintel.quality import anomaly_repository as repo
from dataintel.quality.anomaly_metrics import (
    EPOCH,
    HOUR,
    Series,
    abandonment,
    commerce,
    fields,
    rejections,
    volume,
)
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.metadata.types import utcnow


def last_complete_bucket(slot: datetime, step: timedelta) -> datetime:
    """The start of the last bucket that ended at or before ``slot``."""
    index = (slot - EPOCH) // step
    return EPOCH + (index - 1) * step


class AnomalyDetector:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        analytics: AnalyticsStore,
        snapshot_of: Callable[[str], ConfigSnapshot],
    ) -> None:
        self.sessions, self.analytics, self.snapshot_of = sessions, analytics, snapshot_of

    def series(self, project_id: str, snapshot: ConfigSnapshot, bucket: datetime) -> list[Series]:
        settings = snapshot.monitoring.anomalies
        step = HOUR * settings.bucket_hours
        start, end = bucket - timedelta(days=settings.training_days), bucket + step
        kinds = frozenset(settings.metrics)
        found: list[Series] = []
        if "volume" in kinds:
            found += volume(self.analytics, project_id, start, end, step)
        if kinds & {"revenue", "conversion_rate"}:
            found += [
                s
                for s in commerce(self.analytics, project_id, snapshot, (start, end), step)
                if s.kind in kinds
            ]
        if kinds & {"null_rate", "mean"}:
            found += fields(self.analytics, project_id, snapshot, (start, end), kinds, step)
        if "abandonment_rate" in kinds:
            found += abandonment(self.analytics, project_id, snapshot, (start, end), step)
        if "rejection_rate" in kinds:
            with self.sessions() as session:
                counts = repo.ingest_counts(session, project_id, start, end)
            found += rejections(counts, (start, end), step)
        return found

    def run(self, project_id: str, slot: datetime) -> dict[str, Any]:
        """Judge the last complete hour before ``slot`` (blocking: call it in a thread)."""
        snapshot = self.snapshot_of(project_id)
        settings = snapshot.monitoring.anomalies
        bucket = last_complete_bucket(slot, HOUR * settings.bucket_hours)
        if not settings.enabled:
            return {"bucket": bucket.isoformat(), "skipped": "anomaly detection is disabled"}
        found = self.series(project_id, snapshot, bucket)
        start = bucket - timedelta(days=settings.training_days)
        now = utcnow()
        counts: dict[str, int] = {}
        anomalies: list[str] = []
        with self.sessions.begin() as session:
            excluded = repo.anomalous(session, project_id, start)
            points: list[dict[str, Any]] = []
            judged: list[dict[str, Any]] = []
            for s in found:
                verdict = _verdict(s, bucket, excluded, settings)
                if verdict is None:
                    continue
                counts[verdict.status] = counts.get(verdict.status, 0) + 1
                flagged = {(s.metric, bucket)} if verdict.status == "anomaly" else set()
                points += _point_rows(project_id, s, (excluded - {(s.metric, bucket)}) | flagged)
                judged.append(_evaluation_row(project_id, s, bucket, verdict, now))
                if self._alert(session, project_id, s, bucket, verdict, now):
                    anomalies.append(s.metric)
            repo.save_points(session, points)
            repo.save_evaluations(session, judged)
        return {"bucket": bucket.isoformat(), "metrics": counts, "anomalies": sorted(anomalies)}

    def _alert(
        self,
        session: Session,
        project_id: str,
        s: Series,
        bucket: datetime,
        verdict: Verdict,
        now: datetime,
    ) -> bool:
        if verdict.status not in ("anomaly", "ok"):
            return False  # not judged: a live alert stays as it is
        fingerprint = f"anomaly:{s.metric}"
        failing = verdict.status == "anomaly"
        if failing and alert_repository.live(session, project_id, fingerprint) is None:
            cooldown = self.snapshot_of(project_id).monitoring.anomalies.cooldown_hours
            resolved = alert_repository.last_resolved(session, project_id, fingerprint)
            if resolved is not None and resolved > now - timedelta(hours=cooldown):
                return False
        value = s.points[bucket].value
        alerts.observe(
            session,
            project_id,
            fingerprint=fingerprint,
            failing=failing,
            kind="anomaly",
            severity="critical" if verdict.critical else "warning",
            title=f"{s.metric} is {value:.4g} at {bucket:%Y-%m-%d %H}h UTC, "
            f"expected about {verdict.expected:.4g}",
            detail={
                "metric": s.metric,
                "bucket": bucket.isoformat(),
                "value": value,
                "expected": verdict.expected,
                "spread": verdict.spread,
                "score": verdict.score,
                "baseline": verdict.baseline,
            },
            source="quality.anomalies",
            now=now,
        )
        return failing


def _verdict(
    s: Series,
    bucket: datetime,
    excluded: set[tuple[str, datetime]],
    settings: AnomalySettings,
) -> Verdict | None:
    current = s.points.get(bucket)
    if current is None:
        return None  # no value this hour (a rate without a denominator)
    key = season(bucket, settings.seasonality)
    baseline = [
        p
        for moment, p in s.points.items()
        if moment < bucket
        and season(moment, settings.seasonality) == key
        and (s.metric, moment) not in excluded
    ]
    return judge(current.value, baseline, settings, s.unit)


def _point_rows(
    project_id: str, s: Series, anomalous: set[tuple[str, datetime]]
) -> list[dict[str, Any]]:
    return [
        {
            "project_id": project_id,
            "metric": s.metric,
            "bucket": moment,
            "value": p.value,
            "support": p.support,
            "anomalous": (s.metric, moment) in anomalous,
        }
        for moment, p in s.points.items()
    ]


def _evaluation_row(
    project_id: str, s: Series, bucket: datetime, v: Verdict, now: datetime
) -> dict[str, Any]:
    point: Point = s.points[bucket]
    return {
        "project_id": project_id,
        "metric": s.metric,
        "bucket": bucket,
        "value": point.value,
        "status": v.status,
        "expected": v.expected,
        "spread": v.spread,
        "score": v.score,
        "baseline": v.baseline,
        "evaluated_at": now,
    }
