"""Every analytics route answers repeated requests from the cache (``X-Cache``), through
its fast path for GETs: the same body, the same checks (credential, project, permission,
rate limit), a miss after a new event or a deploy, and never another tenant's entry. An
answer that reads the clock holds until the minute ends; one about the past, while the
data holds."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from dataintel.analytics.cache import MINUTE, AnalyticsCache, Fresh, RequestKey, fresh
from dataintel.auth.permissions import Role
from dataintel.storage.analytics.duckdb import DuckDBAnalytics
from dataintel.storage.cache import MemoryCache
from tests.analytics.conftest import Platform
from tests.conftest import Keys, assert_problem

DAY = (datetime.now(UTC) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
PERIOD = {
    "from": (DAY - timedelta(days=1)).isoformat(),
    "to": (DAY + timedelta(days=1)).isoformat(),
}
ROUTES: dict[str, dict[str, Any]] = {
    "/v1/analytics/overview": PERIOD,
    "/v1/analytics/conversion": {**PERIOD, "step": ["cart_add", "purchase"]},
    "/v1/analytics/revenue": PERIOD,
    "/v1/analytics/performance": PERIOD,
}


def event(prefix: str, i: int, name: str, minutes: int, **props: Any) -> dict[str, Any]:
    """Cart i's ``name`` event, ``minutes`` after the cart's start."""
    return {
        "event_id": f"{prefix}{name}{i}",
        "event": name,
        "timestamp": (DAY + timedelta(minutes=10 * i + minutes)).isoformat(),
        "user_id": f"{prefix}u{i}",
        "cart_id": f"{prefix}c{i}",
        "properties": props,
    }


def events(prefix: str, n: int = 1) -> list[dict[str, Any]]:
    """n carts, each added, predicted, reminded by email and bought (4 events each)."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        intervention = {"channel": "email", "action": "reminder", "status": "sent"}
        out += [
            event(prefix, i, "cart_add", 0, product_id="p1", price=10.0),
            event(prefix, i, "prediction", 1, probability=0.7, model_version="v1"),
            event(prefix, i, "intervention", 2, intervention_id=f"{prefix}i{i}", **intervention),
            event(prefix, i, "purchase", 5, order_id=f"{prefix}o{i}", revenue=25.0, currency="EUR"),
        ]
    return out


@pytest.fixture
def shop(platform: Platform) -> dict[str, str]:
    headers = platform.project("shop")
    platform.send("shop", events("a", 3))
    return headers


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_a_repeated_request_is_a_hit_until_a_new_event(
    platform: Platform, shop: dict[str, str], path: str
) -> None:
    def get() -> Any:
        return platform.client.get(path, params=ROUTES[path], headers=shop)

    first, again = get(), get()
    assert first.status_code == 200, first.text
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    assert again.content == first.content
    assert again.headers["content-type"] == "application/json"
    platform.send("shop", events("b"))
    fresh_answer = get()
    assert fresh_answer.headers["x-cache"] == "miss"
    assert get().headers["x-cache"] == "hit"


def test_the_hit_is_what_the_route_computes(platform: Platform, shop: dict[str, str]) -> None:
    path = "/v1/analytics/overview"
    miss = platform.client.get(path, params=PERIOD, headers=shop)
    hit = platform.client.get(path, params=PERIOD, headers=shop)
    assert hit.json() == miss.json()
    assert miss.json()["totals"]["events"]["value"] == 12
    assert miss.json()["totals"]["revenue"]["value"] == 75.0


def test_a_post_funnel_is_cached_by_its_body(platform: Platform, shop: dict[str, str]) -> None:
    path = "/v1/analytics/conversion"
    body = {**PERIOD, "steps": ["cart_add", "purchase"]}
    first = platform.client.post(path, json=body, headers=shop)
    again = platform.client.post(path, json=dict(reversed(body.items())), headers=shop)
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    assert first.json()["steps"][1]["entered"] == 3
    other = platform.client.post(path, json={**body, "window": "1m"}, headers=shop)
    assert other.headers["x-cache"] == "miss"


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_a_cached_answer_still_checks_the_caller(
    platform: Platform, shop: dict[str, str], path: str
) -> None:
    params = ROUTES[path]
    assert platform.client.get(path, params=params, headers=shop).status_code == 200
    assert platform.client.get(path, params=params, headers=shop).headers["x-cache"] == "hit"
    assert_problem(platform.client.get(path, params=params), 401)
    ingest = platform.keys.headers([Role.INGEST], "shop")
    assert_problem(platform.client.get(path, params=params, headers=ingest), 403)
    stranger = platform.project("other")
    named = {**params, "project_id": "shop"}
    assert_problem(platform.client.get(path, params=named, headers=stranger), 404)
    assert_problem(
        platform.client.get(path, params={**params, "project_id": "Not valid"}, headers=shop),
        422,
        field="project_id",
    )


