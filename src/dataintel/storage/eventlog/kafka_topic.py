"""A Kafka topic for messages to the platform's other services (``gdpr.forget``), published
exactly once by a single publisher: before its first send of a message the publisher notes
the topic's end offsets; a retry (after a crash that hid whether the send landed) first
reads the topic from there for the message's key, and sends only if it is not there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dataintel.storage.eventlog.kafka import parse_url


class KafkaTopic:
    def __init__(self, eventlog_url: str, topic: str) -> None:
        self.bootstrap = parse_url(eventlog_url).bootstrap
        self.topic = topic
        self._producer: Any = None
        self._reader: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(self.topic, 1, 1)])  # exists: answered, kept
        finally:
            await admin.close()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all"
        )
        await self._producer.start()
        self._reader = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
        )
        await self._reader.start()

    async def close(self) -> None:
        for client in (self._producer, self._reader):
            if client is not None:
                await client.stop()

    def _partitions(self) -> list[Any]:
        from aiokafka import TopicPartition

        return [TopicPartition(self.topic, p) for p in sorted(self._known())]

    def _known(self) -> set[int]:
        found = self._producer.client.cluster.partitions_for_topic(self.topic)
        return set(found) if found else {0}

    async def end_offsets(self) -> dict[int, int]:
        ends = await self._reader.end_offsets(self._partitions())
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    async def contains(self, key: bytes, since: Mapping[int, int]) -> bool:
        """Whether a message with ``key`` was appended at or after ``since``."""
        ends = await self.end_offsets()
        for tp in self._partitions():
            start, end = since.get(tp.partition, 0), ends.get(tp.partition, 0)
            if start >= end:
                continue
            self._reader.assign([tp])
            self._reader.seek(tp, start)
            position = start
            while position < end:
                batch = await self._reader.getmany(tp, timeout_ms=2000, max_records=500)
                records = batch.get(tp, [])
                if not records:
                    break
                if any(r.key == key for r in records):
                    return True
                position = records[-1].offset + 1
        return False

    async def send(self, key: bytes, value: bytes) -> None:
        await self._producer.send_and_wait(self.topic, value, key=key)

    async def read_all(self) -> list[tuple[bytes | None, bytes]]:
        """Every message (key, value): for tools and tests."""
        out: list[tuple[bytes | None, bytes]] = []
        ends = await self.end_offsets()
        for tp in self._partitions():
            self._reader.assign([tp])
            self._reader.seek(tp, 0)
            while True:
                records = (await self._reader.getmany(tp, timeout_ms=2000)).get(tp, [])
                out += [(r.key, r.value) for r in records]
                if not records or records[-1].offset + 1 >= ends.get(tp.partition, 0):
                    break
        return out
