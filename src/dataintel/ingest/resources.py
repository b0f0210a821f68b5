"""Process-wide ingest objects: compiled validators, the stats aggregator, the replay guard.

Built once per process by the composition root (``dataintel.composition``), provided as
``INGEST``; ``start()`` at start-up and ``stop()`` at shutdown (the stats flusher thread, a
final flush).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from dataintel.api.deps import app_state
from dataintel.api.ports import Port
from dataintel.ingest.stats import IngestStats
from dataintel.ingest.suppression import Suppressions
from dataintel.ingest.validation import Limits, ValidatorCache
from dataintel.settings import Settings
from dataintel.storage.cache import Cache, open_cache


@dataclass
class IngestRuntime:
    validators: ValidatorCache
    stats: IngestStats
    replay_guard: Cache
    max_batch_events: int
    suppressions: Suppressions

    @classmethod
    def build(
        cls, settings: Settings, sessions: sessionmaker[Session], stats_interval_s: float = 1.0
    ) -> IngestRuntime:
        limits = Limits(
            future_skew_us=settings.ingest_max_future_skew_seconds * 1_000_000,
            lateness_us=settings.ingest_allowed_lateness_seconds * 1_000_000,
        )
        return cls(
            validators=ValidatorCache(limits),
            stats=IngestStats(sessions, stats_interval_s),
            replay_guard=open_cache(settings.cache_url),
            max_batch_events=settings.ingest_max_batch_events,
            suppressions=Suppressions(sessions, settings.gdpr_suppression_refresh_seconds),
        )

    def start(self) -> None:
        self.stats.start()

    def stop(self) -> None:
        self.stats.stop()
        self.replay_guard.close()


INGEST: Port[IngestRuntime] = Port("ingest", "this process does not accept events")


def ingest_runtime(request: Request) -> IngestRuntime:
    return app_state(request).port(INGEST)
