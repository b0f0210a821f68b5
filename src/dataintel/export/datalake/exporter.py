"""The continuous data lake export: its own consumer group on the EventLog, micro-batches
per log partition, files then a commit marker (writer.py). It resumes each partition after
its last marker, so a batch a crash interrupted is written again (same file names when the
same entries come back) and committed once; on (re)assignment it first deletes the files of
its partitions that no marker commits. Runs beside the processor (roles worker and both)
when ``datalake_url`` is set; ``stop`` writes what it holds, then returns."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict

import structlog

from dataintel.export.datalake.committed import next_offsets, unlisted_files
from dataintel.export.datalake.layout import GROUP
from dataintel.export.datalake.writer import write_batch
from dataintel.storage.blob.port import BlobStore
from dataintel.storage.eventlog.port import EventLog, LogConsumer, LogEntry

log = structlog.get_logger("dataintel.datalake")


class Fenced(RuntimeError):
    """Another member of the group committed this partition past the batch: its batch wins,
    this one is dropped and the consumer restarts from the markers."""


class DataLakeExport:
    def __init__(
        self, eventlog: EventLog, store: BlobStore, batch_events: int, flush_seconds: float
    ) -> None:
        self.eventlog = eventlog
        self.store = store
        self.batch_events = batch_events
        self.flush_seconds = flush_seconds
        self.buffer: list[LogEntry] = []
        self.files_written = 0
        self._since: float | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="dataintel-datalake")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        consumer = await self._consumer()
        log.info("data lake export started", store=self.store.url)
        try:
            while not self._stop.is_set():
                try:
                    await self.step(consumer)
                except Exception:
                    log.exception("data lake batch failed; resuming from the commit markers")
                    consumer = await self._restart(consumer)
            await self._last_flush(consumer)
        finally:
            await consumer.stop()

    async def _last_flush(self, consumer: LogConsumer) -> None:
        """On stop: commit what is held (what fails is written again by the next start)."""
        try:
            if self.buffer:
                await self.flush(consumer)
        except Exception:
            log.exception("data lake: the last batch before stopping failed")

    async def _restart(self, consumer: LogConsumer) -> LogConsumer:
        self.buffer.clear()
        self._since = None
        await consumer.stop()
        await asyncio.sleep(0.5)
        return await self._consumer()

    async def _consumer(self) -> LogConsumer:
        consumer = self.eventlog.consumer(GROUP)
        await consumer.start(self.resume)
        return consumer

    def resume(self, partitions: set[int]) -> dict[int, int]:
        """Where each assigned partition resumes: after its last marker. Files of these
        partitions from an uncommitted batch are deleted first."""
        nexts = next_offsets(self.store, partitions)
        orphans, _ = unlisted_files(self.store)
        for name in orphans:
            if name.partition in partitions and name.first >= nexts[name.partition]:
                self.store.delete(name.key)
                log.info("deleted an uncommitted data lake file", key=name.key)
        return nexts

    async def step(self, consumer: LogConsumer) -> None:
        room = max(1, self.batch_events - len(self.buffer))
        entries = await consumer.poll(room, timeout_s=0.2)
        if entries and self._since is None:
            self._since = time.monotonic()
        self.buffer.extend(entries)
        full = len(self.buffer) >= self.batch_events
        due = self._since is not None and time.monotonic() - self._since >= self.flush_seconds
        if self.buffer and (full or due):
            await self.flush(consumer)

    async def flush(self, consumer: LogConsumer) -> None:
        """Write and commit the held entries, one batch per log partition."""
        by_partition: dict[int, list[LogEntry]] = defaultdict(list)
        for entry in self.buffer:
            by_partition[entry.partition].append(entry)
        done: dict[int, int] = {}
        for partition, entries in sorted(by_partition.items()):
            await asyncio.to_thread(self._commit, partition, entries)
            done[partition] = entries[-1].offset + 1
        self.buffer.clear()
        self._since = None
        await consumer.commit(done)

    def _commit(self, partition: int, entries: list[LogEntry]) -> None:
        committed = next_offsets(self.store, {partition})[partition]
        if committed > entries[0].offset:
            raise Fenced(f"partition {partition} is committed up to {committed} already")
        marker = write_batch(self.store, partition, entries)
        self.files_written += len(marker.files)
        log.debug("data lake batch committed", marker=marker.key, files=len(marker.files))
