"""A short-lived, per-process cache of verified API keys.

Ingest and serving authenticate every request; a metadata lookup each time would cost a
database round trip and hold a pooled connection across the request. A verified key is
remembered for TTL_SECONDS under the SHA-256 of the presented key (never the key itself).
Revoking a key in this process evicts it once the revocation commits; other replicas stop
accepting it within TTL_SECONDS. Expiry is re-checked on every use.

While the metadata store is away (ADR 0017: serving continues), a key verified within
STALE_SECONDS is still accepted (``get_stale``): nothing can be revoked meanwhile, since a
revocation needs that store. A key revoked on another replica less than TTL_SECONDS before
the outage began stays accepted here until the store is back (or STALE_SECONDS pass).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from datetime import datetime

from dataintel.auth.principal import Principal
from dataintel.storage.metadata.types import utcnow

TTL_SECONDS = 5.0
STALE_SECONDS = 3600.0
MAX_ENTRIES = 10_000


class KeyCache:
    def __init__(self, ttl_s: float = TTL_SECONDS) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Principal, datetime | None]] = {}
        self._flights: dict[str, asyncio.Lock] = {}

    @staticmethod
    def _digest(presented: str) -> str:
        return hashlib.sha256(presented.encode()).hexdigest()

    def get(self, presented: str) -> Principal | None:
        digest = self._digest(presented)
        with self._lock:
            hit = self._entries.get(digest)
        if hit is None:
            return None
        cached_at, principal, expires_at = hit
        if expires_at is not None and expires_at <= utcnow():
            with self._lock:
                self._entries.pop(digest, None)
            return None
        # Older than the TTL: looked up again, but kept for get_stale (replaced by the lookup).
        return principal if time.monotonic() - cached_at <= self.ttl_s else None

    def get_stale(self, presented: str, max_age_s: float = STALE_SECONDS) -> Principal | None:
        """The key's last verification, however old up to ``max_age_s``: only when the
        metadata store cannot be asked (an outage), never instead of a lookup."""
        with self._lock:
            hit = self._entries.get(self._digest(presented))
        if hit is None:
            return None
        cached_at, principal, expires_at = hit
        if time.monotonic() - cached_at > max_age_s:
            return None
        if expires_at is not None and expires_at <= utcnow():
            return None
        return principal

    def put(self, presented: str, principal: Principal, expires_at: datetime | None) -> None:
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[self._digest(presented)] = (time.monotonic(), principal, expires_at)

    def single_flight(self, presented: str) -> asyncio.Lock:
        """One lookup per key at a time: when an entry expires under load, the concurrent
        requests wait for one database lookup instead of each making their own."""
        digest = self._digest(presented)
        with self._lock:
            lock = self._flights.get(digest)
            if lock is None:
                if len(self._flights) >= MAX_ENTRIES:
                    self._flights.clear()
                lock = self._flights[digest] = asyncio.Lock()
            return lock

    def forget(self, presented: str) -> None:
        """The store refused this key (revoked, expired, unknown): no stale use of it."""
        with self._lock:
            self._entries.pop(self._digest(presented), None)

    def evict_key(self, key_id: str) -> None:
        with self._lock:
            stale = [d for d, (_, p, _) in self._entries.items() if p.key_id == key_id]
            for digest in stale:
                del self._entries[digest]


KEY_CACHE = KeyCache()
