"""What a metadata-store call raises when the store does not answer (down, refused, pool
timeout, its circuit breaker open): api/problems.py answers these 503. The per-process
caches in front of the store (API keys, deployed configs, project ids) keep serving their
last answer when a refresh fails with one of these (ADR 0017: serving continues through a
metadata outage)."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from dataintel.storage.breakers import BackendFailed, BackendUnavailable

METADATA_OUTAGES: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    BackendFailed,
    BackendUnavailable,
)
