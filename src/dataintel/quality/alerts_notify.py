"""Delivering alert notifications from the outbox: each is POSTed as JSON to the project's
deployed ``monitoring.webhook_url``, signed like the ingest webhooks
(``X-Dataintel-Signature: t=<unix s>,v1=<HMAC-SHA256 hex of "<t>.<body>">`` with
``monitoring.webhook_secret``; config/pipelines/webhooks.py) and carrying
``Idempotency-Key: quality-alert-notification-<id>`` so a receiver drops a repeat.

A notification is claimed with a lease (a deliverer that dies leaves it to another after
``LEASE_S``), retried with exponential back-off (1 s, 2 s, 4 s … at most 5 min) until a
2xx answer, then deleted: never lost, at least once. A project without a webhook URL
drops its notifications (nothing to send them to); one without a secret sends them
unsigned.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy.orm import Session, sessionmaker

from dataintel.config.pipelines.webhooks import SIGNATURE_HEADER, sign
from dataintel.model.monitoring import MonitoringSettings
from dataintel.quality import alert_repository as repo
from dataintel.storage.metadata.types import utcnow

LEASE_S = 60.0
BATCH = 50


def backoff(attempts: int, base_s: float = 1.0) -> timedelta:
    return timedelta(seconds=min(base_s * 2.0 ** (attempts - 1), 300.0))


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    project_id: str
    payload: dict[str, Any]
    attempts: int


class AlertNotifier:
    """``deliver()`` sends what is due; ``settings_of(project_id)`` is the project's
    deployed monitoring section (read at each delivery, so a new URL or secret applies to
    what is still waiting)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings_of: Callable[[str], MonitoringSettings],
        backoff_base_s: float = 1.0,
        timeout_s: float = 10.0,
    ) -> None:
        self.sessions, self.settings_of = sessions, settings_of
        self.backoff_base_s, self.timeout_s = backoff_base_s, timeout_s

    async def deliver(self, project_id: str | None = None) -> dict[str, int]:
        """Send every due notification (of one project, or all); returns counts."""
        counts = {"delivered": 0, "failed": 0, "dropped": 0}
        for message in await asyncio.to_thread(self._claim, project_id):
            settings = await asyncio.to_thread(self.settings_of, message.project_id)
            if settings.webhook_url is None:
                await asyncio.to_thread(self._settle, message, None)
                counts["dropped"] += 1
                continue
            try:
                await asyncio.to_thread(self._post, settings, message)
            except Exception as exc:  # noqa: BLE001 - retried with back-off
                error = f"{type(exc).__name__}: {exc}"
                await asyncio.to_thread(self._settle, message, error)
                counts["failed"] += 1
                continue
            await asyncio.to_thread(self._settle, message, None)
            counts["delivered"] += 1
        return counts

    def _claim(self, project_id: str | None) -> list[Notification]:
        now = utcnow()
        with self.sessions.begin() as session:
            until = now + timedelta(seconds=LEASE_S)
            found = repo.claim_notifications(session, project_id, now, until, BATCH)
            return [Notification(m.id, m.project_id, m.payload, m.attempts) for m in found]

    def _settle(self, message: Notification, error: str | None) -> None:
        with self.sessions.begin() as session:
            if error is None:
                repo.delivered(session, message.id)
            else:
                retry = utcnow() + backoff(message.attempts + 1, self.backoff_base_s)
                repo.undelivered(session, message.id, error, retry)

    def _post(self, settings: MonitoringSettings, message: Notification) -> None:
        """POST the notification; raises unless the answer is a 2xx."""
        assert settings.webhook_url is not None
        body = orjson.dumps(message.payload)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": f"quality-alert-notification-{message.id}",
        }
        if settings.webhook_secret is not None:
            headers[SIGNATURE_HEADER] = sign(settings.webhook_secret, body, int(time.time()))
        request = urllib.request.Request(  # noqa: S310 - the project's configured URL
            settings.webhook_url, data=body, headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
            status = int(response.status)
        if not 200 <= status < 300:
            raise RuntimeError(f"HTTP {status}")
