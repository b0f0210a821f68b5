"""Webhook signing secrets and the Stripe-like signature scheme, as pure functions.

A signed request carries ``X-Dataintel-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>``
is HMAC-SHA256(secret, f"{t}.".encode() + raw body). Several ``v1=`` entries may be sent
(one per secret while a rotation is in its grace period); one match is enough. A ``t`` older
or newer than ``tolerance`` seconds is refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime
from secrets import token_urlsafe
from typing import Protocol

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SIGNATURE_HEADER = "X-Dataintel-Signature"
DEFAULT_TOLERANCE_SECONDS = 300
MAX_SIGNATURES = 8  # v1 entries looked at per header; bounds the work an attacker can cause


class WebhookSecrets(Protocol):
    """What verification needs of a pipeline (the ORM row satisfies it)."""

    @property
    def webhook_secret(self) -> str: ...

    @property
    def previous_webhook_secret(self) -> str | None: ...

    @property
    def previous_secret_expires_at(self) -> datetime | None: ...


def new_secret() -> str:
    return SECRET_PREFIX + token_urlsafe(32)


def valid_secrets(pipeline: WebhookSecrets, now: datetime) -> list[str]:
    """The secrets that verify at ``now``: the current one, plus the previous one until its
    grace period ends (exclusive)."""
    found = [pipeline.webhook_secret]
    previous, until = pipeline.previous_webhook_secret, pipeline.previous_secret_expires_at
    if previous and until is not None and now < until:
        found.append(previous)
    return found


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """A complete header value, as a sender computes it: ``t=<timestamp>,v1=<hex>``."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def _parse(header: str) -> tuple[int, list[bytes]] | None:
    timestamp: int | None = None
    candidates: list[bytes] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if (
                not (value.isascii() and value.isdigit())
                or len(value) > 12
                or timestamp is not None
            ):
                return None
            timestamp = int(value)
        elif key == "v1" and len(candidates) < MAX_SIGNATURES:
            candidates.append(value.strip().lower().encode("utf-8", "replace"))
    if timestamp is None or not candidates:
        return None
    return timestamp, candidates


def verify_signature(
    header: str | None,
    body: bytes,
    secrets: Sequence[str],
    now: datetime,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when ``header`` carries a fresh ``t`` and a ``v1`` made with one of ``secrets``.

    Unknown schemes (e.g. ``v0=``) are ignored; every comparison is constant-time.
    """
    if not header or not secrets:
        return False
    parsed = _parse(header)
    if parsed is None:
        return False
    timestamp, candidates = parsed
    if abs(now.timestamp() - timestamp) > tolerance:
        return False
    matched = False
    for secret in secrets:
        expected = signature(secret, timestamp, body).encode()
        for candidate in candidates:
            # no early exit: the time taken does not depend on which entry matched
            matched |= hmac.compare_digest(expected, candidate)
    return matched
