"""GET /v1/export/features: every entity's feature values, as of an instant or over a time
range at a step, streamed (features/offline/export.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from dataintel.api.deps import ProjectScope, app_state, credential_project_scope
from dataintel.api.sensitive import SENSITIVE
from dataintel.api.state import ANALYTICS
from dataintel.api.types import UtcTime
from dataintel.auth.permissions import Permission
from dataintel.config.deployments.active import CONFIGS
from dataintel.errors import InvalidInput
from dataintel.export.audited import ExportAudit
from dataintel.features.offline.export import MAX_TIMES, entity_page, export_features
from dataintel.features.offline.historical import HistoricalService
from dataintel.features.offline.schemas import RESPONSES, HistoricalFormat
from dataintel.model.windows import parse_window

router = APIRouter(tags=["export"], dependencies=[SENSITIVE])
KeyScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.FEATURES_READ))]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1)


@router.get(
    "/v1/export/features",
    summary="Every entity's feature values, as of an instant or at each step of a range",
    description="The values the online service served (or would have served) at each "
    "instant, computed from history by the same function as training sets. Entities in id "
    "order, pages of `limit` entities resumed by `cursor` (X-Next-Cursor).",
    response_class=StreamingResponse,
    responses=RESPONSES,
)
async def export_features_route(
    request: Request,
    scope: KeyScope,
    entity_key: Annotated[str, Query(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")] = "user_id",
    feature: Annotated[
        list[str] | None, Query(max_length=500, description="Names (default: every one).")
    ] = None,
    as_of: Annotated[UtcTime | None, Query(description="The instant (default: now).")] = None,
    start: Annotated[
        UtcTime | None, Query(alias="from", description="History: first instant.")
    ] = None,
    end: Annotated[UtcTime | None, Query(alias="to", description="History: before this.")] = None,
    step: Annotated[
        str | None, Query(max_length=16, description="History: 1h, 1d … (with from and to).")
    ] = None,
    entity_id: Annotated[
        list[str] | None, Query(max_length=1000, description="Only these entities (repeat).")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=256, description="X-Next-Cursor of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100_000, description="Entities per page.")] = 10_000,
    format: HistoricalFormat = HistoricalFormat.JSON,
) -> StreamingResponse:
    state = app_state(request)
    times = _times(as_of, start, end, step)
    config = await state.port(CONFIGS).aget(scope.project_id)
    service = HistoricalService(state.port(ANALYTICS), config)
    if entity_id:
        chosen = sorted({i for i in entity_id if cursor is None or i > cursor})
        ids, next_cursor = chosen[:limit], (chosen[limit - 1] if len(chosen) > limit else None)
    else:
        ids, next_cursor = await run_in_threadpool(
            entity_page, service, entity_key, max(times) + 1, cursor, limit
        )
    result = await run_in_threadpool(
        export_features, service, entity_key, feature, times, ids, next_cursor, format
    )
    detail: dict[str, object] = {
        "format": format.value,
        "entity_key": entity_key,
        "features": feature or [],
        "instants": len(times),
        "explicit_ids": len(entity_id or []),
    }
    audit = ExportAudit(
        state.sessions, scope.project_id, scope.principal.subject, "export_features", detail
    )
    headers = {"X-Next-Cursor": next_cursor} if next_cursor else {}
    return StreamingResponse(
        iterate_in_threadpool(audit.wrap(result)), media_type=result.media_type, headers=headers
    )


def _times(
    as_of: datetime | None, start: datetime | None, end: datetime | None, step: str | None
) -> list[int]:
    if step is None and start is None and end is None:
        return [_us(as_of) if as_of is not None else time.time_ns() // 1000]
    if as_of is not None:
        raise InvalidInput.field(["query", "as_of"], "as_of or from / to / step, not both")
    if step is None or start is None or end is None:
        missing = "step" if step is None else "from" if start is None else "to"
        raise InvalidInput.field(["query", missing], "a history needs from, to and step")
    try:
        window = parse_window(step)
    except ValueError as exc:
        raise InvalidInput.field(["query", "step"], str(exc).replace("window", "step")) from None
    if window.seconds is None:
        raise InvalidInput.field(["query", "step"], "must be a duration, not 'lifetime'")
    if start >= end:
        raise InvalidInput.field(["query", "to"], "must be after from")
    first, last, every = _us(start), _us(end), window.seconds * 1_000_000
    if (last - first + every - 1) // every > MAX_TIMES:
        raise InvalidInput.field(["query", "step"], f"at most {MAX_TIMES} instants per export")
    return list(range(first, last, every))
