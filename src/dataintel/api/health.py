"""Liveness, readiness (degraded is ready), the dependency check and Prometheus metrics."""

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


Check = Literal["ok", "failing"]


class Readiness(BaseModel):
    status: Literal["ready", "degraded"] = Field(
        description="`degraded`: a dependency is away; this process still serves what it can "
        "(stale vectors, spooled ingest, cached analytics, 503 + Retry-After for the rest)."
    )
    checks: dict[str, Check]
    failures: dict[str, str] = Field(
        default_factory=dict, description="Each failing dependency and what its check raised."
    )
    breakers: dict[str, BreakerState] = Field(
        description="Each backend's circuit breaker: `opened` means calls to it fail at once "
        "(503 + Retry-After) until it is tried again."
    )


_LIVE = b'{"status":"ok"}'
# Checks run side by side, each cut off after this: a probe answers within about a second
# (Kubernetes' default probe timeout is 1 s; deploy/kubernetes allows 4).
CHECK_TIMEOUT = 1.0


@router.get("/health/live", summary="The process is up", response_model=Liveness)
async def live() -> Response:
    # Constant, in the event loop: answers as long as the loop does (no thread pool).
    return Response(_LIVE, media_type="application/json")


@router.get(
    "/health/ready",
    summary="This process can take traffic (degraded is ready)",
    description="200 once the process has started, `status: degraded` with the failing "
    "dependencies named while one is away: every plane then degrades on its own (ADR 0018), "
    "so a shared outage must not take every replica out of the load balancer. Use "
    "`/health/dependencies` to require every dependency.",
    response_model=Readiness,
)
async def ready(request: Request) -> Readiness:
    return await _probe(request)


@router.get(
    "/health/dependencies",
    summary="Every configured dependency answers",
    description="For deploy gates and people: 503 problem+json naming each dependency that "
    "does not answer (metadata, rate_limit, eventlog, analytics).",
    responses={503: {"description": "A dependency does not answer; the problem names it."}},
    response_model=Readiness,
)
async def dependencies(request: Request) -> Response | Readiness:
    found = await _probe(request)
    if not found.failures:
        return found
    names = ", ".join(sorted(found.failures))
    return problem(
        503,
        "Dependency down",
        f"dependency not answering: {names}",
        "dependency-down",
        request,
        failures=found.failures,
        breakers=found.breakers,
    )


async def _probe(request: Request) -> Readiness:
    state = app_state(request)
    checks: dict[str, Check] = {}
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
    outcomes = await asyncio.gather(
        *(asyncio.wait_for(check(), timeout=CHECK_TIMEOUT) for check in backends.values()),
        return_exceptions=True,
    )
    for name, outcome in zip(backends, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            checks[name] = "failing"
            failures[name] = f"{type(outcome).__name__}: {outcome}"[:300]
        else:
            checks[name] = "ok"
    return Readiness(
        status="degraded" if failures else "ready",
        checks=checks,
        failures=failures,
        breakers=state.breakers.states(),
    )


def _fail() -> None:
    raise ConnectionError("storage check failed")


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    registry = app_state(request).metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
