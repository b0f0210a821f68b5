"""GET /v1/export/events and /v1/export/predictions: a project's events, and its model's
predictions with their outcomes, streamed as NDJSON, CSV or Parquet."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from dataintel.api.deps import ProjectScope, app_state, credential_project_scope
from dataintel.api.sensitive import SENSITIVE
from dataintel.api.state import ANALYTICS
from dataintel.api.types import TIME_MIN, UtcTime
from dataintel.auth.permissions import Permission
from dataintel.config.deployments.active import CONFIGS
from dataintel.errors import InvalidInput
from dataintel.export.audited import ExportAudit
from dataintel.export.formats import ExportFormat, from_accept
from dataintel.export.predictions import PredictionQuery, export_predictions
from dataintel.export.service import ExportRequest, ExportService
from dataintel.model.windows import parse_window
from dataintel.storage.analytics.port import AnalyticsStore

router = APIRouter(tags=["export"], dependencies=[SENSITIVE])
ExportScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.EXPORT_READ))]
Cursor = Annotated[
    str | None,
    Query(max_length=400, description="'<timestamp>,<event_id>' of the last row received."),
]
Limit = Annotated[int | None, Query(ge=1, le=100_000, description="Rows per page.")]
Format = Annotated[ExportFormat | None, Query(description="Else from Accept.")]


@router.get(
    "/v1/export/events",
    summary="Stream events (NDJSON, CSV or Parquet), ordered by time, resumable by cursor",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The events, streamed in batches.",
            "content": {
                "application/x-ndjson": {},
                "text/csv": {},
                "application/vnd.apache.parquet": {},
            },
        }
    },
)
def export_events(
    request: Request,
    scope: ExportScope,
    start: Annotated[UtcTime | None, Query(description="Event time, inclusive.")] = None,
    end: Annotated[UtcTime | None, Query(description="Event time, exclusive.")] = None,
    event: Annotated[
        list[str] | None, Query(max_length=100, description="Event names (repeat).")
    ] = None,
    user_id: Annotated[str | None, Query(max_length=256)] = None,
    cursor: Cursor = None,
    limit: Limit = None,
    format: Format = None,
) -> StreamingResponse:
    state = app_state(request)
    analytics = state.port(ANALYTICS)
    req = ExportRequest(
        start=start,
        end=end,
        events=tuple(event or ()),
        user_id=user_id,
        cursor=cursor,
        limit=limit,
        fmt=format or from_accept(request.headers.get("accept")) or ExportFormat.NDJSON,
    )
    stream = ExportService(analytics).events(scope.project_id, req)
    headers = {"X-Next-Cursor": stream.next_cursor} if stream.next_cursor else {}
    headers |= stale_headers(analytics)
    detail = {
        "format": req.fmt.value,
        "from": _iso(req.start),
        "to": _iso(req.end),
        "events": list(req.events),
        "filtered_by_user": req.user_id is not None,  # never the id itself
        "cursor": req.cursor is not None,
    }
    audit = ExportAudit(
        state.sessions, scope.project_id, scope.principal.subject, "export_events", detail
    )
    return StreamingResponse(
        iterate_in_threadpool(audit.wrap(stream)), media_type=stream.media_type, headers=headers
    )


def to_micros(when: datetime) -> int:
    return (when - TIME_MIN) // timedelta(microseconds=1)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


@router.get(
    "/v1/export/predictions",
    summary="Stream the model's predictions with their outcomes (NDJSON, CSV or Parquet)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One row per `prediction` event, ordered by time, with its outcome.",
            "content": {
                "application/x-ndjson": {},
                "text/csv": {},
                "application/vnd.apache.parquet": {},
            },
        }
    },
)
def export_predictions_route(
    request: Request,
    scope: ExportScope,
    start: Annotated[UtcTime | None, Query(description="Prediction time, inclusive.")] = None,
    end: Annotated[
        UtcTime | None, Query(description="Prediction time, exclusive (default: now).")
    ] = None,
    model_version: Annotated[
        list[str] | None, Query(max_length=100, description="Only these versions (repeat).")
    ] = None,
    horizon: Annotated[
        str | None,
        Query(
            max_length=16,
            description="A purchase this long after the prediction is its outcome "
            "(default: the project's outcome_horizon).",
        ),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = None,
    format: Format = None,
) -> StreamingResponse:
    state = app_state(request)
    settings = state.port(CONFIGS).get(scope.project_id).snapshot.analytics
    begin, stop = start or TIME_MIN, end or datetime.now(UTC)
    if begin >= stop:
        raise InvalidInput.field(["query", "end"], "must be after start")
    if any(not 1 <= len(v) <= 256 for v in model_version or ()):
        raise InvalidInput.field(["query", "model_version"], "must be 1 to 256 characters")
    fmt = format or from_accept(request.headers.get("accept")) or ExportFormat.NDJSON
    query = PredictionQuery(
        project_id=scope.project_id,
        start_us=to_micros(begin),
        end_us=to_micros(stop),
        horizon_us=_horizon_us(horizon, settings.outcome_horizon),
        now_us=time.time_ns() // 1000,
        purchase_event=settings.purchase_event,
        revenue_field=settings.revenue_field,
        model_versions=tuple(model_version or ()),
        cursor=cursor,
        limit=limit,
    )
    analytics = state.port(ANALYTICS)
    stream = export_predictions(analytics, query, fmt)
    detail = {
        "format": fmt.value,
        "from": _iso(start),
        "to": _iso(end),
        "model_versions": list(query.model_versions),
        "cursor": cursor is not None,
    }
    audit = ExportAudit(
        state.sessions, scope.project_id, scope.principal.subject, "export_predictions", detail
    )
    headers = {"X-Next-Cursor": stream.next_cursor} if stream.next_cursor else {}
    headers |= stale_headers(analytics)
    return StreamingResponse(
        iterate_in_threadpool(audit.wrap(stream)), media_type=stream.media_type, headers=headers
    )


def stale_headers(analytics: AnalyticsStore) -> dict[str, str]:
    """``X-Stale: true`` and ``Age`` (seconds) when the store answers from data it could not
    bring up to date (a data lake replica whose lake does not answer), as analytics does.
    Reading the positions first lets a replica look at its lake (a bounded wait), so the
    mark describes the data the stream is about to read."""
    analytics.positions()
    age = analytics.staleness()
    return {} if age is None else {"X-Stale": "true", "Age": str(age)}


def _horizon_us(text: str | None, default: str) -> int:
    try:
        window = parse_window(text if text is not None else default)
    except ValueError as exc:
        where = "horizon" if text is not None else "horizon (the project's outcome_horizon)"
        raise InvalidInput.field(["query", "horizon"], f"{where}: {exc}") from exc
    if window.seconds is None:
        raise InvalidInput.field(["query", "horizon"], "must be a duration, not 'lifetime'")
    return window.seconds * 1_000_000
