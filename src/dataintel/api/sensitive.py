"""Stricter limits for sensitive routes (API key management, GDPR, exports): per credential
and per client IP, both on top of the general per-credential limit (``deps._principal``).

A router is marked sensitive declaratively, ``APIRouter(..., dependencies=[SENSITIVE])``, and
``is_sensitive(route)`` tells which routes carry the mark (tests/api list them all). The IP
is counted first, before authentication, so unauthenticated guessing against these routes is
throttled too; then the caller is authenticated (and the general limit counted, once per
request as everywhere), then the credential's sensitive limit. The counters live in the
general limiter's storage (memory:// or Redis), under their own key prefixes."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute

from dataintel.api.client_ip import ClientAddress
from dataintel.api.deps import _principal as authenticate_request
from dataintel.api.deps import app_state
from dataintel.api.ports import Port
from dataintel.api.ratelimit import RateLimiter
from dataintel.settings import Settings


class SensitiveLimits:
    def __init__(
        self, per_credential: RateLimiter | None, per_ip: RateLimiter | None, clients: ClientAddress
    ) -> None:
        self.per_credential = per_credential
        self.per_ip = per_ip
        self.clients = clients

    @classmethod
    def build(cls, settings: Settings) -> SensitiveLimits | None:
        """None when both limits are off (empty settings)."""
        url = settings.rate_limit_storage_url
        credential, ip = settings.sensitive_rate_limit, settings.sensitive_rate_limit_per_ip
        if not credential and not ip:
            return None
        return cls(
            RateLimiter(credential, url, "this credential on sensitive routes", "credential")
            if credential
            else None,
            RateLimiter(ip, url, "this client IP on sensitive routes", "ip") if ip else None,
            ClientAddress(settings.trusted_proxies),
        )

    def hit_ip(self, request: Request) -> None:
        if self.per_ip is not None:
            self.per_ip.hit("sensitive-ip:" + self.clients.of(request))

    def hit_credential(self, rate_limit_id: str) -> None:
        if self.per_credential is not None:
            self.per_credential.hit("sensitive-key:" + rate_limit_id)


SENSITIVE_LIMITS: Port[SensitiveLimits] = Port(
    "sensitive_limits", "the sensitive routes' rate limits are off"
)


async def sensitive_limit(request: Request) -> None:
    """The route dependency behind ``SENSITIVE``: 429 (``limit``: ``ip`` or ``credential``)."""
    limits = app_state(request).find(SENSITIVE_LIMITS)
    if limits is not None:
        limits.hit_ip(request)
    principal = await authenticate_request(request)
    if limits is not None:
        limits.hit_credential(principal.rate_limit_id)


SENSITIVE: Any = Depends(sensitive_limit)


def is_sensitive(route: APIRoute) -> bool:
    return any(d.call is sensitive_limit for d in route.dependant.dependencies)
