"""Process-wide objects the app builds once at start-up and hands to requests."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dataintel.api.ratelimit import RateLimiter
from dataintel.config.deployments.runtime import ActiveConfigCache
from dataintel.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    rate_limiter: RateLimiter | None
    config_cache: ActiveConfigCache
    metrics_registry: CollectorRegistry = field(default_factory=CollectorRegistry)
