"""The EventLog port: the durable, replayable log between ingest and every sink.

A 2xx from ingest means ``append`` returned: the events are durable in the log. Everything
after the log (the processor and its sinks) is replayable from it.

Dedup: ``append`` refuses an item whose ``dedup_key`` was appended within the dedup window.
The embedded adapter checks and records the key in the same transaction as the append (exact);
the Kafka adapter checks a shared dedup store before producing and records after (best effort:
a crash between the two may let a retry through), which is why every sink is idempotent on
(project_id, event_id) as well.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from dataintel.model.retention import EventCutoffs
from dataintel.model.subject import Subject


class NotErasable(Exception):
    """The log cannot erase single entries (the reason is the message)."""


@dataclass(frozen=True, slots=True)
class AppendItem:
    key: str  # partitioning key: the entity (user, cart, session) or the event id
    value: bytes  # one stored event, serialised (orjson)
    dedup_key: str | None = None  # f"{project_id}/{event_id}"; None: never deduplicated
    # (project id, the user / cart / session id) whose data key seals the record where the
    # log crypto-shreds (Kafka); None: no entity
    subject: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    accepted: list[bool]  # per item, in order; False: a duplicate within the dedup window
    positions: dict[int, int]  # partition -> offset of the last item written there
    # True: the log was down and the items wait, durably, in the local spool (spool.py);
    # no positions yet, so nobody can wait for them to be processed.
    spooled: bool = False


@dataclass(frozen=True, slots=True)
class LogEntry:
    partition: int
    offset: int
    value: bytes
    # The W3C traceparent of the request that appended it (Kafka record header), when
    # tracing was on: the processor continues that trace (dataintel.tracing).
    trace: str | None = None


# Given the partitions assigned to a consumer, where to resume each (next offset to read).
ResumeFrom = Callable[[set[int]], dict[int, int]]


class LogConsumer(ABC):
    """One member of a consumer group. The sinks own the positions (exactly-once); the log's
    own committed offsets are advisory (lag metrics, tooling)."""

    @abstractmethod
    async def start(self, resume: ResumeFrom) -> None: ...

    @abstractmethod
    async def poll(self, max_records: int, timeout_s: float) -> list[LogEntry]:
        """Up to ``max_records`` entries in offset order per partition; [] after the timeout."""

    @abstractmethod
    async def commit(self, next_offsets: dict[int, int]) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @property
    @abstractmethod
    def assigned(self) -> set[int]: ...


class EventLog(ABC):
    partitions: int

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def append(self, items: Sequence[AppendItem]) -> AppendResult:
        """Durably append; returns only once every accepted item is durable."""

    @abstractmethod
    async def erase(self, subject: Subject, below: Mapping[int, int]) -> int:
        """Erase the subject's entries at offsets below ``below`` (per partition: every sink
        has applied them) so that none of their bytes stay in the log's files; returns how
        many entries were erased. Raises ``NotErasable`` where the log cannot do it."""

    @abstractmethod
    async def expire(self, project_id: str, cutoffs: EventCutoffs, below: Mapping[int, int]) -> int:
        """Retention: erase, as ``erase`` does, the project's entries whose event time is
        before their event's cutoff, at offsets below ``below``; returns how many. A log
        whose entries expire by themselves (Kafka: the topic's retention) returns 0."""

    @abstractmethod
    async def read(self, partition: int, start_offset: int, max_records: int) -> list[LogEntry]:
        """Entries of one partition from ``start_offset`` (inclusive), for tools and tests."""

    @abstractmethod
    async def end_offsets(self) -> dict[int, int]:
        """Per partition, the offset the next appended entry will get."""

    @abstractmethod
    def consumer(self, group: str) -> LogConsumer: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise when the log cannot be reached (readiness)."""
