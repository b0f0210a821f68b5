"""Bad query parameters of the analytics routes: 422 problem+json naming the parameter (the
checks run before any engine work, so one engine is enough)."""

from __future__ import annotations

import pytest

from tests.analytics.revenue.conftest import Shop
from tests.conftest import assert_problem

REVENUE = [
    ({"model": "u_shaped"}, "model"),
    ({"window": "7 days"}, "window"),
    ({"window": "lifetime"}, "window"),
    ({"window": "900d"}, "window"),
    ({"half_life": "1h"}, "half_life"),  # last_touch has no half-life
    ({"model": "time_decay", "half_life": "0s"}, "half_life"),
    ({"horizon": "x"}, "horizon"),
    ({"from": "2024-03-05T00:00:00Z", "to": "2024-03-04T00:00:00Z"}, "from"),
    ({"from": "1960-01-01T00:00:00Z"}, "from"),
    ({"to": "yesterday"}, "to"),
    ({"currency": ""}, "currency"),
]
PERFORMANCE = [
    ({"interval": "minute"}, "interval"),
    ({"interval": "hour", "from": "2000-01-01T00:00:00Z"}, "interval"),  # > 1000 points
    ({"bins": "1"}, "bins"),
    ({"bins": "101"}, "bins"),
    ({"strategy": "kmeans"}, "strategy"),
    ({"top": "0"}, "top"),
    ({"top": "101"}, "top"),
    ({"top": "nan"}, "top"),
    ({"horizon": "-1d"}, "horizon"),
    ({"model_version": ""}, "model_version"),
    ({"from": "2024-03-05T00:00:00Z", "to": "2024-03-05T00:00:00Z"}, "from"),
]


@pytest.fixture
def engine() -> str:
    return "duckdb"


@pytest.mark.parametrize(
    ("path", "cases"),
    [("/v1/analytics/revenue", REVENUE), ("/v1/analytics/performance", PERFORMANCE)],
)
def test_bad_parameters_are_422_naming_them(
    shop: Shop, path: str, cases: list[tuple[dict[str, str], str]]
) -> None:
    for params, field in cases:
        resp = shop.client.get(path, params=params, headers=shop.analyst)
        assert_problem(resp, 422, field=field)
