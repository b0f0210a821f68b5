"""The stores a process holds, opened and closed together by the composition root."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from dataintel.storage.eventlog.port import EventLog
from dataintel.storage.eventlog.registry import EventLogSettings, open_eventlog
from dataintel.storage.online.port import OnlineStore
from dataintel.storage.online.registry import open_online


@dataclass
class Stores:
    eventlog: EventLog
    online: OnlineStore
    analytics: AnalyticsStore | None  # None: an in-process engine another process holds

    @classmethod
    async def open(
        cls,
        settings: EventLogSettings,
        *,
        eventlog_url: str,
        online_url: str,
        online_ttl_seconds: int,
        analytics_url: str | None,
    ) -> Stores:
        eventlog = open_eventlog(eventlog_url, settings)
        await eventlog.start()
        online = await asyncio.to_thread(open_online, online_url, online_ttl_seconds)
        analytics = None
        if analytics_url is not None:
            analytics = await asyncio.to_thread(open_analytics, analytics_url)
        return cls(eventlog, online, analytics)

    async def close(self) -> None:
        await self.eventlog.close()
        if self.analytics is not None:
            await asyncio.to_thread(self.analytics.close)
        await asyncio.to_thread(self.online.close)
