"""GET /v1/analytics/revenue through HTTP on both engines: every model on a hand-computed
case, the invariants, the settings' defaults, tenant isolation and 422s naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.auth.permissions import Role
from tests.analytics.revenue.conftest import Shop, at, event, iso
from tests.conftest import Keys, assert_problem

URL = "/v1/analytics/revenue"
RANGE = {"from": iso(at(-24)), "to": iso(at(24 * 30))}


def intervention(cart: str, hours: float, iid: str, **props: Any) -> dict[str, Any]:
    return event("intervention", cart, at(hours), intervention_id=iid, **props)


CASE = [
    intervention(
        "c1", 0, "I1", channel="email", action="reminder", campaign="spring", status="sent"
    ),
    intervention("c1", 1, "I1", status="opened"),  # the same touchpoint, later status
    intervention("c1", 2, "I2", channel="sms", action="discount", status="delivered"),
    intervention("c1", 3, "I3", channel="push", action="urgency", status="sent"),
    intervention("c1", 3.5, "I4", channel="push", action="urgency", status="failed"),
    event("purchase", "c1", at(5), order_id="o1", revenue=100),
    event("purchase", "c1", at(5.1), order_id="o1", revenue=100),  # the same order again
    event("purchase", "c2", at(6), order_id="o2", revenue=50.5),  # never touched
    intervention("c3", 0, "I5", channel="email", action="reminder", status="sent"),
    event("purchase", "c3", at(8 * 24), order_id="o3", revenue=20),  # outside the 7d window
]


def by(rows: list[dict[str, Any]]) -> dict[str | None, float]:
    return {r["value"]: r["revenue"] for r in rows}


def check_invariants(body: dict[str, Any]) -> None:
    assert body["attributed"]["revenue"] + body["unattributed"]["revenue"] == pytest.approx(
        body["revenue"]
    )
    for dim in ("by_channel", "by_action", "by_campaign"):
        rows = body[dim]
        assert sum(r["revenue"] for r in rows) == pytest.approx(body["attributed"]["revenue"])
        assert sum(r["conversions"] for r in rows) == pytest.approx(
            body["attributed"]["conversions"]
        )
        assert all(r["revenue"] >= 0 and r["conversions"] >= 0 for r in rows)


def test_models_on_a_hand_computed_case(shop: Shop) -> None:
    shop.send(CASE)
    last = shop.get(URL, **RANGE)
    assert last["model"] == "last_touch"
    assert last["window"] == "7d"
    assert (last["conversions"], last["revenue"]) == (3, 170.5)
    assert last["attributed"] == {"conversions": 1, "revenue": 100.0}
    assert last["unattributed"] == {"conversions": 2, "revenue": 70.5}
    assert by(last["by_channel"]) == {"push": 100.0, "email": 0.0, "sms": 0.0}
    push = next(r for r in last["by_channel"] if r["value"] == "push")
    assert (push["touches"], push["assisted_conversions"]) == (1, 1)  # the failed I4 is none
    assert by(last["by_campaign"]) == {None: 100.0, "spring": 0.0}
    check_invariants(last)

    first = shop.get(URL, model="first_touch", **RANGE)
    assert by(first["by_channel"])["email"] == 100.0
    assert by(first["by_campaign"]) == {"spring": 100.0, None: 0.0}
    linear = shop.get(URL, model="linear", **RANGE)
    assert by(linear["by_action"]) == pytest.approx(
        {"reminder": 100 / 3, "discount": 100 / 3, "urgency": 100 / 3}
    )
    position = shop.get(URL, model="position_based", **RANGE)
    assert by(position["by_channel"]) == pytest.approx({"email": 40.0, "sms": 20.0, "push": 40.0})
    decay = shop.get(URL, model="time_decay", half_life="1h", **RANGE)
    raw = {"email": 2**-3, "sms": 2**-1, "push": 1.0}  # touches 5 h, 3 h and 2 h before
    assert decay["half_life"] == "1h"
    assert by(decay["by_channel"]) == pytest.approx(
        {k: 100 * v / sum(raw.values()) for k, v in raw.items()}
    )
    default_decay = shop.get(URL, model="time_decay", **RANGE)
    assert default_decay["half_life"] == "42h"  # max(7d / 4, 1d)
    wide = shop.get(URL, window="9d", **RANGE)
    assert wide["attributed"] == {"conversions": 2, "revenue": 120.0}
    assert by(wide["by_channel"])["email"] == 20.0
    for body in (first, linear, position, decay, default_decay, wide):
        check_invariants(body)
    euros = shop.get(URL, currency="EUR", **RANGE)
    assert euros["conversions"] == 0


def test_range_limits_the_conversions(shop: Shop) -> None:
    shop.send(CASE)
    body = shop.get(URL, **{"from": iso(at(5.5)), "to": iso(at(7))})
    assert (body["conversions"], body["revenue"]) == (1, 50.5)
    assert body["attributed"]["conversions"] == 0


def test_tenants_see_only_their_own(app: Any, client: TestClient, keys: Keys, shop: Shop) -> None:
    other = Shop(app, client, keys, "other")
    other.send(
        [
            intervention("c1", 0, "X", channel="email", status="sent"),
            event("purchase", "c1", at(1), order_id="o1", revenue=999),
        ]
    )
    shop.send(CASE)
    mine = shop.get(URL, **RANGE)
    assert mine["revenue"] == 170.5
    assert by(mine["by_channel"])["email"] == 0.0
    theirs = other.get(URL, **RANGE)
    assert theirs["revenue"] == 999
    assert theirs["attributed"]["revenue"] == 999
    resp = client.get(URL, params={"project_id": "shop", **RANGE}, headers=other.analyst)
    assert_problem(resp, 404)
    admin = keys.headers([Role.ADMIN])
    assert_problem(client.get(URL, headers=admin), 422, field="project_id")
    ingest_only = client.get(URL, headers=shop.ingest)
    assert_problem(ingest_only, 403)
