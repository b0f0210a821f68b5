"""An app whose project "shop" has the platform template deployed, and helpers to send
events through the ingest API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.auth.permissions import Role
from tests.conftest import Keys


@dataclass
class Platform:
    client: TestClient
    keys: Keys
    admin: dict[str, str]

    def project(self, project_id: str) -> dict[str, str]:
        """A project with the platform template deployed; its analyst's headers."""
        self.keys.project(project_id)
        base = f"/api/v1/projects/{project_id}"
        resp = self.client.post(f"{base}/templates/platform", headers=self.admin)
        assert resp.status_code == 201, resp.text
        assert self.client.post(f"{base}/deployments", headers=self.admin).status_code == 201
        return self.keys.headers([Role.ANALYST], project_id)

    def send(self, project_id: str, events: list[dict[str, Any]]) -> None:
        resp = self.client.post(
            f"/ingest/{project_id}/platform/batch?wait=processed", json=events, headers=self.admin
        )
        assert resp.status_code == 200, resp.text
        rejected = [i for i in resp.json()["items"] if i["status"] != "accepted"]
        assert not rejected, rejected[:3]
        assert resp.json()["processed"] is True


@pytest.fixture
def platform(client: TestClient, keys: Keys, admin: dict[str, str]) -> Platform:
    return Platform(client, keys, admin)
