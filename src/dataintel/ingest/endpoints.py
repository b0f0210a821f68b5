"""Ingest routes: /ingest/{project_id}/{pipeline_id}[/batch], /v1/events[/batch], stats.

Bodies are read raw and parsed with orjson (no request model: validation is precompiled per
deployed pipeline version); responses are orjson-encoded dicts of the documented shapes.
A single event answers 202 (accepted), 200 (duplicate) or a 422 problem (rejected: the event
is dead-lettered and the problem's ``errors`` name each field); a batch answers 200 with a
result per item.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from dataintel.api.deps import (
    ProjectScope,
    SessionDep,
    app_state,
    credential_project_scope,
)
from dataintel.api.problems import problem
from dataintel.api.state import ANALYTICS, EVENTLOG
from dataintel.api.types import Int32
from dataintel.auth.permissions import Permission
from dataintel.ingest.deps import RawBody, key_target, pipeline_target
from dataintel.ingest.envelope import batch_items, parse_json
from dataintel.ingest.resources import ingest_runtime
from dataintel.ingest.schemas import (
    BATCH_SCHEMA,
    ENVELOPE_SCHEMA,
    IngestBatchRead,
    IngestEventRead,
    IngestStatsRead,
    json_body,
)
from dataintel.ingest.service import IngestOutcome, IngestService, IngestTarget
from dataintel.ingest.stats_service import StatsService
from dataintel.ingest.waiting import Wait, WaitParam, settle
from dataintel.model.fields import SLUG

router = APIRouter(tags=["ingest"])

PipelineTarget = Annotated[IngestTarget, Depends(pipeline_target)]
KeyTarget = Annotated[IngestTarget, Depends(key_target)]

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not JSON (or not a batch)."},
    401: {"description": "Missing or invalid credentials or webhook signature, or a replay."},
    403: {"description": "The credential lacks events:write."},
    404: {"description": "Unknown project or pipeline, or nothing deployed."},
    409: {"description": "The pipeline is deactivated."},
    413: {"description": "The body or the number of events exceeds the limit."},
    415: {"description": "The Content-Type is not JSON (application/json, +json; UTF-8)."},
    429: {"description": "Rate limit exceeded."},
    503: {"description": "The event log is unavailable; retry."},
}
SINGLE: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {"model": IngestEventRead, "description": "A duplicate of a stored event."},
    202: {"model": IngestEventRead, "description": "Accepted: durable in the event log."},
    422: {"description": "Rejected (dead-lettered): `errors` name each field and reason."},
}
BATCH: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {"model": IngestBatchRead, "description": "A result per event."},
}


def _service(request: Request, session: SessionDep) -> IngestService:
    return IngestService(session, ingest_runtime(request), app_state(request).port(EVENTLOG))


Service = Annotated[IngestService, Depends(_service)]


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def single_response(
    request: Request, outcome: IngestOutcome, extra: dict[str, Any] | None = None
) -> Response:
    """202 accepted, 200 duplicate, or a 422 problem for a rejected (dead-lettered) event."""
    item = outcome.items[0]
    if item["status"] == "rejected":
        errors = [problem_error(e) for e in item["errors"]]
        detail = "; ".join(
            f"{e['pointer'] or '(the event)'}: {e['message']}" for e in item["errors"][:5]
        )
        return problem(
            422,
            "Event rejected",
            f"the event was rejected and dead-lettered: {detail}",
            "event-rejected",
            request,
            errors=errors,
            event_id=item["event_id"],
        )
    body = {
        "status": item["status"],
        "event_id": item["event_id"],
        **(extra or {}),
    }
    return json_response(body, 202 if item["status"] == "accepted" else 200)


async def _commit_before_waiting(service: IngestService, wait: Wait | None) -> None:
    """The dead letters of the request commit before it waits for the processor: on SQLite
    their open write transaction would block the processor's own metadata writes (a
    backfill's progress) until the wait timed out."""
    if wait is not None and service.session.in_transaction():
        await anyio.to_thread.run_sync(service.session.commit)


