"""Feature-engine fixtures: fresh OnlineStores of each adapter (embedded, Redis), and a
project driven through HTTP (``Tenant``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import Keys, apply_yaml, require_service

from dataintel.auth.permissions import Role
from dataintel.storage.online.port import OnlineStore
from dataintel.storage.online.registry import open_online

REDIS = "redis://127.0.0.1:6379/0"
OnlineFactory = Callable[[], OnlineStore]


def redis_prefix() -> str:
    """A key prefix no other test run uses."""
    return f"ditest-{uuid.uuid4().hex[:12]}"


def drop_redis_prefix(prefix: str) -> None:
    """Delete every key under ``prefix`` (a test's Redis online store)."""
    import redis

    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["embedded", "redis"])
def online_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineFactory]:
    """Each call opens a new, empty store; all are closed (and Redis keys removed) after."""
    opened: list[tuple[OnlineStore, str]] = []
    if request.param == "redis":
        require_service("redis", "127.0.0.1", 6379)

    def make() -> OnlineStore:
        if request.param == "embedded":
            url = f"sqlite:///{tmp_path / f'online-{len(opened)}.db'}"
        else:
            url = f"{REDIS}?prefix={redis_prefix()}"
        store = open_online(url, 86400 * 90)
        opened.append((store, url))
        return store

    yield make
    for store, url in opened:
        if url.startswith("redis"):
            drop_redis_prefix(url.split("prefix=")[1])
        store.close()


@pytest.fixture(params=["embedded", "redis"])
def online_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The app's OnlineStore URL: None (the embedded default) or a fresh Redis prefix.
    Override ``app`` with ``make_settings(online_url=online_url)`` to run on both."""
    if request.param == "embedded":
        yield None
        return
    require_service("redis", "127.0.0.1", 6379)
    prefix = redis_prefix()
    yield f"{REDIS}?prefix={prefix}"
    drop_redis_prefix(prefix)


def iso(dt: datetime) -> str:
    """An aware datetime as the API writes it (``Z``)."""
    return dt.isoformat().replace("+00:00", "Z")


class Tenant:
    """One project driven through HTTP: its config applied from YAML (when given), an ingest
    and a service key, reads that assert a 200, and the wait until every feature is ready."""

    def __init__(
        self, app: Any, client: TestClient, keys: Keys, project: str, config: str | None = None
    ) -> None:
        keys.project(project)
        if config is not None:
            apply_yaml(app, config)
        self.project = project
        self.app, self.client, self.keys = app, client, keys
        self.ingest = keys.headers([Role.INGEST], project)
        self.service = keys.headers([Role.SERVICE], project)

    def ingest_batch(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """Events into pipeline ``web`` with ``?wait=processed``: 200 and processed."""
        resp = self.client.post(
            f"/ingest/{self.project}/web/batch?wait=processed", json=events, headers=self.ingest
        )
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        assert body["processed"] is True
        return body

    def get(self, path: str, **params: Any) -> Any:
        resp = self.client.get(path, headers=self.service, params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        resp = self.client.post(path, json=body, headers=self.service)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def wait_ready(self) -> dict[str, Any]:
        """The definitions document once every deployed feature is ready (20 s at most)."""
        deadline = time.monotonic() + 20
        while True:
            body: dict[str, Any] = self.get("/v1/features/definitions")
            if all(f["status"] == "ready" for f in body["features"]):
                return body
            assert time.monotonic() < deadline, body
            time.sleep(0.05)
