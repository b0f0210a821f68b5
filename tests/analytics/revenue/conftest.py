"""Analytics fixtures: an app on each analytics engine (DuckDB, ClickHouse through chDB), a
shop project whose pipeline accepts the platform's events, and event builders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.auth.permissions import Role
from dataintel.settings import Settings
from tests.conftest import Keys, apply_yaml
from tests.storage.contract.test_analytics import ENGINES, url

T0 = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday
BATCH = 1000
TEN_YEARS = 10 * 365 * 86400  # the events are of 2024


def config(project: str) -> str:
    return f"""
project: {{id: {project}, name: Shop {project}}}
pipelines:
  - id: web
    name: Web and platform
    unknown_properties: allow
    events:
      - {{name: cart_add, fields: [{{name: sku, type: string}}]}}
      - {{name: purchase, fields: [{{name: revenue, type: number}}]}}
      - {{name: prediction, fields: [{{name: probability, type: number}}]}}
      - {{name: intervention, fields: [{{name: channel, type: string}}]}}
      - {{name: holdout, fields: [{{name: reason, type: string}}]}}
"""


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(make_settings: Callable[..., Settings], engine: str, tmp_path: Path) -> Any:
    from dataintel.main import create_app

    return create_app(
        make_settings(
            analytics_url=url(engine, tmp_path), ingest_allowed_lateness_seconds=TEN_YEARS
        )
    )


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def event(name: str, cart: str, when: datetime, user: str = "u", **props: Any) -> dict[str, Any]:
    return {
        "event": name,
        "timestamp": iso(when),
        "user_id": user,
        "cart_id": cart,
        "properties": props,
    }


class Shop:
    """One project driven through HTTP: its config deployed, an ingest and analyst key."""

    def __init__(self, app: Any, client: TestClient, keys: Keys, project: str = "shop") -> None:
        keys.project(project)
        apply_yaml(app, config(project))
        self.project, self.client = project, client
        self.ingest = keys.headers([Role.INGEST], project)
        self.analyst = keys.headers([Role.ANALYST], project)

    def send(self, events: list[dict[str, Any]]) -> None:
        for i in range(0, len(events), BATCH):
            resp = self.client.post(
                f"/ingest/{self.project}/web/batch?wait=processed",
                json=events[i : i + BATCH],
                headers=self.ingest,
            )
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert body["processed"] is True
            assert body["rejected"] == 0, body

    def get(self, path: str, **params: Any) -> Any:
        resp = self.client.get(path, headers=self.analyst, params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture
def shop(app: Any, client: TestClient, keys: Keys) -> Shop:
    return Shop(app, client, keys)
