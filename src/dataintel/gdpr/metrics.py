"""Prometheus metrics of the GDPR runner: requests by outcome, each store's erasure time and
failed attempts, and the messages waiting in the outbox (alert on them)."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True, slots=True)
class GdprMetrics:
    requests: Counter
    store_seconds: Histogram
    store_failures: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> GdprMetrics:
        """The metrics of ``registry`` (registered once, reused when an app restarts)."""
        found = _METRICS.get(registry)
        if found is None:
            found = _METRICS[registry] = cls(
                requests=Counter(
                    "dataintel_gdpr_requests",
                    "GDPR requests that ended, by outcome (finished, failed).",
                    ["outcome"],
                    registry=registry,
                ),
                store_seconds=Histogram(
                    "dataintel_gdpr_store_seconds",
                    "Time to erase a subject from one store.",
                    ["store"],
                    buckets=(0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
                    registry=registry,
                ),
                store_failures=Counter(
                    "dataintel_gdpr_store_failures",
                    "Failed attempts of one store's erasure (retried with back-off).",
                    ["store"],
                    registry=registry,
                ),
            )
        return found


_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, GdprMetrics] = weakref.WeakKeyDictionary()
