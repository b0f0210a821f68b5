"""GET /v1/analytics/overview through HTTP on the embedded stack: numbers equal the
reference, the deployed settings count, bad parameters are 422 naming them, tenants stay
apart, and the cache answers identical requests until a new event arrives."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.analytics.params import resolve
from dataintel.model.snapshot import AnalyticsSettings
from tests.analytics import reference
from tests.analytics.conftest import Platform
from tests.conftest import assert_problem

# Event times must stay within the allowed lateness (7 days) whenever this runs.
DAY = (datetime.now(UTC) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
OVERVIEW = "/v1/analytics/overview"


def window() -> dict[str, str]:
    return {
        "from": (DAY - timedelta(days=1)).isoformat(),
        "to": (DAY + timedelta(days=1)).isoformat(),
    }


def wire(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "event_id": e["event_id"],
            "event": e["event"],
            "timestamp": e["ts"].isoformat(),
            **({"user_id": e["user_id"]} if e["user_id"] else {}),
            **({"cart_id": e["cart_id"]} if e["cart_id"] else {}),
            "properties": {k: v for k, v in e["properties"].items() if v is not None},
        }
        for e in events
    ]


def stored(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events as the reference must see them (null properties are not sent)."""
    return [
        {**e, "properties": {k: v for k, v in e["properties"].items() if v is not None}}
        for e in events
    ]


@pytest.fixture
def shop(platform: Platform) -> tuple[dict[str, str], list[dict[str, Any]]]:
    headers = platform.project("shop")
    now = datetime.now(UTC)
    events = [  # what the platform pipeline accepts
        e
        for e in reference.generate(3, 600, DAY - timedelta(days=1), 1.9, project_id="shop")
        if e["event"] != "page_view"
        and e["ts"] < now
        and (e["event"] != "purchase" or e["properties"]["revenue"] is not None)
    ]
    platform.send("shop", wire(events))
    return headers, stored(events)


def test_overview_numbers_equal_the_reference(platform: Platform, shop: Any) -> None:
    headers, events = shop
    resp = platform.client.get(OVERVIEW, params={**window(), "interval": "hour"}, headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["period"] == {
        "from": window()["from"].replace("+00:00", "Z"),
        "to": window()["to"].replace("+00:00", "Z"),
    }
    assert body["config_version"] == 1
    params = resolve(
        datetime.fromisoformat(window()["from"]),
        datetime.fromisoformat(window()["to"]),
        None,
        now=datetime.now(UTC),
    )
    want = reference.overview(events, "shop", params, AnalyticsSettings())
    for name in reference.METRICS:
        assert body["totals"][name]["value"] == pytest.approx(want[("total", 1)][name]), name
        assert body["totals"][name]["previous"] == pytest.approx(want[("total", 0)][name]), name
    assert len(body["series"]) == 48
    for i, point in enumerate(body["series"]):
        assert point["metrics"]["events"]["value"] == want[(1, i)]["events"]
        assert point["metrics"]["carts_abandoned"]["value"] == want[(1, i)]["carts_abandoned"]
    assert body["totals"]["carts_abandoned"]["value"] > 0


def test_the_deployed_settings_count_not_the_draft(platform: Platform, shop: Any) -> None:
    headers, _ = shop
    before = platform.client.get(OVERVIEW, params=window(), headers=headers).json()
    settings = "/api/v1/projects/shop/analytics-settings"
    put = platform.client.put(settings, json={"abandon_after": "6h"}, headers=platform.admin)
    assert put.status_code == 200, put.text
    draft = platform.client.get(OVERVIEW, params=window(), headers=headers).json()
    assert draft["totals"] == before["totals"]  # not deployed yet
    assert (
        platform.client.post(
            "/api/v1/projects/shop/deployments", headers=platform.admin
        ).status_code
        == 201
    )
    after = platform.client.get(OVERVIEW, params=window(), headers=headers)
    assert after.headers["x-cache"] == "miss"
    body = after.json()
    assert body["settings"]["abandon_after"] == "6h"
    assert body["config_version"] == 2
    assert body["totals"]["carts_abandoned"] != before["totals"]["carts_abandoned"]


def test_identical_requests_hit_the_cache_until_a_new_event(platform: Platform, shop: Any) -> None:
    headers, _ = shop
    first = platform.client.get(OVERVIEW, params=window(), headers=headers)
    again = platform.client.get(OVERVIEW, params=window(), headers=headers)
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    assert again.content == first.content
    platform.send(
        "shop",
        [
            {
                "event_id": "late-1",
                "event": "cart_add",
                "timestamp": DAY.isoformat(),
                "user_id": "new-user",
                "cart_id": "new-cart",
                "properties": {"product_id": "p"},
            }
        ],
    )
    fresh = platform.client.get(OVERVIEW, params=window(), headers=headers)
    assert fresh.headers["x-cache"] == "miss"
    events_before = first.json()["totals"]["events"]["value"]
    assert fresh.json()["totals"]["events"]["value"] == events_before + 1


def test_another_tenant_never_reads_a_tenants_entry(platform: Platform, shop: Any) -> None:
    headers, _ = shop
    assert (
        platform.client.get(OVERVIEW, params=window(), headers=headers).json()["totals"]["events"][
            "value"
        ]
        > 0
    )
    other = platform.project("other")
    resp = platform.client.get(OVERVIEW, params=window(), headers=other)
    assert resp.headers["x-cache"] == "miss"
    assert resp.json()["project_id"] == "other"
    assert resp.json()["totals"]["events"]["value"] == 0
    # the other tenant's key cannot name the first project
    assert_problem(
        platform.client.get(OVERVIEW, params={**window(), "project_id": "shop"}, headers=other), 404
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2024-03-02T00:00:00Z", "to": "2024-03-01T00:00:00Z"}, "from"),
        ({"interval": "fortnight"}, "interval"),
        (
            {"from": "2024-01-01T00:00:00Z", "to": "2024-03-01T00:00:00Z", "interval": "hour"},
            "interval",
        ),
        ({"from": "1999-01-01T00:00:00Z", "to": "2024-03-01T00:00:00Z"}, "to"),
        ({"filter": "price>3"}, "filter"),
        ({"filter": "properties.channel>email"}, "filter"),
        ({"filter": "properties.a-b=1"}, "filter"),
        ({"from": "yesterday"}, "from"),
        ({"breakdown": "properties.channel"}, "breakdown"),
        ({"filter": ["user_id=a"] * 21}, "filter"),
    ],
)
def test_bad_parameters_are_422_naming_them(
    platform: Platform, params: dict[str, Any], field: str
) -> None:
    headers = platform.project("shop")
    assert_problem(platform.client.get(OVERVIEW, params=params, headers=headers), 422, field=field)


