"""Feature serving: vectors per user and cart, definitions, on-demand recompute."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from dataintel.api.deps import app_state
from dataintel.api.fast_scope import (
    HotRoute,
    ProjectRef,
    authorize,
    authorize_credential,
    credential_project,
    hot_path,
    path_project,
    valid_project_id,
)
from dataintel.api.state import ANALYTICS
from dataintel.auth.permissions import Permission
from dataintel.config.deployments.active import CONFIGS
from dataintel.features.offline.batch_compute import (
    BatchComputePage,
    BatchComputeRequest,
    batch_compute,
)
from dataintel.features.online.engine import RECOMPUTE
from dataintel.features.online.sink import now_us
from dataintel.features.serving.definitions import definitions
from dataintel.features.serving.schemas import (
    ENTITY_ID_MAX_CHARS,
    BatchFeatures,
    ComputeRequest,
    ComputeResult,
    Definitions,
    EntityFeatures,
    UserBatchRequest,
)
from dataintel.features.serving.service import SERVER, FeatureServer, as_datetime, iso

router = APIRouter(tags=["serving"], route_class=HotRoute)
# Hot read paths: async scoping from a cache, no thread hop and no query per request.
PathScope = Annotated[ProjectRef, Depends(path_project(Permission.FEATURES_READ))]
KeyScope = Annotated[ProjectRef, Depends(credential_project(Permission.FEATURES_READ))]
FEATURES_MAX = 10_000
EntityId = Annotated[str, Path(min_length=1, max_length=ENTITY_ID_MAX_CHARS)]
_QUERY_FORM = (
    "Any valid id (1 to 256 characters, any characters: also one containing '/' or equal "
    "to a route name such as 'definitions'); use this form when a path segment cannot "
    "carry the id."
)
IdQuery = Annotated[
    str, Query(min_length=1, max_length=ENTITY_ID_MAX_CHARS, description=_QUERY_FORM)
]
FeaturesParam = Annotated[
    str | None,
    Query(
        max_length=FEATURES_MAX,
        description="Comma-separated feature or value names (cart route: 'user.' prefix for "
        "the owner's); default all.",
    ),
]


def server(request: Request) -> FeatureServer:
    return app_state(request).port(SERVER)


def _json(content: Any) -> Response:
    """The hot routes answer JSON built directly (their response_model documents it)."""
    return Response(orjson.dumps(content), media_type="application/json")


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [n.strip() for n in text.split(",") if n.strip()]


def _valid(entity_id: str, features: str | None) -> bool:
    """The constraints of ``EntityId`` and ``FeaturesParam`` (the hot paths check them)."""
    return 1 <= len(entity_id) <= ENTITY_ID_MAX_CHARS and (
        features is None or len(features) <= FEATURES_MAX
    )


async def _user_fast(request: Request) -> Response | None:
    """``user_features`` without dependency solving (``HotRoute``)."""
    params = request.path_params
    project_id, user_id = params["project_id"], params["user_id"]
    features = request.query_params.get("features") if request.scope["query_string"] else None
    if not (valid_project_id(project_id) and _valid(user_id, features)):
        return None  # FastAPI's handler answers with its 422
    scope = await authorize(request, project_id, Permission.FEATURES_READ)
    return await _user_vector(request, scope.project_id, user_id, features)


async def _user_vector(
    request: Request, project_id: str, user_id: str, features: str | None
) -> Response:
    _, [vector] = await server(request).entities(project_id, "user_id", [user_id], _names(features))
    return _json(vector)


async def _cart_fast(request: Request) -> Response | None:
    """``cart_features`` without dependency solving (``HotRoute``)."""
    cart_id = request.path_params["cart_id"]
    query = request.query_params if request.scope["query_string"] else None
    features = None if query is None else query.get("features")
    project_id = None if query is None else query.get("project_id")
    if not _valid(cart_id, features) or not (project_id is None or valid_project_id(project_id)):
        return None
    scope = await authorize_credential(request, project_id, Permission.FEATURES_READ)
    return await _cart_vector(request, scope.project_id, cart_id, features)


async def _cart_vector(
    request: Request, project_id: str, cart_id: str, features: str | None
) -> Response:
    return _json(await server(request).cart(project_id, cart_id, _names(features)))


@router.get(
    "/features/{project_id}/users",
    summary="A user's feature vector, now (the id as a query parameter)",
    response_model=EntityFeatures,
)
async def user_features_by_query(
    request: Request, scope: PathScope, user_id: IdQuery, features: FeaturesParam = None
) -> Response:
    return await _user_vector(request, scope.project_id, user_id, features)


@router.get(
    "/features/{project_id}/users/{user_id}",
    summary="A user's feature vector, now",
    response_model=EntityFeatures,
)
@hot_path(_user_fast)
async def user_features(
    request: Request, scope: PathScope, user_id: EntityId, features: FeaturesParam = None
) -> Response:
    return await _user_vector(request, scope.project_id, user_id, features)


@router.get(
    "/features/{project_id}/entities/{entity_key}",
    summary="The feature vector of any entity key (e.g. a batch feature's store_id), now",
    response_model=EntityFeatures,
)
async def entity_features(
    request: Request,
    scope: PathScope,
    entity_key: Annotated[str, Path(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")],
    entity_id: IdQuery,
    features: FeaturesParam = None,
) -> Response:
    _, [vector] = await server(request).entities(
        scope.project_id, entity_key, [entity_id], _names(features)
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
    recompute = app_state(request).port(RECOMPUTE)
    await recompute.run(scope.project_id, body.entity_key, body.entity_ids)
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
    analytics = state.port(ANALYTICS)
    config = await state.port(CONFIGS).aget(scope.project_id)
    return await asyncio.to_thread(batch_compute, analytics, config, body, now_us())


@router.get(
    "/v1/features",
    summary="A cart's feature vector, with its owner's under 'user.' (the id as a query parameter)",
    response_model=EntityFeatures,
)
async def cart_features_by_query(
    request: Request, scope: KeyScope, cart_id: IdQuery, features: FeaturesParam = None
) -> Response:
    return await _cart_vector(request, scope.project_id, cart_id, features)


@router.get(
    "/v1/features/{cart_id}",
    summary="A cart's feature vector, with its owner's under 'user.'",
    response_model=EntityFeatures,
)
@hot_path(_cart_fast)
async def cart_features(
    request: Request, scope: KeyScope, cart_id: EntityId, features: FeaturesParam = None
) -> Response:
    return await _cart_vector(request, scope.project_id, cart_id, features)
