"""The analytics tests' platform project (the platform template deployed), for exports."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.analytics.conftest import Platform
from tests.conftest import Keys


@pytest.fixture
def platform(client: TestClient, keys: Keys, admin: dict[str, str]) -> Platform:
    return Platform(client, keys, admin)
