"""Delivering the ``gdpr.forget`` messages of the outbox to the platform's other services: a
Kafka topic (exactly once: see storage/eventlog/kafka_topic.py) and/or a webhook (at least
once, with ``Idempotency-Key: <request id>``). A message is claimed with a lease, retried
with back-off, and deleted once every destination has it — it names the subject."""

from __future__ import annotations

import asyncio
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dataintel.gdpr import repository as repo
from dataintel.storage.eventlog.kafka_topic import KafkaTopic
from dataintel.storage.metadata.audit_repository import append
from dataintel.storage.metadata.engine import scrub
from dataintel.storage.metadata.gdpr_models import GdprOutbox, GdprRequest
from dataintel.storage.metadata.types import utcnow

LEASE_S = 60.0
TABLES = ["gdpr_requests", "gdpr_outbox"]


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2.0**attempts, 300.0))


@dataclass(frozen=True, slots=True)
class Message:
    request_id: str
    payload: dict[str, Any]
    attempts: int
    delivered: list[str]
    topic_from: dict[str, int] | None


class Outbox:
    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        webhook: str | None,
        topic: KafkaTopic | None,
    ) -> None:
        self.engine, self.sessions = engine, sessions
        self.webhook, self.topic = webhook, topic
        self.destinations = [d for d, on in (("topic", topic), ("webhook", webhook)) if on]
        self._topic_started = False

    async def close(self) -> None:
        if self.topic is not None and self._topic_started:
            await self.topic.close()

    async def deliver(self) -> None:
        if not self.destinations:
            return
        if self.topic is not None and not self._topic_started:
            await self.topic.start()
            self._topic_started = True
        for message in await asyncio.to_thread(self._claim):
            error = None
            done = list(message.delivered)
            for destination in self.destinations:
                if destination in done:
                    continue
                try:
                    await self._send(destination, message)
                except Exception as exc:  # noqa: BLE001 - retried with back-off
                    error = f"{destination}: {type(exc).__name__}: {exc}"[:2000]
                    break
                done.append(destination)
                await asyncio.to_thread(self._update, message.request_id, delivered=done)
            await asyncio.to_thread(self._settle, message, error)

    async def _send(self, destination: str, message: Message) -> None:
        body = orjson.dumps(message.payload)
        if destination == "webhook":
            assert self.webhook is not None
            await asyncio.to_thread(_post, self.webhook, message.request_id, body)
            return
        assert self.topic is not None
        key = message.request_id.encode()
        if message.topic_from is None:  # the first send: note where to look on a retry
            since = {str(p): o for p, o in (await self.topic.end_offsets()).items()}
            await asyncio.to_thread(self._update, message.request_id, topic_from=since)
        elif await self.topic.contains(key, {int(p): o for p, o in message.topic_from.items()}):
            return  # an earlier send landed (its outcome was lost with a crash)
        await self.topic.send(key, body)

    def _claim(self) -> list[Message]:
        now = utcnow()
        with self.sessions.begin() as session:
            found = repo.claim_messages(session, now, now + timedelta(seconds=LEASE_S), 20)
            return [
                Message(m.request_id, m.payload, m.attempts, list(m.delivered), m.topic_from)
                for m in found
            ]

    def _update(self, request_id: str, **values: Any) -> None:
        with self.sessions.begin() as session:
            row = session.get(GdprOutbox, request_id)
            if row is not None:
                for name, value in values.items():
                    setattr(row, name, value)

    def _settle(self, message: Message, error: str | None) -> None:
        with self.sessions.begin() as session:
            if error is not None:
                retry = utcnow() + backoff(message.attempts + 1)
                repo.undelivered(session, message.request_id, error, retry)
                return
            repo.delivered(session, message.request_id)
            request = session.get(GdprRequest, message.request_id)
            if request is not None:
                request.state = {"propagated": True}
                detail = {"request_id": request.id, "to": self.destinations}
                append(
                    session,
                    request.project_id,
                    "gdpr",
                    "gdpr_forget_propagated",
                    request.id,
                    detail,
                )
        scrub(self.engine, TABLES)


def _post(url: str, request_id: str, body: bytes) -> None:
    """POST the message; raises unless the answer is a 2xx."""
    headers = {"Content-Type": "application/json", "Idempotency-Key": request_id}
    message = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(message, timeout=10) as response:  # noqa: S310 - settings URL
        status = int(response.status)
    if not 200 <= status < 300:
        raise RuntimeError(f"HTTP {status}")
