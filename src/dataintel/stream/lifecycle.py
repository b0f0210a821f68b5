"""Start and stop the stream processor beside the stores the composition root opened
(``dataintel.composition``): in the API process in embedded mode, and in `dataintel worker`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.features.online.engine import FeatureEngine
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.online.port import OnlineStore
from dataintel.storage.stores import Stores
from dataintel.stream.gc_tuning import tune_gc
from dataintel.stream.processor import Processor, ProcessorMetrics
from dataintel.stream.progress import Progress

log = structlog.get_logger("dataintel.runtime")


@dataclass
class StreamRuntime:
    """The processor's life beside stores the composition root opened (and closes)."""

    progress: Progress
    processor: Processor | None
    features: FeatureEngine | None = None

    @classmethod
    async def start(
        cls,
        stores: Stores,
        registry: CollectorRegistry,
        *,
        batch_events: int,
        configs: ActiveConfigCache | None,
        sessions: sessionmaker[Session],
    ) -> StreamRuntime:
        """Start the processor when ``configs`` is given (this process runs it) and the
        analytics store is open; otherwise only follow another process's progress."""
        analytics, online = stores.analytics, stores.online
        progress = Progress(_both_positions(analytics, online) if analytics is not None else None)
        if configs is None or analytics is None:
            return cls(progress, None)
        features = FeatureEngine(online, analytics, configs, sessions)
        metrics = ProcessorMetrics.create(registry)
        processor = Processor(stores.eventlog, analytics, progress, metrics, batch_events, features)
        tune_gc()
        processor.start()
        log.info("stream processor started", analytics=type(analytics).__name__)
        return cls(progress, processor, features)

    async def stop(self) -> None:
        if self.processor is not None:
            await self.processor.stop()
        if self.features is not None:
            self.features.close()


def _both_positions(analytics: AnalyticsStore, online: OnlineStore) -> Callable[[], dict[int, int]]:
    """What a processor in another process has applied to BOTH sinks (``wait=processed``)."""

    def read() -> dict[int, int]:
        done = online.positions()
        return {p: min(n, done.get(p, 0)) for p, n in analytics.positions().items()}

    return read