async def _one(
    request: Request, target: IngestTarget, body: bytes, service: IngestService, wait: Wait | None
) -> Response:
    outcome = await service.ingest(target, [parse_json(body)], None)
    await _commit_before_waiting(service, wait)
    return single_response(
        request, outcome, await settle(request, outcome, wait, target.project_id)
    )


async def _many(
    request: Request, target: IngestTarget, body: bytes, service: IngestService, wait: Wait | None
) -> Response:
    items, prefix = batch_items(parse_json(body))
    outcome = await service.ingest_batch(target, items, prefix)
    await _commit_before_waiting(service, wait)
    return json_response(
        {**outcome.body(), **await settle(request, outcome, wait, target.project_id)}
    )


def problem_error(error: dict[str, Any]) -> dict[str, Any]:
    """A typed reason in the problem+json ``errors`` shape (loc/pointer/msg/type), keeping
    ``code`` and ``message``."""
    pointer = error["pointer"]
    loc = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    return {
        "loc": loc,
        "pointer": pointer,
        "msg": error["message"],
        "type": error["code"],
        "code": error["code"],
        "message": error["message"],
    }


@router.post(
    "/ingest/{project_id}/{pipeline_id}",
    status_code=202,
    response_model=None,
    responses=SINGLE,
    openapi_extra=json_body(ENVELOPE_SCHEMA),
    summary="Ingest one event (API key with events:write, or the pipeline's webhook signature)",
)
async def ingest_event(
    request: Request,
    target: PipelineTarget,
    body: RawBody,
    service: Service,
    wait: WaitParam = None,
) -> Response:
    return await _one(request, target, body, service, wait)


@router.post(
    "/ingest/{project_id}/{pipeline_id}/batch",
    response_model=None,
    responses=BATCH,
    openapi_extra=json_body(BATCH_SCHEMA),
    summary="Ingest a batch of events; a result per event",
)
async def ingest_batch(
    request: Request,
    target: PipelineTarget,
    body: RawBody,
    service: Service,
    wait: WaitParam = None,
) -> Response:
    return await _many(request, target, body, service, wait)


@router.post(
    "/v1/events",
    status_code=202,
    response_model=None,
    responses=SINGLE,
    openapi_extra=json_body(ENVELOPE_SCHEMA),
    summary="Ingest one event into the project and pipeline of the API key",
)
async def ingest_key_event(
    request: Request, target: KeyTarget, body: RawBody, service: Service, wait: WaitParam = None
) -> Response:
    return await _one(request, target, body, service, wait)


@router.post(
    "/v1/events/batch",
    response_model=None,
    responses=BATCH,
    openapi_extra=json_body(BATCH_SCHEMA),
    summary="Ingest a batch into the project and pipeline of the API key",
)
async def ingest_key_batch(
    request: Request, target: KeyTarget, body: RawBody, service: Service, wait: WaitParam = None
) -> Response:
    return await _many(request, target, body, service, wait)


@router.get(
    "/v1/events/stats",
    responses={k: v for k, v in ERRORS.items() if k in (401, 403, 404, 429)},
    summary="Accepted/duplicate/rejected counts per event and hour, dead letters, lag",
)
async def ingest_stats(
    request: Request,
    scope: Annotated[ProjectScope, Depends(credential_project_scope(Permission.EVENTS_WRITE))],
    pipeline_id: Annotated[str | None, Query(pattern=SLUG, max_length=64)] = None,
    hours: Annotated[Int32, Query(ge=1, le=24 * 90, description="Look back this many hours.")] = 24,
) -> IngestStatsRead:
    state = app_state(request)
    service = StatsService(scope.session, state.find(EVENTLOG), state.find(ANALYTICS))
    return await service.read(
        scope.project_id, pipeline_id, hours, with_lag=scope.principal.is_global
    )
