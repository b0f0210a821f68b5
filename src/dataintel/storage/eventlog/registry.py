"""Open the EventLog named by a URL: ``sqlite:///path`` (embedded) or ``kafka://host:port/topic``."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

from dataintel.storage.eventlog.port import EventLog


class EventLogSettings(Protocol):
    """What the adapters read of the process settings (``dataintel.settings.Settings`` has
    it; storage does not import the settings module, DESIGN.md §4)."""

    @property
    def dedup_window_seconds(self) -> int: ...

    @property
    def cache_url(self) -> str: ...

    @property
    def resolved_metadata_url(self) -> str: ...


def open_eventlog(url: str, settings: EventLogSettings) -> EventLog:
    """The adapter for ``url`` (not started: call ``await log.start()``)."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from dataintel.storage.eventlog.sqlite import SqliteEventLog

        return SqliteEventLog.from_url(url, settings.dedup_window_seconds)
    if scheme == "kafka":
        try:
            import aiokafka  # noqa: F401
        except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "eventlog_url kafka:// needs the aiokafka package: pip install aiokafka"
            ) from exc
        from dataintel.storage.eventlog.dedup import open_dedup_store
        from dataintel.storage.eventlog.kafka import KafkaEventLog
        from dataintel.storage.eventlog.shredding import SubjectKeys
        from dataintel.storage.metadata.engine import make_engine, make_sessionmaker

        dedup = open_dedup_store(settings.cache_url, settings.dedup_window_seconds)
        keys = SubjectKeys(make_sessionmaker(make_engine(settings.resolved_metadata_url)))
        return KafkaEventLog.from_url(url, dedup, keys)
    raise ValueError(f"unsupported eventlog_url scheme {scheme!r} (sqlite, kafka)")
