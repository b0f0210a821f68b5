"""Analytics with its store down: once the store's circuit breaker counts the outage (or is
open), a request already answered gets its last answer marked stale (``X-Stale: true``,
``Age``), a request never answered gets a 503 naming the store, with Retry-After; when the
store is back, answers are fresh again."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from dataintel.storage.breakers import BackendFailed, Breakers
from tests.analytics.conftest import Platform
from tests.analytics.test_answer_cache import PERIOD, events


@pytest.fixture
def settings(make_settings: Callable[..., Any]) -> Any:
    return make_settings(breaker_threshold=2, breaker_reset_seconds=1.0)


def store_goes_down(breakers: Breakers) -> None:
    """Two outages in a row, as the analytics store's breaker sees them: it opens."""
    for _ in range(2):
        with pytest.raises(BackendFailed), breakers.guard("analytics"):
            raise ConnectionRefusedError("analytics store unreachable")
    assert breakers.state("analytics") == "opened"


def test_a_down_store_answers_stale_or_503_and_fresh_again_when_back(
    platform: Platform, app: Any
) -> None:
    shop = platform.project("shop")
    platform.send("shop", events("a", 3))
    path = "/v1/analytics/overview"
    first = platform.client.get(path, params=PERIOD, headers=shop)
    assert (first.status_code, first.headers["x-cache"]) == (200, "miss")
    assert "x-stale" not in first.headers

    store_goes_down(app.state.dataintel.breakers)
    stale = platform.client.get(path, params=PERIOD, headers=shop)
    assert stale.status_code == 200, stale.text
    assert stale.headers["x-stale"] == "true"
    assert int(stale.headers["age"]) >= 0
    assert stale.json() == first.json()  # the last answer, as it was

    never = platform.client.get(path, params={**PERIOD, "interval": "hour"}, headers=shop)
    assert never.status_code == 503, never.text
    assert never.json()["dependency"] == "analytics"
    assert int(never.headers["retry-after"]) >= 1

    time.sleep(1.1)  # the breaker lets calls through again: the store answers
    back = platform.client.get(path, params={**PERIOD, "interval": "hour"}, headers=shop)
    assert back.status_code == 200, back.text
    assert "x-stale" not in back.headers
