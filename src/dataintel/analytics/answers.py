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
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from dataintel.analytics.cache import ANALYTICS_CACHE, Fresh, RequestKey, fresh
from dataintel.api.deps import app_state
from dataintel.api.fast_scope import HotPath, authorize_credential, valid_project_id
from dataintel.api.state import ANALYTICS, AppState
from dataintel.auth.permissions import Permission
from dataintel.config.deployments.active import CONFIGS


@dataclass(frozen=True, slots=True)
class HorizonWindow:
    end_us: int  # the period's end
    horizon_us: int  # how long after an act its outcome is read
    now_us: int  # the minute the answer is computed for


def query_text(request: Request) -> str:
    """The query string as sent: the request part of a GET route's cache key."""
    raw: bytes = request.scope.get("query_string", b"")
    return raw.decode("latin-1")


def json_answer(body: bytes, hit: bool, stale_age_s: int | None = None) -> Response:
    headers = {"X-Cache": "hit" if hit else "miss"}
    if stale_age_s is not None:  # the analytics store is down: the last answer, this old
        headers |= {"X-Stale": "true", "Age": str(stale_age_s)}
    return Response(body, media_type="application/json", headers=headers)


def cached_response(state: AppState, key: RequestKey, compute: Callable[[], Fresh]) -> Response:
    """The answer to ``key``: from the cache, else computed (blocking: call it off the loop)."""
    cached = state.port(ANALYTICS_CACHE).answer(state.port(ANALYTICS), key, compute)
    return json_answer(cached.body, cached.hit, cached.stale_age_s)


async def horizon_answer(
    request: Request,
    project_id: str,
    endpoint: str,
    version: int | None,
    window: HorizonWindow,
    answer: Callable[[], BaseModel],
) -> Response:
    """``cached_response`` in a worker thread for an answer over ``[start, end)`` whose
    outcomes are read ``horizon`` later (revenue, performance): it reads the clock while
    ``end + horizon`` has not passed the current minute."""
    state = app_state(request)
    key = RequestKey(project_id, endpoint, query_text(request), version)

    def compute() -> Fresh:
        reads_clock = window.end_us + window.horizon_us >= window.now_us
        now = datetime.fromtimestamp(window.now_us / 1e6, UTC)
        return fresh(answer(), now, reads_clock)

    return await run_in_threadpool(cached_response, state, key, compute)


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
