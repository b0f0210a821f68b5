"""``?wait=processed``: answer only once the request's events are applied by the processor
(in the analytics store and the online features) and every feature version of the project's
active deployment is built (a deploy or rollback just before the call backfills first), or
the timeout passes.

The events are durable either way, so a timeout still answers 2xx, with ``processed: false``.
"""

from __future__ import annotations

import asyncio
import time
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Query, Request

from dataintel.api.deps import app_state
from dataintel.ingest.ports import FEATURE_BUILDS
from dataintel.ingest.service import IngestOutcome
from dataintel.storage.errors import StorageError
from dataintel.stream.progress import PROGRESS

POLL_SECONDS = 0.02


class Wait(StrEnum):
    PROCESSED = "processed"


WaitParam = Annotated[
    Wait | None,
    Query(
        description="'processed': return once the events are in the analytics store and in "
        "the online features, and the active feature versions are built, so a read right "
        "after sees them (bounded by DATAINTEL_WAIT_PROCESSED_TIMEOUT_SECONDS; `processed` "
        "says which)."
    ),
]


async def settle(
    request: Request, outcome: IngestOutcome, wait: Wait | None, project_id: str | None = None
) -> dict[str, Any]:
    """The extra response members for ``wait``: {} when not asked."""
    if wait is None:
        return {}
    if outcome.spooled:  # waiting in the local spool for the event log: not yet processed
        return {"processed": False}
    state = app_state(request)
    timeout = state.settings.wait_processed_timeout_seconds
    deadline = time.monotonic() + timeout
    done = await state.port(PROGRESS).wait_for(outcome.log_positions, timeout)
    if done and project_id is not None:
        try:
            done = await _built(request, project_id, deadline)
        except StorageError:  # the online store is away: the events are durable, not read yet
            done = False
    return {"processed": done}


async def _built(request: Request, project_id: str, deadline: float) -> bool:
    """Wait until every feature version the project deploys is built (backfilled): until
    then reads answer ``building``, which a caller of ``wait=processed`` must not see."""
    status = app_state(request).find(FEATURE_BUILDS)
    if status is None:  # no online store here: the events are processed, nothing to read
        return True
    while not await status.deployed_built(project_id):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)
    return True