def test_tenants_never_share_an_entry(platform: Platform, shop: dict[str, str]) -> None:
    other = platform.project("other")
    platform.send("other", events("z", 1))
    path = "/v1/analytics/overview"
    mine = platform.client.get(path, params=PERIOD, headers=shop)
    theirs = platform.client.get(path, params=PERIOD, headers=other)
    assert (mine.headers["x-cache"], theirs.headers["x-cache"]) == ("miss", "miss")
    assert mine.json()["totals"]["events"]["value"] == 12
    assert theirs.json()["totals"]["events"]["value"] == 4


def test_a_deploy_is_a_miss(platform: Platform, shop: dict[str, str]) -> None:
    path = "/v1/analytics/overview"
    assert platform.client.get(path, params=PERIOD, headers=shop).headers["x-cache"] == "miss"
    base = "/api/v1/projects/shop"
    resp = platform.client.put(
        f"{base}/analytics-settings", json={"abandon_after": "10m"}, headers=platform.admin
    )
    assert resp.status_code == 200, resp.text
    deployed = platform.client.post(f"{base}/deployments", headers=platform.admin)
    assert deployed.status_code == 201, deployed.text
    app_state_of(platform.client).port(_configs()).invalidate("shop")
    assert platform.client.get(path, params=PERIOD, headers=shop).headers["x-cache"] == "miss"


class Answer(BaseModel):
    value: int


def app_state_of(client: TestClient) -> Any:
    return client.app.state.dataintel  # type: ignore[attr-defined]


def _configs() -> Any:
    from dataintel.config.deployments.active import CONFIGS

    return CONFIGS


def test_a_miss_counts_once_against_the_rate_limit(make_settings: Callable[..., Any]) -> None:
    from dataintel.main import create_app

    app = create_app(make_settings(rate_limit="3/minute"))
    with TestClient(app, raise_server_exceptions=False) as client:
        keys = Keys(app)
        keys.project("rl")
        analyst = keys.headers([Role.ANALYST], "rl")
        path = "/v1/analytics/overview"
        answers = [client.get(path, params=PERIOD, headers=analyst) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.headers["x-cache"] for a in answers] == ["miss", "hit", "hit"]
        assert_problem(client.get(path, params=PERIOD, headers=analyst), 429)


def test_an_answer_reading_the_clock_holds_until_the_minute_ends(tmp_path: Any) -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    clock = [now.timestamp()]
    cache = AnalyticsCache(MemoryCache(), clock=lambda: clock[0])
    store = DuckDBAnalytics(str(tmp_path / "a.duckdb"))
    model = Answer(value=1)
    computed: list[int] = []

    def answer(reads_clock: bool) -> Callable[[], Fresh]:
        def compute() -> Fresh:
            computed.append(1)
            return Fresh(model, fresh(model, now, reads_clock).valid_until)

        return compute

    live = RequestKey("p", "overview", "", 1)
    past = RequestKey("p", "overview", f"to={uuid.uuid4()}", 1)
    assert not cache.answer(store, live, answer(True)).hit
    assert not cache.answer(store, past, answer(False)).hit
    clock[0] = (now + MINUTE).timestamp() - 0.5
    assert cache.answer(store, live, answer(True)).hit
    clock[0] = (now + MINUTE).timestamp()
    assert cache.lookup(store, live) is None  # the next minute: computed again
    assert cache.lookup(store, past) is not None
    assert not cache.answer(store, live, answer(True)).hit
    assert len(computed) == 3
    assert fresh(model, now, False).valid_until is None
    assert fresh(model, now, True).valid_until == now + MINUTE
    store.close()


def test_defaults_resolve_to_the_current_minute(platform: Platform, shop: dict[str, str]) -> None:
    body = platform.client.get(
        "/v1/analytics/conversion", params={"step": ["cart_add", "purchase"]}, headers=shop
    ).json()
    to = datetime.fromisoformat(body["to"])
    assert (to.second, to.microsecond) == (0, 0)
    assert datetime.now(UTC) - to < timedelta(minutes=2)
