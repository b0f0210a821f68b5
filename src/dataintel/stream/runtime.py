"""Start and stop what runs beside the HTTP handlers: the EventLog, the AnalyticsStore and,
in embedded mode, the stream processor. Used by the app lifespan and `dataintel worker`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry

from dataintel.settings import Settings
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from dataintel.storage.eventlog.port import EventLog
from dataintel.storage.eventlog.registry import open_eventlog
from dataintel.stream.processor import Processor, ProcessorMetrics
from dataintel.stream.progress import Progress

log = structlog.get_logger("dataintel.runtime")


def embedded_analytics(settings: Settings) -> bool:
    """An in-process analytics engine (DuckDB, chDB) can be open in one process only: the
    one running the processor."""
    return settings.resolved_analytics_url.startswith(("duckdb:", "chdb:"))


@dataclass
class StreamRuntime:
    eventlog: EventLog
    analytics: AnalyticsStore | None
    progress: Progress
    processor: Processor | None

    @classmethod
    async def start(
        cls,
        settings: Settings,
        registry: CollectorRegistry,
        *,
        run_processor: bool,
        open_analytics_store: bool = True,
    ) -> StreamRuntime:
        eventlog = open_eventlog(settings.resolved_eventlog_url, settings)
        await eventlog.start()
        analytics = None
        if open_analytics_store or run_processor:
            url = settings.resolved_analytics_url
            analytics = await asyncio.to_thread(open_analytics, url)
        progress = Progress(analytics.positions if analytics is not None else None)
        processor = None
        if run_processor and analytics is not None:
            processor = Processor(
                eventlog,
                analytics,
                progress,
                ProcessorMetrics.create(registry),
                settings.processor_batch_events,
            )
            processor.start()
        log.info(
            "stream runtime started",
            eventlog=type(eventlog).__name__,
            analytics=type(analytics).__name__ if analytics else None,
            processor=processor is not None,
        )
        return cls(eventlog, analytics, progress, processor)

    async def stop(self) -> None:
        if self.processor is not None:
            await self.processor.stop()
        await self.eventlog.close()
        if self.analytics is not None:
            await asyncio.to_thread(self.analytics.close)
