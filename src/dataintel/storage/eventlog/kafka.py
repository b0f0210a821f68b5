"""The Kafka EventLog (aiokafka): ``kafka://host:port[,host:port]/<topic>?partitions=N&replication=R``.

Optional query parameters for the consumers: ``session_timeout_ms`` and
``heartbeat_interval_ms`` (how fast a dead worker's partitions move to the others).

- Append: an idempotent producer (``enable_idempotence=True``, ``acks="all"``) keyed by the
  item's entity key (the default murmur2 partitioner: same key → same partition); ``append``
  returns once the broker acknowledged every record, with the offsets it assigned.
- Dedup: best effort through a :class:`DedupStore` (check → produce → record; see dedup.py).
  Every sink is idempotent on (project_id, event_id), so a duplicate that slips through is
  still stored once.
- The topic is created at ``start`` with the requested partitions (kept if it exists).
- Consumers: one Kafka consumer group per ``group``; partitions are spread over its members,
  and each newly assigned partition is positioned where the sink says (``resume``). Offsets
  committed to Kafka are advisory (lag tooling); the sinks own the positions.

aiokafka is the optional ``kafka`` extra: this module imports without it (every module of the
package must, on the runtime lock alone) and loads the driver where a Kafka log is started.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import structlog

from dataintel import tracing
from dataintel.model.retention import EventCutoffs
from dataintel.model.subject import Subject
from dataintel.storage.eventlog.dedup import DedupStore
from dataintel.storage.eventlog.port import (
    AppendItem,
    AppendResult,
    EventLog,
    LogConsumer,
    LogEntry,
    NotErasable,
    ResumeFrom,
)
from dataintel.storage.eventlog.shredding import SubjectKeys, seal, unseal

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

log = structlog.get_logger("dataintel.eventlog.kafka")

DEFAULT_TOPIC = "dataintel-events"
TOPIC_ALREADY_EXISTS = 36  # Kafka error code
CONSUMER_OPTIONS = ("session_timeout_ms", "heartbeat_interval_ms")


@dataclass(frozen=True, slots=True)
class KafkaTarget:
    bootstrap: str
    topic: str
    partitions: int
    replication: int
    consumer_options: tuple[tuple[str, int], ...] = ()


def parse_url(url: str) -> KafkaTarget:
    parts = urlsplit(url)
    if parts.scheme != "kafka" or not parts.netloc:
        raise ValueError(f"not a Kafka EventLog URL: {url!r} (kafka://host:9092/topic)")
    query = parse_qs(parts.query)
    partitions = int(query.get("partitions", ["1"])[-1])
    replication = int(query.get("replication", ["1"])[-1])
    if partitions < 1 or replication < 1:
        raise ValueError("partitions and replication must be at least 1")
    topic = parts.path.strip("/") or DEFAULT_TOPIC
    options = tuple((name, int(query[name][-1])) for name in CONSUMER_OPTIONS if name in query)
    return KafkaTarget(parts.netloc, topic, partitions, replication, options)


class KafkaEventLog(EventLog):
    def __init__(
        self,
        target: KafkaTarget,
        dedup: DedupStore,
        client_id: str = "dataintel",
        keys: SubjectKeys | None = None,
    ):
        """``keys``: the subjects' data keys (crypto-shredding, shredding.py); None: records
        are stored in clear and ``erase`` cannot erase them."""
        self.target = target
        self._keys = keys
        self.partitions = target.partitions
        self._dedup = dedup
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._meta: AIOKafkaConsumer | None = None  # end offsets and `read`, no group
        self._read_lock = asyncio.Lock()

    @classmethod
    def from_url(
        cls, url: str, dedup: DedupStore, keys: SubjectKeys | None = None
    ) -> KafkaEventLog:
        return cls(parse_url(url), dedup, keys=keys)

    @property
    def topic(self) -> str:
        return self.target.topic

    def _tp(self, partition: int) -> TopicPartition:
        from aiokafka import TopicPartition

        return TopicPartition(self.topic, partition)

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        await self._ensure_topic()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.target.bootstrap,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            max_batch_size=1024 * 1024,
        )
        await self._producer.start()
        self.partitions = len(await self._producer.partitions_for(self.topic))
        if self.partitions != self.target.partitions:
            log.warning(
                "the topic exists with another partition count; using it",
                topic=self.topic,
                partitions=self.partitions,
                requested=self.target.partitions,
            )
        self._meta = AIOKafkaConsumer(
            bootstrap_servers=self.target.bootstrap,
            client_id=f"{self._client_id}-reader",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
        )
        await self._meta.start()

    async def _ensure_topic(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.target.bootstrap, client_id=self._client_id
        )
        await admin.start()
        try:
            topic = NewTopic(self.topic, self.target.partitions, self.target.replication)
            response: Any = await admin.create_topics([topic])
            for name, code, *_ in response.topic_errors:
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"creating Kafka topic {name!r} failed: error {code}")
        finally:
            await admin.close()

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        meta, self._meta = self._meta, None
        if producer is not None:
            await producer.stop()
        if meta is not None:
            await meta.stop()
        await self._dedup.close()
        if self._keys is not None:
            self._keys.close()

    def _started(self) -> tuple[AIOKafkaProducer, AIOKafkaConsumer]:
        if self._producer is None or self._meta is None:
            raise RuntimeError("the Kafka event log is not started (or was closed)")
        return self._producer, self._meta

    async def append(self, items: Sequence[AppendItem]) -> AppendResult:
        producer, _ = self._started()
        if not items:
            return AppendResult([], {})
        keys = [item.dedup_key for item in items if item.dedup_key is not None]
        known = {key for key, seen in zip(keys, await self._dedup.seen(keys), strict=True) if seen}
        values = await self._seal(items)
        parent = tracing.current_traceparent()
        headers = [(tracing.TRACEPARENT, parent.encode())] if parent is not None else None
        accepted: list[bool] = []
        sends: list[tuple[str | None, asyncio.Future[Any]]] = []
        failure: BaseException | None = None
        for item, value in zip(items, values, strict=True):
            key = item.dedup_key
            accepted.append(key is None or key not in known)
            if not accepted[-1]:
                continue
            if key is not None:
                known.add(key)  # a second equal key in this batch is a duplicate
            try:
                future = await producer.send(
                    self.topic, value, key=item.key.encode(), headers=headers
                )
            except Exception as exc:  # noqa: BLE001 - settle what was sent, then raise it
                failure = exc
                break
            sends.append((key, future))
        results = await asyncio.gather(*(f for _, f in sends), return_exceptions=True)
        await self._record(
            [k for (k, _), r in zip(sends, results, strict=True) if k is not None and _ok(r)]
        )
        positions: dict[int, int] = {}
        for result in results:
            if isinstance(result, BaseException):
                failure = failure or result
            else:
                positions[result.partition] = max(
                    positions.get(result.partition, -1), result.offset
                )
        if failure is not None:
            raise failure  # the caller retries; what was delivered is recorded as seen
        return AppendResult(accepted, positions)

    async def _seal(self, items: Sequence[AppendItem]) -> list[bytes]:
        """Each item's record: sealed under its subject's data key, when it has one."""
        subjects = {item.subject for item in items if item.subject is not None}
        if self._keys is None or not subjects:
            return [item.value for item in items]
        keys = await asyncio.to_thread(self._keys.for_subjects, subjects)
        return [
            item.value if item.subject is None else seal(*keys[item.subject], item.value)
            for item in items
        ]

    async def unseal(self, entries: list[LogEntry]) -> list[LogEntry]:
        """The readable entries (see shredding.unseal)."""
        if self._keys is None or not entries:
            return entries
        return await asyncio.to_thread(unseal, entries, self._keys)

    async def _record(self, keys: list[str]) -> None:
        """Remember delivered keys; a failure here must not fail the (durable) append."""
        try:
            await self._dedup.record(keys)
        except Exception as exc:  # noqa: BLE001 - dedup is best effort (sinks dedup too)
            log.warning("recording dedup keys failed", error=str(exc), keys=len(keys))

    async def erase(self, subject: Subject, below: Mapping[int, int]) -> int:  # noqa: ARG002
        """Crypto-shredding: the data keys of the user, their carts and their sessions are
        destroyed; their records stay in the topic as ciphertext no one can read. Returns
        the number of keys destroyed."""
        if self._keys is None:
            raise NotErasable("this Kafka log stores records in clear (no key store)")
        subjects = [(subject.project_id, value) for value in subject.values()]
        return await asyncio.to_thread(self._keys.destroy, subjects)

    async def expire(
        self,
        project_id: str,  # noqa: ARG002
        cutoffs: EventCutoffs,  # noqa: ARG002
        below: Mapping[int, int],  # noqa: ARG002
    ) -> int:
        """Nothing to do here: a topic's records are deleted by the broker once older than
        the topic's ``retention.ms`` (set it to at least the longest events retention)."""
        return 0

    async def read(self, partition: int, start_offset: int, max_records: int) -> list[LogEntry]:
        _, meta = self._started()
        if not 0 <= partition < self.partitions:
            return []
        tp = self._tp(partition)
        async with self._read_lock:
            end = (await meta.end_offsets([tp]))[tp]
            if start_offset >= end or max_records <= 0:
                return []
            meta.assign([tp])
            meta.seek(tp, start_offset)
            entries: list[LogEntry] = []
            try:
                while len(entries) < max_records:
                    batch = await meta.getmany(
                        tp, timeout_ms=2000, max_records=max_records - len(entries)
                    )
                    records = batch.get(tp, [])
                    entries += [_entry(partition, r) for r in records]
                    if not records or entries[-1].offset + 1 >= end:
                        break
            finally:
                meta.pause(tp)  # no background prefetching between reads
            return await self.unseal(entries)

    async def end_offsets(self) -> dict[int, int]:
        _, meta = self._started()
        tps = [self._tp(p) for p in range(self.partitions)]
        ends = await meta.end_offsets(tps)
        return {tp.partition: offset for tp, offset in ends.items()}

    def consumer(self, group: str) -> LogConsumer:
        return KafkaLogConsumer(self, group)

    async def ping(self) -> None:
        producer, _ = self._started()
        # The broker only: the dedup store is best effort (a Redis outage skips the check),
        # so it does not make the log unavailable; /health names Redis as `rate_limit`.
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=5)


