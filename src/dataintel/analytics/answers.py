"""How the analytics routes answer through the cache (analytics/cache.py).

Every analytics route computes through ``cached_response`` (keyed by the request as sent,
the deployed config version and the store's watermark) and says ``X-Cache: hit|miss``. A
GET route is also a ``HotRoute`` whose fast path, ``cache_first``, answers a repeated
request in one coroutine: authenticate (a cached key or a JWT), scope, rate-limit, look the
answer up — no dependency solving, no thread hop with the embedded store and the in-process
cache. A miss falls through to the route (which reuses the authenticated caller).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Response

from dataintel.analytics.cache import ANALYTICS_CACHE, Fresh, RequestKey
from dataintel.api.deps import app_state
from dataintel.api.fast_scope import HotPath, authorize_credential, valid_project_id
from dataintel.api.state import ANALYTICS, AppState
from dataintel.auth.permissions import Permission
from dataintel.config.deployments.active import CONFIGS


def query_text(request: Request) -> str:
    """The query string as sent: the request part of a GET route's cache key."""
    raw: bytes = request.scope.get("query_string", b"")
    return raw.decode("latin-1")


def json_answer(body: bytes, hit: bool) -> Response:
    return Response(
        body, media_type="application/json", headers={"X-Cache": "hit" if hit else "miss"}
    )


def cached_response(state: AppState, key: RequestKey, compute: Callable[[], Fresh]) -> Response:
    """The answer to ``key``: from the cache, else computed (blocking: call it off the loop)."""
    cached = state.port(ANALYTICS_CACHE).answer(state.port(ANALYTICS), key, compute)
    return json_answer(cached.body, cached.hit)


def cache_first(endpoint: str) -> HotPath:
    """The fast path of the GET route ``endpoint`` (see the module doc)."""

    async def fast(request: Request) -> Response | None:
        project_id = request.query_params.get("project_id")
        if project_id is not None and not valid_project_id(project_id):
            return None  # the route's validation answers 422
        ref = await authorize_credential(request, project_id, Permission.ANALYTICS_READ)
        state = app_state(request)
        active = await state.port(CONFIGS).aget(ref.project_id)
        key = RequestKey(ref.project_id, endpoint, query_text(request), active.version)
        body = await state.port(ANALYTICS_CACHE).lookup_async(state.port(ANALYTICS), key)
        return None if body is None else json_answer(body, hit=True)

    return fast
