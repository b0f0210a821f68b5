"""Start and stop what runs beside the HTTP handlers: the EventLog, the AnalyticsStore and,
in embedded mode, the stream processor. Used by the app lifespan and `dataintel worker`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.features.online.engine import FeatureEngine
from dataintel.settings import Settings
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from dataintel.storage.eventlog.port import EventLog
from dataintel.storage.eventlog.registry import open_eventlog
from dataintel.storage.online.port import OnlineStore
from dataintel.storage.online.registry import open_online
from dataintel.stream.gc_tuning import tune_gc
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
    online: OnlineStore
    features: FeatureEngine | None = None

    @classmethod
    async def start(
        cls,
        settings: Settings,
        registry: CollectorRegistry,
        *,
        run_processor: bool,
        configs: ActiveConfigCache,
        sessions: sessionmaker[Session],
        open_analytics_store: bool = True,
    ) -> StreamRuntime:
        eventlog = open_eventlog(settings.resolved_eventlog_url, settings)
        await eventlog.start()
        online = await asyncio.to_thread(
            open_online, settings.resolved_online_url, settings.online_ttl_seconds
        )
        analytics = None
        if open_analytics_store or run_processor:
            url = settings.resolved_analytics_url
            analytics = await asyncio.to_thread(open_analytics, url)
        progress = Progress(_both_positions(analytics, online) if analytics is not None else None)
        processor = None
        features = None
        if run_processor and analytics is not None:
            features = FeatureEngine(online, analytics, configs, sessions)
            processor = Processor(
                eventlog,
                analytics,
                progress,
                ProcessorMetrics.create(registry),
                settings.processor_batch_events,
                features,
            )
            tune_gc()
            processor.start()
        log.info(
            "stream runtime started",
            eventlog=type(eventlog).__name__,
            analytics=type(analytics).__name__ if analytics else None,
            processor=processor is not None,
        )
        return cls(eventlog, analytics, progress, processor, online, features)

    async def stop(self) -> None:
        if self.processor is not None:
            await self.processor.stop()
        if self.features is not None:
            self.features.close()
        await self.eventlog.close()
        if self.analytics is not None:
            await asyncio.to_thread(self.analytics.close)
        await asyncio.to_thread(self.online.close)


def _both_positions(analytics: AnalyticsStore, online: OnlineStore) -> Callable[[], dict[int, int]]:
    """What a processor in another process has applied to BOTH sinks (``wait=processed``)."""

    def read() -> dict[int, int]:
        done = online.positions()
        return {p: min(n, done.get(p, 0)) for p, n in analytics.positions().items()}

    return read
