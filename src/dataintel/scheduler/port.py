"""The scheduler's port token: planes queue manual runs of their jobs through it."""

from __future__ import annotations

from dataintel.api.ports import Port
from dataintel.model.jobs import JobTrigger

JOBS: Port[JobTrigger] = Port("jobs", "the job scheduler is not running in this process")
