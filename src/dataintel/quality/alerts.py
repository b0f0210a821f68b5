"""Alerts: one per incident, open → acknowledged → resolved (reference A.6).

Other planes raise and clear alerts through ``observe``; a person acknowledges or resolves
one through the API (``acknowledge`` / ``resolve``). Each opening, change of severity and
resolution queues a notification in the outbox (quality_alert_outbox), in the caller's
transaction, so it is sent (alerts_notify.py) exactly when the change commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from dataintel.quality import alert_repository as repo
from dataintel.storage.metadata.monitoring_models import AlertNotification, QualityAlert
from dataintel.storage.metadata.types import utcnow

Severity = Literal["warning", "critical"]
Kind = Literal["rule", "anomaly", "drift", "consistency", "freshness", "volume", "schema"]
Resolution = Literal["fixed", "expected", "false_positive", "no_action", "cleared"]
Event = Literal["opened", "severity_changed", "acknowledged", "resolved"]
NOTIFIED: frozenset[str] = frozenset({"opened", "severity_changed", "resolved"})


def observe(
    session: Session,
    project_id: str,
    *,
    fingerprint: str,
    failing: bool,
    kind: Kind,
    severity: Severity = "warning",
    title: str = "",
    detail: dict[str, Any] | None = None,
    source: str = "",
    now: datetime | None = None,
) -> QualityAlert | None:
    """Report the state of one condition of ``project_id``; the single entry point of
    every plane that raises alerts (the rules job, the anomaly, drift and consistency jobs).

    - ``fingerprint``: what identifies the incident, stable across evaluations, e.g.
      ``"rule:<rule id>"`` or ``"anomaly:volume:page_view"`` (≤ 300 characters). One alert
      exists per fingerprint while it is open or acknowledged: a condition failing on every
      evaluation updates that alert (``last_seen``, ``occurrences``, ``detail``), it does not
      open another.
    - ``failing=True``: opens an alert (notification ``opened``) or updates the live one;
      a new ``severity`` on a live alert notifies ``severity_changed``.
    - ``failing=False``: the condition cleared: a live alert is resolved with the reason
      ``cleared`` (notification ``resolved``); without one, nothing happens.
    - ``kind``: rule, anomaly, drift, consistency, freshness, volume or schema; ``source``:
      what raised it (e.g. ``"quality.rules"``, the job name); ``title``: one line for
      people; ``detail``: JSON (the measured value, the threshold, …), never personal data.

    Runs in the caller's session and transaction (no commit); returns the alert touched,
    or None. Calling it again with the same arguments changes nothing but ``last_seen``
    and ``occurrences``: a re-run of a job slot is harmless.
    """
    now = now or utcnow()
    alert = repo.live(session, project_id, fingerprint)
    if not failing:
        if alert is None:
            return None
        _resolve(session, alert, "cleared", "auto", now)
        return alert
    if alert is None:
        alert = QualityAlert(
            project_id=project_id,
            fingerprint=fingerprint[:300],
            status=repo.OPEN,
            kind=kind,
            severity=severity,
            source=source[:200],
            title=title[:500],
            detail=detail or {},
            first_seen=now,
            last_seen=now,
            occurrences=1,
        )
        session.add(alert)
        session.flush()
        notify(session, alert, "opened", now)
        return alert
    changed = alert.severity != severity
    alert.last_seen, alert.occurrences = now, alert.occurrences + 1
    alert.detail, alert.title, alert.severity = detail or {}, title[:500], severity
    session.flush()
    if changed:
        notify(session, alert, "severity_changed", now)
    return alert


def acknowledge(session: Session, alert: QualityAlert, actor: str) -> QualityAlert:
    """Someone looks into it: open → acknowledged (an acknowledged alert still resolves by
    itself when its condition clears)."""
    if alert.status == repo.OPEN:
        alert.status = repo.ACKNOWLEDGED
        alert.acknowledged_by, alert.acknowledged_at = actor[:200], utcnow()
        session.flush()
    return alert


def resolve(session: Session, alert: QualityAlert, reason: Resolution, actor: str) -> QualityAlert:
    """Close the incident by hand with a reason; a condition still failing opens a new
    alert at its next evaluation."""
    if alert.status != repo.RESOLVED:
        _resolve(session, alert, reason, actor, utcnow())
    return alert


def _resolve(session: Session, alert: QualityAlert, reason: str, actor: str, now: datetime) -> None:
    alert.status, alert.resolution = repo.RESOLVED, reason
    alert.resolved_at, alert.resolved_by = now, actor[:200]
    session.flush()
    notify(session, alert, "resolved", now)


def as_json(alert: QualityAlert) -> dict[str, Any]:
    """The alert as the API and the notifications show it."""

    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    return {
        "id": alert.id,
        "project_id": alert.project_id,
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "kind": alert.kind,
        "severity": alert.severity,
        "source": alert.source,
        "title": alert.title,
        "detail": alert.detail,
        "first_seen": iso(alert.first_seen),
        "last_seen": iso(alert.last_seen),
        "occurrences": alert.occurrences,
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": iso(alert.acknowledged_at),
        "resolved_at": iso(alert.resolved_at),
        "resolution": alert.resolution,
        "resolved_by": alert.resolved_by,
    }


def notify(session: Session, alert: QualityAlert, event: Event, now: datetime) -> None:
    """Queue the notification of ``event`` (sent by alerts_notify.py)."""
    payload = {"type": f"quality.alert.{event}", "at": now.isoformat(), "alert": as_json(alert)}
    session.add(
        AlertNotification(
            project_id=alert.project_id, alert_id=alert.id, payload=payload, next_attempt_at=now
        )
    )
    session.flush()
