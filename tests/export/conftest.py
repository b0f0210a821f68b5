"""The analytics tests' platform project (the platform template deployed), and an empty
analytics store on each engine, for the export tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from tests.analytics.conftest import Platform
from tests.conftest import Keys


@pytest.fixture
def platform(client: TestClient, keys: Keys, admin: dict[str, str]) -> Platform:
    return Platform(client, keys, admin)


@pytest.fixture(params=["duckdb", "chdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnalyticsStore]:
    url = (
        f"duckdb:///{tmp_path}/a.duckdb" if request.param == "duckdb" else f"chdb:///{tmp_path}/ch"
    )
    opened = open_analytics(url)
    yield opened
    opened.close()
