"""Process-wide ingest objects: compiled validators, the stats aggregator, the replay guard.

One ``IngestRuntime`` per app, kept on ``app.state.ingest``. ``runtime_of(app)`` builds it
on first use; the app's lifespan should call ``runtime_of(app).start()`` at start-up and
``.stop()`` at shutdown (the stats flusher thread; a final flush).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from fastapi import FastAPI, Request

from dataintel.api.state import AppState
from dataintel.ingest.stats import IngestStats
from dataintel.ingest.validation import Limits, ValidatorCache
from dataintel.storage.cache import Cache, open_cache

_BUILD_LOCK = threading.Lock()


@dataclass
class IngestRuntime:
    validators: ValidatorCache
    stats: IngestStats
    replay_guard: Cache
    max_batch_events: int

    @classmethod
    def build(cls, state: AppState, stats_interval_s: float = 1.0) -> IngestRuntime:
        settings = state.settings
        limits = Limits(
            future_skew_us=settings.ingest_max_future_skew_seconds * 1_000_000,
            lateness_us=settings.ingest_allowed_lateness_seconds * 1_000_000,
        )
        return cls(
            validators=ValidatorCache(limits),
            stats=IngestStats(state.sessions, stats_interval_s),
            replay_guard=open_cache(settings.cache_url),
            max_batch_events=settings.ingest_max_batch_events,
        )

    def start(self) -> None:
        self.stats.start()

    def stop(self) -> None:
        self.stats.stop()
        self.replay_guard.close()


def runtime_of(app: FastAPI) -> IngestRuntime:
    runtime: IngestRuntime | None = getattr(app.state, "ingest", None)
    if runtime is None:
        with _BUILD_LOCK:
            runtime = getattr(app.state, "ingest", None)
            if runtime is None:
                runtime = IngestRuntime.build(app.state.dataintel)
                app.state.ingest = runtime
    return runtime


def ingest_runtime(request: Request) -> IngestRuntime:
    return runtime_of(request.app)
