"""Cached analytics answers, keyed by the request and the analytics store's watermark.

``AnalyticsCache.fetch(store, project_id, endpoint, params, compute)`` answers from the
cache when an identical request (same project, endpoint and normalised parameters) was
answered while the store held exactly the same events, else calls ``compute`` and keeps
its JSON. The watermark is the store's applied log positions: any new event moves it, so a
cached answer is never staler than the store (the positions are read before computing, so
an answer stored under them holds at least the data they stand for). The project is part
of the key: a tenant never reads another's entry.

The backend is the Cache port (``settings.cache_url``): Redis when configured (shared by
every replica), else an in-process LRU map. A cache that fails (Redis down) is skipped:
the answer is computed, never refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson
import structlog
from pydantic import BaseModel

from dataintel.api.ports import Port
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.cache import Cache

DEFAULT_TTL_S = 3600  # an entry whose watermark still holds lives this long at most
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Cached:
    body: bytes  # the answer as JSON
    hit: bool


def watermark(store: AnalyticsStore) -> list[tuple[int, int]]:
    return sorted(store.positions().items())


def cache_key(project_id: str, endpoint: str, params: Mapping[str, object], mark: object) -> str:
    blob = orjson.dumps(
        [project_id, endpoint, params, mark], option=orjson.OPT_SORT_KEYS, default=str
    )
    return f"analytics:{project_id}:{hashlib.sha256(blob).hexdigest()}"


class AnalyticsCache:
    def __init__(self, backend: Cache, ttl_s: int = DEFAULT_TTL_S) -> None:
        self.backend = backend
        self.ttl_s = ttl_s

    def fetch(
        self,
        store: AnalyticsStore,
        project_id: str,
        endpoint: str,
        params: Mapping[str, object],
        compute: Callable[[], BaseModel],
    ) -> Cached:
        key = cache_key(project_id, endpoint, params, watermark(store))
        hit = self._get(key)
        if hit is not None:
            return Cached(hit, True)
        body = compute().model_dump_json(by_alias=True).encode()
        self._put(key, body)
        return Cached(body, False)

    def _get(self, key: str) -> bytes | None:
        try:
            return self.backend.get(key)
        except Exception as exc:  # noqa: BLE001 - a cache outage must not fail the answer
            log.warning("analytics_cache_unavailable", error=str(exc))
            return None

    def _put(self, key: str, body: bytes) -> None:
        try:
            self.backend.put(key, body, self.ttl_s)
        except Exception as exc:  # noqa: BLE001 - as in _get
            log.warning("analytics_cache_unavailable", error=str(exc))

    def close(self) -> None:
        self.backend.close()


ANALYTICS_CACHE: Port[AnalyticsCache] = Port(
    "analytics_cache", "the analytics cache is not available in this process"
)