def test_defaults_and_filters(platform: Platform, shop: Any) -> None:
    headers, events = shop
    body = platform.client.get(OVERVIEW, headers=headers).json()
    assert body["interval"] == "day"
    assert len(body["series"]) == 7
    eur = platform.client.get(
        OVERVIEW, params={**window(), "filter": "properties.currency=EUR"}, headers=headers
    ).json()
    assert eur["filters"] == ["properties.currency=EUR"]
    purchases = [
        e
        for e in events
        if e["event"] == "purchase"
        and e["properties"].get("currency") == "EUR"
        and DAY - timedelta(days=1) <= e["ts"] < DAY + timedelta(days=1)
    ]
    assert eur["totals"]["events"]["value"] == len(purchases)


def test_an_analyst_of_another_role_is_refused(platform: Platform, shop: Any) -> None:
    from dataintel.auth.permissions import Role

    ingest = platform.keys.headers([Role.INGEST], "shop")
    assert_problem(platform.client.get(OVERVIEW, headers=ingest), 403)


def test_the_cache_is_redis_when_configured(make_settings: Any) -> None:
    from dataintel.analytics.cache import ANALYTICS_CACHE
    from dataintel.main import create_app
    from dataintel.storage.cache import RedisCache
    from tests.conftest import REDIS_URL, Keys, require_service

    require_service("Redis", "127.0.0.1", 6379)
    app = create_app(make_settings(cache_url=REDIS_URL))
    with TestClient(app, raise_server_exceptions=False) as client:
        keys = Keys(app)
        platform = Platform(client, keys, keys.headers(["admin"]))
        assert isinstance(app.state.dataintel.port(ANALYTICS_CACHE).backend, RedisCache)
        headers = platform.project(f"r{uuid.uuid4().hex[:12]}")
        project = keys_project(headers, client)
        event = {"event": "cart_add", "timestamp": DAY.isoformat(), "cart_id": "c1"}
        platform.send(project, [{**event, "event_id": "r1", "properties": {"product_id": "p"}}])
        first = client.get(OVERVIEW, params=window(), headers=headers)
        again = client.get(OVERVIEW, params=window(), headers=headers)
        assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
        platform.send(project, [{**event, "event_id": "r2", "properties": {"product_id": "p"}}])
        fresh = client.get(OVERVIEW, params=window(), headers=headers)
        assert fresh.headers["x-cache"] == "miss"
        assert fresh.json()["totals"]["events"]["value"] == 2


def keys_project(headers: dict[str, str], client: TestClient) -> str:
    return str(client.get(OVERVIEW, headers=headers).json()["project_id"])
