"""Cached analytics answers, keyed by the request and the analytics store's watermark.

An answer is cached under (project, endpoint, the request as sent — its query string or
canonical body —, the deployed config version, the store's watermark). The watermark is
the store's applied log positions: any new event moves it, so a cached answer is never
staler than the store (the positions are read before computing, so an answer stored under
them holds at least the data they stand for). The project is part of the key: a tenant
never reads another's entry.

Answers read the clock too: "now" is the current minute (``minute_now``), which is what
``to`` defaults to and what decides whether a cart is abandoned yet, a window still open,
an outcome still pending. An answer whose period (plus any horizon) reaches the current
minute is therefore kept until the minute ends; one about the past, while the data holds
(and ``DEFAULT_TTL_S`` at most).

The backend is the Cache port (``settings.cache_url``): Redis when configured (shared by
every replica), else an in-process LRU map. A cache that fails (Redis down) is skipped:
the answer is computed, never refused.

Degradation: each computed answer is also kept as the request's *last* answer (without the
watermark, ``STALE_TTL_S``). When the analytics store is down (its circuit breaker counts
the outage or is open), the request gets that last answer, marked stale with its age
(``X-Stale: true``, ``Age``), or, without one, the 503 that names the store. A store that
answers from data it could not bring up to date (a data lake replica whose lake does not
answer: ``AnalyticsStore.staleness``) answers, marked stale with that data's age.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import structlog
from pydantic import BaseModel

from dataintel.api.ports import Port
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.breakers import BackendFailed, BackendUnavailable
from dataintel.storage.cache import Cache

DEFAULT_TTL_S = 3600  # an entry whose watermark still holds lives this long at most
STALE_TTL_S = 24 * 3600  # how long a request's last answer may stand in for a down store
MINUTE = timedelta(minutes=1)
log = structlog.get_logger(__name__)
DOWN = (BackendFailed, BackendUnavailable)  # the store is down (its circuit breaker says)


def minute_now() -> datetime:
    """The analyses' "now": the current UTC minute."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class Fresh:
    """A computed answer and until when it holds while the data does not change."""

    model: BaseModel
    valid_until: datetime | None  # None: as long as the data does not change


def fresh(model: BaseModel, now: datetime, reads_clock: bool) -> Fresh:
    """``now``: the minute the answer was computed for. ``reads_clock``: the answer looks at
    instants at or after it (its period, or an outcome horizon, reaches the present), so it
    changes with the clock and holds until that minute ends."""
    return Fresh(model, now + MINUTE if reads_clock else None)


@dataclass(frozen=True, slots=True)
class Cached:
    body: bytes  # the answer as JSON
    hit: bool
    stale_age_s: int | None = None  # the store was down: the last answer, this old


@dataclass(frozen=True, slots=True)
class RequestKey:
    project_id: str
    endpoint: str
    request: str  # the query string as sent, or the canonical JSON body
    config_version: int | None  # the deployed config the answer reads its settings from


def watermark(store: AnalyticsStore) -> list[tuple[int, int]]:
    """What the store's data is at: its log positions, and (as partition -1) how many
    erasures it has carried out, which change its data without moving a position."""
    return [(-1, store.erasures()), *sorted(store.positions().items())]


def last_key(request: RequestKey) -> str:
    """Where the request's last computed answer is kept (whatever the data was)."""
    blob = orjson.dumps(
        [request.project_id, request.endpoint, request.request, request.config_version]
    )
    return f"analytics-last:{request.project_id}:{hashlib.sha256(blob).hexdigest()}"


def cache_key(request: RequestKey, mark: object) -> str:
    blob = orjson.dumps(
        [request.project_id, request.endpoint, request.request, request.config_version, mark]
    )
    return f"analytics:{request.project_id}:{hashlib.sha256(blob).hexdigest()}"


class AnalyticsCache:
    def __init__(
        self, backend: Cache, ttl_s: int = DEFAULT_TTL_S, clock: Callable[[], float] = time.time
    ) -> None:
        self.backend = backend
        self.ttl_s = ttl_s
        self._clock = clock

    def lookup(self, store: AnalyticsStore, request: RequestKey) -> bytes | None:
        """The cached answer to ``request`` over the store's current data, if any (None
        also when the store is down: the route then answers, stale or 503)."""
        try:
            mark = watermark(store)
        except DOWN:
            return None
        if store.staleness() is not None:
            return None  # the route answers, marked stale
        return self._get(cache_key(request, mark))

    async def lookup_async(self, store: AnalyticsStore, request: RequestKey) -> bytes | None:
        """``lookup`` from the event loop: in place when the watermark and the backend are
        both in this process's memory (no I/O), else in a worker thread."""
        if store.positions_in_memory and self.backend.in_process:
            return self.lookup(store, request)
        return await asyncio.to_thread(self.lookup, store, request)

    def answer(
        self, store: AnalyticsStore, request: RequestKey, compute: Callable[[], Fresh]
    ) -> Cached:
        """The cached answer, else ``compute``'s, kept for the next identical request; with
        the store down, the request's last answer marked stale (else the outage raises)."""
        try:
            key = cache_key(request, watermark(store))
            age = store.staleness()
            hit = self._get(key)
            if hit is not None:
                return Cached(hit, True, age)
            result = compute()
        except DOWN:
            stale = self._stale(request)
            if stale is None:
                raise
            return stale
        body = result.model.model_dump_json(by_alias=True).encode()
        self._put(key, body, result.valid_until)
        if age is None:  # the last answer stands for the newest data
            self._keep_last(request, body)
        return Cached(body, False, age)

    def _keep_last(self, request: RequestKey, body: bytes) -> None:
        try:
            stamp = repr(self._clock()).encode()
            self.backend.put(last_key(request), stamp + b" " + body, STALE_TTL_S)
        except Exception as exc:  # noqa: BLE001 - as in _get
            log.warning("analytics_cache_unavailable", error=str(exc))

    def _stale(self, request: RequestKey) -> Cached | None:
        try:
            value = self.backend.get(last_key(request))
        except Exception:  # noqa: BLE001 - no cache either: the outage stands
            return None
        if value is None:
            return None
        at, _, body = value.partition(b" ")
        age = max(0, round(self._clock() - float(at)))
        log.warning("analytics store down: a stale answer", age_s=age)
        return Cached(body, True, age)

    def _get(self, key: str) -> bytes | None:
        try:
            value = self.backend.get(key)
        except Exception as exc:  # noqa: BLE001 - a cache outage must not fail the answer
            log.warning("analytics_cache_unavailable", error=str(exc))
            return None
        if value is None:
            return None
        until, _, body = value.partition(b" ")
        if until != b"-" and float(until) <= self._clock():
            return None  # computed for a minute that has passed
        return body

    def _put(self, key: str, body: bytes, valid_until: datetime | None) -> None:
        ttl = self.ttl_s
        stamp = b"-"
        if valid_until is not None:
            until = valid_until.timestamp()
            ttl = max(1, min(ttl, math.ceil(until - self._clock())))
            stamp = repr(until).encode()
        try:
            self.backend.put(key, stamp + b" " + body, ttl)
        except Exception as exc:  # noqa: BLE001 - as in _get
            log.warning("analytics_cache_unavailable", error=str(exc))

    def close(self) -> None:
        self.backend.close()


ANALYTICS_CACHE: Port[AnalyticsCache] = Port(
    "analytics_cache", "the analytics cache is not available in this process"
)
