"""Who may ingest where: the authorising dependencies of the ingest routes.

Each resolves the request to an ``IngestTarget`` (project, deployed pipeline) and declares
``Permission.EVENTS_WRITE`` (the one permission of every ingest route):

- ``/ingest/{project_id}/{pipeline_id}``: the pipeline's webhook signature
  (``X-Dataintel-Signature``; when the header is present it is the only credential looked
  at), or an API key / JWT with ``events:write`` for the project;
- ``/v1/events``: an API key / JWT bound to one project; the pipeline is the key's
  ``pipeline_id``, else the project's only deployed pipeline;
- Segment routes: the same, with the key as the HTTP Basic user name (the write key).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from dataintel.api.deps import PROJECT_ID_PATTERN, SessionDep, app_state
from dataintel.auth.authenticate import api_key_principal_async, authenticate_async
from dataintel.auth.permissions import Permission
from dataintel.auth.principal import Principal
from dataintel.config.deployments.active import CONFIGS
from dataintel.config.pipelines.webhooks import SIGNATURE_HEADER
from dataintel.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from dataintel.ingest.errors import UnsupportedMediaType
from dataintel.ingest.resources import ingest_runtime
from dataintel.ingest.service import IngestTarget, target_in, verify_webhook
from dataintel.model.fields import SLUG
from dataintel.storage.metadata.types import utcnow

WRITE = Permission.EVENTS_WRITE


JSON_CHARSETS = frozenset({"utf-8", "utf8"})


def require_json(content_type: str | None) -> None:
    """415 unless the body is declared JSON: ``application/json`` or an
    ``application/<something>+json`` type, with no charset or UTF-8 (RFC 8259 JSON is UTF-8).
    A form, XML, text or a missing Content-Type is refused rather than parsed as JSON."""
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    is_json = media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
    charset = next(
        (
            value.strip().strip('"').lower()
            for name, _, value in (p.partition("=") for p in params.split(";"))
            if name.strip().lower() == "charset"
        ),
        None,
    )
    if is_json and (charset is None or charset in JSON_CHARSETS):
        return
    sent = f"'{content_type}'" if content_type else "no Content-Type"
    raise UnsupportedMediaType(
        f"events are JSON: send 'Content-Type: application/json' (charset utf-8 if any), "
        f"not {sent}",
        accepted=["application/json", "application/*+json"],
    )


async def raw_body(request: Request) -> bytes:
    """The request body as sent (signatures are computed over these exact bytes), once its
    Content-Type says JSON (415 otherwise)."""
    require_json(request.headers.get("content-type"))
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]
ProjectId = Annotated[str, Path(pattern=PROJECT_ID_PATTERN, max_length=64)]
PipelineId = Annotated[str, Path(pattern=SLUG, max_length=64)]


def _admit(request: Request, principal: Principal) -> Principal:
    """Record the caller for the access log and count it against its rate limit."""
    request.state.principal = principal
    limiter = app_state(request).rate_limiter
    if limiter is not None:
        limiter.hit(principal.rate_limit_id)
    return principal


def _check_write(principal: Principal, project_id: str) -> None:
    if not principal.sees_project(project_id):
        raise NotFound(f"project '{project_id}' not found")
    if not principal.can(WRITE):
        raise Forbidden(f"this credential lacks the '{WRITE}' permission")


async def pipeline_target(
    request: Request,
    session: SessionDep,
    body: RawBody,
    project_id: ProjectId,
    pipeline_id: PipelineId,
) -> IngestTarget:
    state = app_state(request)
    header = request.headers.get(SIGNATURE_HEADER)
    if header is not None:
        guard = ingest_runtime(request).replay_guard
        await run_in_threadpool(
            verify_webhook, session, guard, (project_id, pipeline_id), header, body, utcnow()
        )
        limiter = state.rate_limiter
        if limiter is not None:
            limiter.hit(f"webhook:{project_id}/{pipeline_id}")
    else:
        principal = await authenticate_async(request.headers, state.sessions, state.settings)
        _check_write(_admit(request, principal), project_id)
    return target_in(await state.port(CONFIGS).aget(project_id), project_id, pipeline_id)


pipeline_target.permission = WRITE  # type: ignore[attr-defined]


async def bound_target(request: Request, principal: Principal) -> IngestTarget:
    """The project and pipeline a credential is bound to (``/v1/events``, Segment)."""
    if not principal.can(WRITE):
        raise Forbidden(f"this credential lacks the '{WRITE}' permission")
    if principal.projects is None or len(principal.projects) != 1:
        raise InvalidInput.field(
            ["project_id"],
            "this credential is not bound to one project: use a project key, or "
            "POST /ingest/{project_id}/{pipeline_id}",
        )
    (project_id,) = principal.projects
    config = await app_state(request).port(CONFIGS).aget(project_id)
    pipeline_id = principal.pipeline_id
    if pipeline_id is None:
        if config.version is None:
            raise NotFound(f"project '{project_id}' has no deployed config")
        deployed = [p.id for p in config.snapshot.pipelines]
        if len(deployed) != 1:
            raise InvalidInput.field(
                ["pipeline_id"],
                f"project '{project_id}' has {len(deployed)} deployed pipelines: create the key "
                "with a pipeline_id, or POST /ingest/{project_id}/{pipeline_id}",
            )
        pipeline_id = deployed[0]
    return target_in(config, project_id, pipeline_id)


async def key_target(request: Request) -> IngestTarget:
    state = app_state(request)
    principal = await authenticate_async(request.headers, state.sessions, state.settings)
    return await bound_target(request, _admit(request, principal))


key_target.permission = WRITE  # type: ignore[attr-defined]


def basic_user(headers: Mapping[str, str]) -> str | None:
    """The user name of ``Authorization: Basic ...`` (Segment's write key), else None."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed Basic credentials") from None
    return decoded.partition(":")[0]


async def segment_principal(request: Request) -> Principal:
    state = app_state(request)
    write_key = basic_user(request.headers)
    if write_key is None:
        return _admit(
            request, await authenticate_async(request.headers, state.sessions, state.settings)
        )
    if not write_key:
        raise Unauthorized("missing write key: send it as the Basic auth user name")
    return _admit(request, await api_key_principal_async(write_key, state.sessions))


async def segment_target(request: Request) -> IngestTarget:
    return await bound_target(request, await segment_principal(request))


segment_target.permission = WRITE  # type: ignore[attr-defined]
