"""``?wait=processed``: answer only once the request's events are applied by the processor
(in the analytics store; later issues add the online features), or the timeout passes.

The events are durable either way, so a timeout still answers 2xx, with ``processed: false``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import Query, Request

from dataintel.api.deps import app_state
from dataintel.errors import Unavailable
from dataintel.ingest.service import IngestOutcome


class Wait(StrEnum):
    PROCESSED = "processed"


WaitParam = Annotated[
    Wait | None,
    Query(
        description="'processed': return once the events are in the analytics store "
        "(bounded by DATAINTEL_WAIT_PROCESSED_TIMEOUT_SECONDS; `processed` says which)."
    ),
]


async def settle(request: Request, outcome: IngestOutcome, wait: Wait | None) -> dict[str, Any]:
    """The extra response members for ``wait``: {} when not asked."""
    if wait is None:
        return {}
    state = app_state(request)
    if state.progress is None:
        raise Unavailable("no processor progress is visible from this process")
    done = await state.progress.wait_for(
        outcome.log_positions, state.settings.wait_processed_timeout_seconds
    )
    return {"processed": done}
