"""GET /v1/export/events: stream a project's events as NDJSON, CSV or Parquet."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import iterate_in_threadpool

from dataintel.api.deps import ProjectScope, app_state, credential_project_scope
from dataintel.api.state import ANALYTICS
from dataintel.api.types import UtcTime
from dataintel.auth.permissions import Permission
from dataintel.export.formats import ExportFormat, from_accept
from dataintel.export.service import ExportRequest, ExportService, ExportStream
from dataintel.storage.metadata.audit_repository import record

router = APIRouter(tags=["export"])
ExportScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.EXPORT_READ))]


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
    cursor: Annotated[
        str | None,
        Query(max_length=400, description="'<timestamp>,<event_id>' of the last row received."),
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="Rows per page.")] = None,
    format: Annotated[ExportFormat | None, Query(description="Else from Accept.")] = None,
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
    audit = ExportAudit(state.sessions, scope.project_id, scope.principal.subject, req)
    return StreamingResponse(
        iterate_in_threadpool(audit.wrap(stream)), media_type=stream.media_type, headers=headers
    )


@dataclass(frozen=True, slots=True)
class ExportAudit:
    """Records the export in the project's audit trail once its stream ends: who, what
    (the filters, the format), how many rows, and whether the client received it all."""

    sessions: sessionmaker[Session]
    project_id: str
    actor: str
    req: ExportRequest

    def wrap(self, stream: ExportStream) -> Iterator[bytes]:
        complete = False
        try:
            yield from stream.body
            complete = True
        finally:
            detail = {
                "format": self.req.fmt.value,
                "rows": stream.sent.rows,
                "complete": complete,
                "from": self.req.start.isoformat() if self.req.start else None,
                "to": self.req.end.isoformat() if self.req.end else None,
                "events": list(self.req.events),
                "filtered_by_user": self.req.user_id is not None,  # never the id itself
                "cursor": self.req.cursor is not None,
            }
            record(self.sessions, self.project_id, self.actor, "export_events", None, detail)
