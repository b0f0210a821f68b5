"""The stream processor: EventLog → sinks in micro-batches, exactly once.

At-least-once delivery from the log plus idempotent sinks: each sink stores the positions it
has applied atomically with its writes and skips what it has already applied, so a crash at
any point neither loses nor duplicates. The log's committed offsets are advisory (lag).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow.compute as pc
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from dataintel import tracing
from dataintel.features.online.engine import FeatureEngine
from dataintel.storage.analytics.port import AnalyticsStore, ApplyResult
from dataintel.storage.eventlog.port import EventLog, LogConsumer, LogEntry
from dataintel.stream.progress import Progress

log = structlog.get_logger("dataintel.processor")
GROUP = "dataintel-processor"


@dataclass
class ProcessorMetrics:
    applied: Counter
    skipped: Counter
    batch_seconds: Histogram
    lag: Gauge
    paused: Gauge
    depth: Gauge
    freshness: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ProcessorMetrics:
        """The metrics of ``registry`` (registered once, reused when an app restarts)."""
        existing = _METRICS.get(registry)
        if existing is None:
            existing = _METRICS[registry] = cls._register(registry)
        return existing

    @classmethod
    def _register(cls, registry: CollectorRegistry) -> ProcessorMetrics:
        return cls(
            applied=Counter(
                "dataintel_processor_events_applied",
                "Events written to the analytics store.",
                registry=registry,
            ),
            skipped=Counter(
                "dataintel_processor_events_skipped",
                "Log entries skipped as already applied (replays after a restart).",
                registry=registry,
            ),
            batch_seconds=Histogram(
                "dataintel_processor_batch_seconds",
                "Time to apply one micro-batch.",
                registry=registry,
            ),
            lag=Gauge(
                "dataintel_processor_lag_events",
                "Log entries appended but not yet applied (this process's view).",
                registry=registry,
            ),
            depth=Gauge(
                "dataintel_eventlog_entries",
                "Entries in the event log (the sum of its partitions' end offsets).",
                registry=registry,
            ),
            freshness=Histogram(
                "dataintel_processor_freshness_seconds",
                "From an event's acknowledgement at ingest (received_at) to its micro-batch "
                "being applied to the analytics store and the online features; observed per "
                "batch for its oldest event (the worst case).",
                buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
                registry=registry,
            ),
            paused=Gauge(
                "dataintel_processor_paused",
                "1 while the processor waits for a store that went away (it resumes where "
                "the stores are when they answer again).",
                registry=registry,
            ),
        )


_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, ProcessorMetrics] = (
    weakref.WeakKeyDictionary()
)


class Processor:
    def __init__(
        self,
        eventlog: EventLog,
        analytics: AnalyticsStore,
        progress: Progress,
        metrics: ProcessorMetrics,
        batch_events: int,
        features: FeatureEngine | None = None,
    ) -> None:
        self.features = features
        self.eventlog = eventlog
        self.analytics = analytics
        self.progress = progress
        self.metrics = metrics
        self.batch_events = batch_events
        self._stop = asyncio.Event()
        self.lock = asyncio.Lock()  # held while a batch or a backfill is applied
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="dataintel-processor")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        consumer = await self._consumer()
        log.info("processor started", partitions=sorted(consumer.assigned))
        try:
            while not self._stop.is_set():
                try:
                    await self.step(consumer)
                except Exception:
                    log.exception("processor batch failed; resuming from the sink positions")
                    await consumer.stop()
                    # The consumer read past the failed batch: restart it where the sinks
                    # are, once they answer again (a store that went away pauses the
                    # processor; nothing is skipped, nothing applied twice).
                    consumer = await self._restart()
        finally:
            await consumer.stop()

    async def _restart(self) -> LogConsumer:
        pause = 0.5
        while True:
            await asyncio.sleep(pause)
            try:
                return await self._consumer()
            except Exception as exc:  # noqa: BLE001 - a store still down: wait, try again
                log.warning("processor paused: a store is unavailable", error=str(exc)[:300])
                self.metrics.paused.set(1)
                pause = min(pause * 2, 5.0)

    async def _consumer(self) -> LogConsumer:
        """A started consumer, once every sink answers. A consumer that started but whose
        sinks then failed is stopped before the error goes up: left running, it stayed in
        the group (its heartbeats go on in the background) holding partitions that nobody
        polled, and the restarted processor never applied them again."""
        consumer = self.eventlog.consumer(GROUP)
        try:
            await consumer.start(self._resume)
            await self.progress.advance(await asyncio.to_thread(self.applied_positions))
        except BaseException:
            await consumer.stop()
            raise
        self.metrics.paused.set(0)
        return consumer

    def applied_positions(self) -> dict[int, int]:
        """Per partition, the next offset EVERY sink has applied (the resume point)."""
        applied = self.analytics.positions()
        if self.features is None:
            return applied
        online = self.features.online.positions()
        return {p: min(n, online.get(p, 0)) for p, n in applied.items()}

    def _resume(self, partitions: set[int]) -> dict[int, int]:
        applied = self.applied_positions()
        return {p: applied.get(p, 0) for p in partitions}

    async def _between_batches(self) -> None:
        """Backfill new feature versions while both sinks stand at the same position."""
        if self.features is not None:
            await asyncio.to_thread(self.features.maybe_backfill)

    async def step(self, consumer: LogConsumer) -> int:
        async with self.lock:
            await self._between_batches()
        entries = await consumer.poll(self.batch_events, timeout_s=0.2)
        if not entries:
            return 0
        async with self.lock:
            applied = await self.apply(entries)
        await consumer.commit(self.progress.snapshot())
        return applied

    async def apply(self, entries: list[LogEntry]) -> int:
        started = time.perf_counter()
        with tracing.batch_span(
            "processor.batch", (entry.trace for entry in entries), entries=len(entries)
        ):
            result = await asyncio.to_thread(self._apply_sinks, entries)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.metrics.applied.inc(result.inserted)
        self.metrics.skipped.inc(result.skipped)
        await self.progress.advance(result.positions)
        self._observe_freshness(result)
        ends = await self.eventlog.end_offsets()
        done = self.progress.snapshot()
        self.metrics.lag.set(sum(max(0, end - done.get(p, 0)) for p, end in ends.items()))
        self.metrics.depth.set(sum(ends.values()))
        return result.inserted

    def _observe_freshness(self, result: ApplyResult) -> None:
        batch = result.batch
        if batch is None or not result.inserted or "received_at" not in batch.column_names:
            return
        oldest = pc.min(batch.column("received_at")).as_py()
        if oldest is not None:
            received = oldest if oldest.tzinfo is not None else oldest.replace(tzinfo=UTC)
            self.metrics.freshness.observe(max(0.0, (datetime.now(UTC) - received).total_seconds()))

    def _apply_sinks(self, entries: list[LogEntry]) -> ApplyResult:
        result = self.analytics.apply(entries)
        if self.features is not None:
            self.features.apply(entries, result)
        return result