def _entry(partition: int, record: Any) -> LogEntry:
    """A consumed record as a log entry, with the trace context its producer sent."""
    trace = None
    for name, value in record.headers or ():
        if name == tracing.TRACEPARENT:
            trace = value.decode("ascii", "replace")
    return LogEntry(partition, record.offset, record.value, trace)


def _ok(result: object) -> bool:
    return not isinstance(result, BaseException)


class _Resume:
    """Positions each newly assigned partition where the sink resumes (registered as an
    aiokafka ``ConsumerRebalanceListener`` when a consumer starts: the driver is optional)."""

    def __init__(self, owner: KafkaLogConsumer, resume: ResumeFrom) -> None:
        self._owner = owner
        self._resume = resume

    async def on_partitions_revoked(self, revoked: Any) -> None:  # noqa: ARG002
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        wanted = self._resume({tp.partition for tp in assigned})
        consumer = self._owner.kafka
        for tp in assigned:
            if tp.partition in wanted:
                consumer.seek(tp, max(0, wanted[tp.partition]))
            else:
                await consumer.seek_to_beginning(tp)
        log.info("partitions assigned", group=self._owner.group, partitions=sorted(wanted))


class KafkaLogConsumer(LogConsumer):
    def __init__(self, owner: KafkaEventLog, group: str) -> None:
        self._owner = owner
        self.group = group
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def kafka(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the consumer is not started")
        return self._consumer

    @property
    def assigned(self) -> set[int]:
        if self._consumer is None:
            return set()
        return {tp.partition for tp in self._consumer.assignment()}

    async def start(self, resume: ResumeFrom) -> None:
        from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

        ConsumerRebalanceListener.register(_Resume)  # idempotent
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._owner.target.bootstrap,
            client_id=f"dataintel-{self.group}",
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            **dict(self._owner.target.consumer_options),
        )
        await self._consumer.start()
        self._consumer.subscribe([self._owner.topic], listener=_Resume(self, resume))

    async def poll(self, max_records: int, timeout_s: float) -> list[LogEntry]:
        batches = await self.kafka.getmany(
            timeout_ms=max(0, int(timeout_s * 1000)), max_records=max_records
        )
        return await self._owner.unseal(
            [
                _entry(tp.partition, record)
                for tp in sorted(batches, key=lambda tp: tp.partition)
                for record in batches[tp]
            ]
        )

    async def commit(self, next_offsets: dict[int, int]) -> None:
        from aiokafka.errors import CommitFailedError, IllegalStateError
        from aiokafka.structs import OffsetAndMetadata

        consumer = self.kafka
        mine = consumer.assignment()
        offsets = {
            tp: OffsetAndMetadata(offset, "")
            for p, offset in next_offsets.items()
            if (tp := self._owner._tp(p)) in mine
        }
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:  # a rebalance: advisory anyway
            log.info("advisory offset commit skipped", group=self.group, error=str(exc))

    async def stop(self) -> None:
        from aiokafka.errors import KafkaError

        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(KafkaError):
                await consumer.stop()
