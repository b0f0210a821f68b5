"""Feature serving: vectors per user and cart, definitions, on-demand recompute."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from dataintel.api.deps import app_state
from dataintel.api.fast_scope import ProjectRef, credential_project, path_project
from dataintel.auth.permissions import Permission
from dataintel.errors import Unavailable
from dataintel.features.batch_compute import BatchComputePage, BatchComputeRequest, batch_compute
from dataintel.features.definitions import definitions
from dataintel.features.schemas import (
    BatchFeatures,
    ComputeRequest,
    ComputeResult,
    Definitions,
    EntityFeatures,
    UserBatchRequest,
)
from dataintel.features.serving import FeatureServer, as_datetime, iso
from dataintel.features.sink import now_us

router = APIRouter(tags=["serving"])
# Hot read paths: async scoping from a cache, no thread hop and no query per request.
PathScope = Annotated[ProjectRef, Depends(path_project(Permission.FEATURES_READ))]
KeyScope = Annotated[ProjectRef, Depends(credential_project(Permission.FEATURES_READ))]
EntityId = Annotated[str, Path(min_length=1, max_length=256)]
FeaturesParam = Annotated[
    str | None,
    Query(
        max_length=10_000,
        description="Comma-separated feature or value names (cart route: 'user.' prefix for "
        "the owner's); default all.",
    ),
]


def server(request: Request) -> FeatureServer:
    state = app_state(request)
    if state.feature_server is None:
        raise Unavailable("the online store is not open in this process")
    return state.feature_server


def _json(content: Any) -> Response:
    """The hot routes answer JSON built directly (their response_model documents it)."""
    return Response(orjson.dumps(content), media_type="application/json")


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [n.strip() for n in text.split(",") if n.strip()]


@router.get(
    "/features/{project_id}/users/{user_id}",
    summary="A user's feature vector, now",
    response_model=EntityFeatures,
)
async def user_features(
    request: Request, scope: PathScope, user_id: EntityId, features: FeaturesParam = None
) -> Response:
    _, [vector] = await server(request).entities(
        scope.project_id, "user_id", [user_id], _names(features)
    )
    return _json(vector)


@router.post(
    "/features/{project_id}/users/batch",
    summary="Feature vectors of up to 1,000 users in one round trip",
    response_model=BatchFeatures,
)
async def users_batch(request: Request, scope: PathScope, body: UserBatchRequest) -> Response:
    t, vectors = await server(request).entities(
        scope.project_id, "user_id", body.user_ids, body.features, loc="features"
    )
    return _json({"as_of": iso(t), "results": vectors})


@router.get(
    "/v1/features/definitions",
    summary="Every deployed feature: windows, granularities, version, build status",
    response_model=Definitions,
)
async def feature_definitions(request: Request, scope: KeyScope) -> Definitions:
    srv = server(request)
    return definitions(
        scope.project_id,
        await srv.configs.aget(scope.project_id),
        await srv.built(scope.project_id),
    )


@router.post(
    "/v1/features/compute",
    summary="Recompute entities from the analytics store, store and return the result",
    response_model=ComputeResult,
)
async def compute(request: Request, scope: KeyScope, body: ComputeRequest) -> ComputeResult:
    state = app_state(request)
    if state.features is None or state.processor_lock is None:
        raise Unavailable("recompute runs beside the stream processor: call a process that runs it")
    async with state.processor_lock:  # between two micro-batches: both sinks agree
        await asyncio.to_thread(
            state.features.recompute, scope.project_id, body.entity_key, body.entity_ids
        )
    t, vectors = await server(request).entities(
        scope.project_id, body.entity_key, body.entity_ids, body.features
    )
    results = [EntityFeatures.model_validate(v) for v in vectors]
    return ComputeResult(written=True, as_of=as_datetime(t), results=results)


@router.post(
    "/v1/features/batch-compute",
    summary="Values as of t for many entities chosen by a filter (offline), paginated",
    response_model=BatchComputePage,
)
async def batch_compute_page(
    request: Request, scope: KeyScope, body: BatchComputeRequest
) -> BatchComputePage:
    state = app_state(request)
    if state.analytics is None:
        raise Unavailable("the analytics store is not open in this process")
    config = await state.config_cache.aget(scope.project_id)
    return await asyncio.to_thread(batch_compute, state.analytics, config, body, now_us())


@router.get(
    "/v1/features/{cart_id}",
    summary="A cart's feature vector, with its owner's under 'user.'",
    response_model=EntityFeatures,
)
async def cart_features(
    request: Request, scope: KeyScope, cart_id: EntityId, features: FeaturesParam = None
) -> Response:
    return _json(await server(request).cart(scope.project_id, cart_id, _names(features)))
