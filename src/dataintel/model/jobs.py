"""Scheduled jobs, as every plane declares them (the scheduler plane runs them; ADR 0012).

A job runs once per project (every project with a deployed config) per *slot*: slot ``k``
of a job with interval ``every`` starts at ``k * every`` after the Unix epoch (UTC). Of
several worker processes exactly one runs a slot (a fenced lease in the metadata store);
a holder killed mid-run loses its lease and another process runs the slot again, so a
job's ``run`` must be idempotent for a given (project, slot). A run can also be triggered
by hand (``manual``), with parameters the owning plane validates before triggering.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
JobOutcome = dict[str, Any]
"""What a run found, as JSON (counts, failing checks, repairs): recorded with the run and
shown at ``GET /v1/jobs/runs``."""


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a job for one project."""

    id: int
    job: str
    project_id: str
    slot: datetime  # the scheduled time (UTC), or the trigger time of a manual run
    manual: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobInfo:
    """What a job is, without the means to run it (what an API-only process knows)."""

    name: str
    description: str
    every: timedelta


@dataclass(frozen=True, slots=True)
class Job:
    """A job: ``run`` is awaited in the worker's event loop (blocking work goes through
    ``asyncio.to_thread``); it returns the outcome or raises to fail the run (the error is
    recorded; the next slot runs again)."""

    name: str  # "<plane>.<what>", e.g. "quality.rules"
    description: str
    every: timedelta
    run: Callable[[JobRun], Awaitable[JobOutcome]]

    def info(self) -> JobInfo:
        return JobInfo(self.name, self.description, self.every)


class JobTrigger(Protocol):
    """What other planes may ask of the scheduler (the ``JOBS`` port)."""

    def names(self) -> list[str]:
        """The jobs this installation schedules."""

    async def trigger(
        self, job: str, project_id: str, params: Mapping[str, Any] | None = None
    ) -> int:
        """Queue a manual run of ``job`` for ``project_id`` now; returns the run id (the run
        is picked up by a worker within a second or two). Raises ``KeyError`` for a job
        this installation does not schedule."""


def slot_of(now: datetime, every: timedelta) -> datetime:
    """The start of the slot holding ``now``: a multiple of ``every`` since the epoch."""
    step = every // timedelta(microseconds=1)
    elapsed = (now - EPOCH) // timedelta(microseconds=1)
    return EPOCH + timedelta(microseconds=elapsed - elapsed % step)
