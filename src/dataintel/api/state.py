"""Process-wide objects the app builds once at start-up and hands to requests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dataintel.api.ratelimit import RateLimiter
from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.features.online.engine import FeatureEngine
from dataintel.features.serving.service import FeatureServer
from dataintel.settings import Settings
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.eventlog.port import EventLog
from dataintel.storage.online.port import OnlineStore
from dataintel.stream.progress import Progress


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    rate_limiter: RateLimiter | None
    config_cache: ActiveConfigCache
    metrics_registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    # Set by the app's lifespan (ingestion issue); None until started.
    eventlog: EventLog | None = None
    analytics: AnalyticsStore | None = None
    progress: Progress | None = None
    online: OnlineStore | None = None
    features: FeatureEngine | None = None  # the in-process processor's, when it runs here
    processor_lock: asyncio.Lock | None = None  # held by that processor while it applies
    feature_server: FeatureServer | None = None
    projects: Any = None  # api.fast_scope.ProjectDirectory, made on first use
