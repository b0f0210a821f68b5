"""Liveness, readiness (every configured backend) and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Literal

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from dataintel.api.deps import app_state
from dataintel.api.problems import problem
from dataintel.api.state import ANALYTICS, EVENTLOG
from dataintel.storage.metadata.engine import ping

router = APIRouter(tags=["operations"])


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


BreakerState = Literal["closed", "half-opened", "opened"]


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, Literal["ok"]]
    breakers: dict[str, BreakerState] = Field(
        description="Each backend's circuit breaker: `opened` means calls to it fail at once "
        "(503 + Retry-After) until it is tried again."
    )


_LIVE = b'{"status":"ok"}'


@router.get("/health/live", summary="The process is up", response_model=Liveness)
async def live() -> Response:
    # Constant, in the event loop: answers as long as the loop does (no thread pool).
    return Response(_LIVE, media_type="application/json")


@router.get(
    "/health/ready",
    summary="Every configured backend answers",
    responses={503: {"description": "A backend does not answer; the problem names it."}},
    response_model=Readiness,
)
async def ready(request: Request) -> Response | Readiness:
    state = app_state(request)
    checks: dict[str, Literal["ok"]] = {}
    failures: dict[str, str] = {}
    backends: dict[str, Callable[[], Awaitable[object]]] = {
        "metadata": lambda: asyncio.to_thread(ping, state.engine)
    }
    if state.rate_limiter is not None:
        limiter = state.rate_limiter
        backends["rate_limit"] = lambda: asyncio.to_thread(
            lambda: None if limiter.check_storage() else _fail()
        )
    if (eventlog := state.find(EVENTLOG)) is not None:
        backends["eventlog"] = eventlog.ping
    if (analytics := state.find(ANALYTICS)) is not None:
        backends["analytics"] = partial(asyncio.to_thread, analytics.ping)
    for name, check in backends.items():
        try:
            await asyncio.wait_for(check(), timeout=3.0)
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            failures[name] = f"{type(exc).__name__}: {exc}"[:300]
    if failures:
        names = ", ".join(sorted(failures))
        return problem(
            503,
            "Not ready",
            f"backend not ready: {names}",
            "not-ready",
            request,
            failures=failures,
            breakers=state.breakers.states(),
        )
    return Readiness(checks=checks, breakers=state.breakers.states())


def _fail() -> None:
    raise ConnectionError("storage check failed")


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    registry = app_state(request).metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
