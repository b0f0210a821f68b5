"""POST /v1/features/historical: point-in-time training sets (JSON rows or a file upload)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.datastructures import UploadFile

from dataintel.api.deps import ProjectScope, app_state, credential_project_scope
from dataintel.api.state import ANALYTICS
from dataintel.auth.permissions import Permission
from dataintel.config.deployments.active import CONFIGS
from dataintel.errors import BadRequest, InvalidInput
from dataintel.features.offline.historical import HistoricalService
from dataintel.features.offline.historical_input import file_table, rows_table
from dataintel.features.offline.schemas import (
    REQUEST_BODY,
    RESPONSES,
    HistoricalFormat,
    HistoricalOptions,
    HistoricalRequest,
)

router = APIRouter(tags=["serving"])
KeyScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.FEATURES_READ))]


@router.post(
    "/v1/features/historical",
    summary="Point-in-time training set: each row's features as of its timestamp",
    description="Send the label rows as JSON (`rows`: `entity_id`, `timestamp`, any other "
    "columns) or upload a Parquet / CSV file (multipart field `file`, with `entity_key`, "
    "`features`, `format` as form fields). Every row comes back, in order, with its other "
    "columns and every requested value computed as of its timestamp, exactly as the online "
    "service would have served it then; at most 1,000,000 rows.",
    response_class=StreamingResponse,
    responses=RESPONSES,
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def historical(request: Request, scope: KeyScope) -> StreamingResponse:
    state = app_state(request)
    analytics = state.port(ANALYTICS)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        entity_key, names, fmt, source = *(await _upload_options(request)), "file"
        labels = await run_in_threadpool(file_table, await _upload_bytes(request))
    elif media in ("", "application/json"):
        body = _json_body(await request.body())
        entity_key, names, fmt, source = body.entity_key, body.features, body.format, "rows"
        labels = await run_in_threadpool(rows_table, body.rows)
    else:
        raise BadRequest(f"unsupported content type {media!r}: send JSON or multipart/form-data")
    config = await state.port(CONFIGS).aget(scope.project_id)
    service = HistoricalService(analytics, config)
    result = await run_in_threadpool(service.training_set, entity_key, names, labels, fmt, source)
    return StreamingResponse(iterate_in_threadpool(result.body), media_type=result.media_type)


def _json_body(raw: bytes) -> HistoricalRequest:
    try:
        return HistoricalRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


async def _upload_options(
    request: Request,
) -> tuple[str, list[str] | None, HistoricalFormat]:
    form = await request.form(max_files=1, max_fields=10)
    fields: dict[str, Any] = {k: v for k, v in form.multi_items() if k != "file"}
    try:
        options = HistoricalOptions.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    names = None
    if options.features is not None:
        names = [n.strip() for n in options.features.split(",") if n.strip()]
        if not names:
            raise InvalidInput.field(["body", "features"], "no feature name given")
    return options.entity_key, names, options.format


async def _upload_bytes(request: Request) -> bytes:
    upload = (await request.form()).get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput.field(["body", "file"], "required: a Parquet or CSV file")
    data: bytes = await upload.read()
    return data
