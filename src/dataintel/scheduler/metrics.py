"""Prometheus metrics of the scheduler: runs by job and outcome, and how long they take
(labelled by job only: a tenant's volume is not visible on /metrics)."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True, slots=True)
class JobMetrics:
    runs: Counter
    seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> JobMetrics:
        """The metrics of ``registry`` (registered once, reused when an app restarts)."""
        found = _METRICS.get(registry)
        if found is None:
            found = _METRICS[registry] = cls(
                runs=Counter(
                    "dataintel_job_runs",
                    "Scheduled and manual job runs that ended, by job and outcome "
                    "(finished, failed, fenced: the run's lease had passed to another worker).",
                    ["job", "outcome"],
                    registry=registry,
                ),
                seconds=Histogram(
                    "dataintel_job_run_seconds",
                    "Duration of a job run.",
                    ["job"],
                    buckets=(0.05, 0.25, 1, 5, 15, 60, 300, 1800),
                    registry=registry,
                ),
            )
        return found


_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, JobMetrics] = weakref.WeakKeyDictionary()
