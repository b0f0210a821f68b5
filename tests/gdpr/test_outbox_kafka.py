"""The gdpr.forget outbox on a Kafka topic: each message lands exactly once, also when a
crash hid whether an earlier send landed (the retry looks for it before sending)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from dataintel.gdpr import repository as repo
from dataintel.gdpr.outbox import Outbox
from dataintel.storage.eventlog.kafka_topic import KafkaTopic
from dataintel.storage.metadata import migrate
from dataintel.storage.metadata.engine import make_engine, make_sessionmaker
from dataintel.storage.metadata.gdpr_models import GdprOutbox


def test_each_message_lands_exactly_once(tmp_path: Path, kafka_broker: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'metadata.db'}")
    migrate.upgrade(engine)
    sessions = make_sessionmaker(engine)
    url = kafka_broker.url(f"events-{uuid.uuid4().hex[:8]}", 1)
    name = f"gdpr-forget-{uuid.uuid4().hex[:8]}"

    def enqueue(request_id: str) -> None:
        with sessions.begin() as session:
            payload = {"type": "gdpr.forget", "request_id": request_id, "user_id": "u-9"}
            repo.enqueue(session, request_id, payload)

    async def scenario() -> list[tuple[bytes | None, bytes]]:
        topic = KafkaTopic(url, name)
        outbox = Outbox(engine, sessions, None, topic)
        try:
            enqueue("r1")
            await outbox.deliver()  # a plain first delivery
            # r2: its first send landed, then the process died before recording it.
            enqueue("r2")
            since = {str(p): o for p, o in (await topic.end_offsets()).items()}
            with sessions.begin() as session:
                row = session.get(GdprOutbox, "r2")
                assert row is not None
                row.topic_from = since
            await topic.send(b"r2", b'{"request_id": "r2"}')
            await outbox.deliver()  # the retry finds it: no second send
            # r3: a first attempt noted where to look, but its send never happened.
            enqueue("r3")
            with sessions.begin() as session:
                row = session.get(GdprOutbox, "r3")
                assert row is not None
                row.topic_from = {str(p): o for p, o in (await topic.end_offsets()).items()}
            await outbox.deliver()
            return await topic.read_all()
        finally:
            await outbox.close()

    messages = asyncio.run(scenario())
    assert sorted(k for k, _ in messages if k is not None) == [b"r1", b"r2", b"r3"]
    with sessions() as session:
        assert session.query(GdprOutbox).count() == 0  # delivered messages are deleted
    engine.dispose()
