"""What the composition root (``dataintel.composition``) built for this process, as requests
see it: the basics every process has, and the ports and services of its role, handed out by
typed token. api/ knows no plane: a plane declares the token of what it offers (beside the
class), the composition root provides it, endpoints ask ``state.port(TOKEN)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import CollectorRegistry

from dataintel.api.ports import Port
from dataintel.errors import Unavailable
from dataintel.storage.breakers import Breakers

if TYPE_CHECKING:  # annotations only: importing the tokens stays cheap
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from dataintel.api.ratelimit import RateLimiter
    from dataintel.settings import Settings
    from dataintel.storage.analytics.port import AnalyticsStore
    from dataintel.storage.eventlog.port import EventLog
    from dataintel.storage.online.port import OnlineStore

T = TypeVar("T")


EVENTLOG: Port[EventLog] = Port("eventlog", "the event log is not started; retry shortly")
ANALYTICS: Port[AnalyticsStore] = Port(
    "analytics", "the analytics store is not open in this process"
)
ONLINE: Port[OnlineStore] = Port("online", "the online store is not open in this process")


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    rate_limiter: RateLimiter | None
    metrics_registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    breakers: Breakers = field(default_factory=Breakers)
    _held: dict[Port[Any], Any] = field(default_factory=dict)

    def provide(self, token: Port[T], value: T) -> None:
        self._held[token] = value

    def withdraw(self, token: Port[Any]) -> None:
        self._held.pop(token, None)

    def port(self, token: Port[T]) -> T:
        """The port, or 503 naming why this process does not hold it (the one check)."""
        value: T | None = self._held.get(token)
        if value is None:
            raise Unavailable(token.absent)
        return value

    def find(self, token: Port[T]) -> T | None:
        """The port when held (health checks list what this process has)."""
        value: T | None = self._held.get(token)
        return value
