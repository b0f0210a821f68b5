"""GET/POST /v1/analytics/conversion through the HTTP API, on DuckDB and chDB, with cases
computed by hand from PostHog's documented funnel behaviour."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.auth.permissions import Role
from dataintel.main import create_app
from dataintel.settings import Settings
from dataintel.storage.analytics.registry import open_analytics
from tests.analytics.store_writer import write
from tests.conftest import Keys, assert_problem

T0 = datetime(2024, 5, 1, tzinfo=UTC)
TO = T0 + timedelta(days=40)
S = timedelta(seconds=1)
D = timedelta(days=1)


@pytest.fixture(params=["duckdb", "chdb"])
def shop(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings], tmp_path: Path
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    url = (
        f"duckdb:///{tmp_path}/a.duckdb" if request.param == "duckdb" else f"chdb:///{tmp_path}/ch"
    )
    # Written before the app opens the store: no write races the processor's own reads.
    store = open_analytics(url)
    try:
        write(store, _events())
        write(store, _other_tenant(), project_id="other")
    finally:
        store.close()
    app = create_app(make_settings(analytics_url=url))
    with TestClient(app, raise_server_exceptions=False) as client:
        keys = Keys(app)
        keys.project("shop")
        keys.project("other")
        yield client, keys.headers([Role.ANALYST], "shop")


def ev(user: str, event: str, at: timedelta, **props: Any) -> dict[str, Any]:
    return {"event": event, "ts": T0 + at, "user_id": user, "properties": props}


def _events() -> list[dict[str, Any]]:
    return [
        # u1: A B C in order -> converted
        ev("u1", "a", 0 * S, country="de"),
        ev("u1", "b", 10 * S),
        ev("u1", "c", 20 * S),
        # u2: A C B -> ordered 2 (C before B is ignored); strict: C breaks -> 1; unordered 3
        ev("u2", "a", 0 * S, country="fr"),
        ev("u2", "c", 5 * S),
        ev("u2", "b", 9 * S),
        # u3: B then A -> ordered 1, unordered 2
        ev("u3", "b", 0 * S),
        ev("u3", "a", 5 * S, country="de"),
        # u4: A, then B 15 days later -> outside the 14-day window: 1
        ev("u4", "a", 0 * S),
        ev("u4", "b", 15 * D),
        # u5: A and B at the same instant -> the tie is split by step number: 2
        ev("u5", "b", 1 * D),
        ev("u5", "a", 1 * D),
        # u6: A, X, B, C -> dropped by the exclusion x (steps 1-3)
        ev("u6", "a", 0 * S),
        ev("u6", "x", 1 * S),
        ev("u6", "b", 2 * S),
        ev("u6", "c", 3 * S),
        # u7: A one hour before `to` -> still inside its window
        ev("u7", "a", 40 * D - 3600 * S),
        # u8: a second attempt converts although the first stalled
        ev("u8", "a", 0 * S),
        ev("u8", "b", 1 * S),
        ev("u8", "a", 20 * D),
        ev("u8", "b", 20 * D + 30 * S),
        ev("u8", "c", 20 * D + 90 * S),
        # u9: purchase filter: revenue 0 does not count, revenue 12.5 does
        ev("u9", "a", 0 * S),
        ev("u9", "b", 1 * S),
        ev("u9", "c", 2 * S, revenue=0),
        ev("u9", "c", 3 * S, revenue=12.5),
    ]


def _other_tenant() -> list[dict[str, Any]]:
    return [ev(f"o{i}", name, i * S) for i in range(5) for name in ("a", "b", "c")]


def get(shop: tuple[TestClient, dict[str, str]], **params: Any) -> Any:
    client, headers = shop
    query = {"step": ["a", "b", "c"], "from": T0.isoformat(), "to": TO.isoformat(), **params}
    resp = client.get("/v1/analytics/conversion", params=query, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


def entered(body: dict[str, Any]) -> list[int]:
    return [s["entered"] for s in body["steps"]]


def test_ordered_counts_every_user_at_the_furthest_step_of_one_attempt(shop: Any) -> None:
    body = get(shop)
    # a: all 9; b: u1 u2 u5 u6 u8 u9; c: u1 u6 u8 u9 (revenue unfiltered)
    assert entered(body) == [9, 6, 4]
    assert body["steps"][0]["conversion_from_previous"] is None
    assert body["steps"][1]["conversion_from_previous"] == pytest.approx(6 / 9)
    assert body["steps"][2]["conversion_from_first"] == pytest.approx(4 / 9)
    # time from b to c: u1 10 s, u6 1 s, u8 60 s, u9 1 s (the first c)
    assert body["steps"][2]["median_seconds_to_convert"] == pytest.approx(5.5)
    assert body["steps"][2]["average_seconds_to_convert"] == pytest.approx(18.0)


def test_still_inside_the_window_is_apart_from_the_drop_offs(shop: Any) -> None:
    step1 = get(shop)["steps"][0]
    # stopped at a: u3, u4, u7; only u7's window is open at `to`
    assert (step1["converted"], step1["dropped_off"], step1["in_window"]) == (6, 2, 1)


def test_strict_breaks_on_any_other_event_in_between(shop: Any) -> None:
    # u2 (c between a and b) and u6 (x between) stop at 1; the tie of u5 is no break
    body = get(shop, mode="strict")
    assert entered(body) == [9, 4, 3]


def test_unordered_counts_distinct_steps_in_one_window(shop: Any) -> None:
    body = get(shop, mode="unordered")
    # u2 reaches 3, u3 reaches 2, u5 2
    assert entered(body) == [9, 7, 5]


def test_exclusion_drops_the_user_whose_furthest_attempt_contains_it(shop: Any) -> None:
    body = get(shop, exclude="x@1-3")
    assert body["excluded"] == 1
    assert entered(body) == [8, 5, 3]
    # an exclusion outside the range does not drop: x lies between steps 1 and 2
    assert get(shop, exclude="x@2-3")["excluded"] == 0


def test_step_filters_and_per_step_windows(shop: Any) -> None:
    assert entered(get(shop, step=["a", "b", "c[revenue>0]"]))[2] == 1  # u9 only
    assert entered(get(shop, step=["a", "b", "c[revenue=0]"]))[2] == 1
    # c within 5 s of b: u1 (10 s) and u8 (60 s) fail
    assert entered(get(shop, step_window="3:5s")) == [9, 6, 2]
    assert entered(get(shop, window="1d")) == [9, 6, 4]  # u4's 15 days already failed


def test_breakdown_takes_the_value_at_the_first_step(shop: Any) -> None:
    body = get(shop, breakdown="country")
    groups = {g["value"]: entered(g) for g in body["breakdown_values"]}
    # de: u1 and u3 (whose a, its step 1, carries de although its b came first)
    assert groups == {None: [6, 4, 3], "de": [2, 1, 1], "fr": [1, 1, 0]}
    limited = get(shop, breakdown="country", breakdown_limit=1)
    assert [g["value"] for g in limited["breakdown_values"]] == [None, "$other"]


def test_post_body_equals_get(shop: Any) -> None:
    client, headers = shop
    body = {
        "steps": ["a", "b", "c"],
        "from": T0.isoformat(),
        "to": TO.isoformat(),
        "exclude": ["x@1-3"],
    }
    resp = client.post("/v1/analytics/conversion", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["steps"] == get(shop, exclude="x@1-3")["steps"]


def test_cart_entity(shop: Any) -> None:
    body = get(shop, entity="cart_id")
    assert entered(body) == [0, 0, 0]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"step": ["a"]}, "step"),
        ({"step": ["a", "b[revenue>ten]"]}, "step"),
        ({"step": ["a", "b[revenue]"]}, "step"),
        ({"window": "14 days"}, "window"),
        ({"step_window": "9:1h"}, "step_window"),
        ({"exclude": "x@3-1"}, "exclude"),
        ({"exclude": "x@1-2", "mode": "unordered"}, "exclude"),
        ({"exclude": "a"}, "exclude"),
        ({"mode": "sideways"}, "mode"),
        ({"from": TO.isoformat(), "to": T0.isoformat()}, "to"),
        ({"breakdown": "a b"}, "breakdown"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(
    shop: Any, params: dict[str, Any], field: str
) -> None:
    client, headers = shop
    query = {"step": ["a", "b", "c"], **params}
    resp = client.get("/v1/analytics/conversion", params=query, headers=headers)
    assert_problem(resp, 422, field=field)


def test_only_analysts_and_admins(shop: Any, app: Any) -> None:
    client, _ = shop
    resp = client.get("/v1/analytics/conversion", params={"step": ["a", "b"]})
    assert resp.status_code == 401
