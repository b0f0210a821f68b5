"""A project "shop" with a pipeline, a feature and quality rules applied as YAML, events sent
through the ingest API, and the quality.rules job run directly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from dataintel.api.state import ANALYTICS
from dataintel.config.deployments.active import CONFIGS
from dataintel.model.jobs import JobOutcome, JobRun
from dataintel.quality.jobs import quality_jobs
from tests.conftest import apply_yaml

SHOP = """
project: {{id: {project}, name: Shop}}
pipelines:
  - id: web
    name: Web
    events:
      - name: view
        fields:
          - {{name: price, type: number}}
          - {{name: brand, type: string}}
      - name: purchase
features:
  - {{name: price_sum, pipeline_id: web, source_event: view, aggregation: SUM, field: price,
     windows: [1h]}}
quality:
  rules:
    - {{name: brand_missing, type: missing, dataset: view, column: properties.brand, mostly: 0.9}}
    - {{name: price_range, type: range, dataset: view, column: properties.price, min: 1, max: 100}}
    - {{name: fresh, type: freshness, max_age_seconds: 3600, severity: critical}}
    - {{name: view_schema, type: schema, dataset: view, mostly: 0.5}}
    - {{name: user_missing, type: missing, column: user_id, enabled: false}}
"""


def deploy_shop(app: Any, project: str = "shop") -> None:
    apply_yaml(app, SHOP.format(project=project))


def send(client: TestClient, admin: dict[str, str], project: str, events: list[Any]) -> int:
    """The valid events with ?wait=processed, then the invalid ones (dead letters) apart: a
    batch mixing both waits out DATAINTEL_WAIT_PROCESSED_TIMEOUT_SECONDS (processed: false).
    Returns how many were accepted."""
    valid = [e for e in events if isinstance(e.get("properties", {}).get("price"), float)]
    invalid = [e for e in events if e not in valid]
    url = f"/ingest/{project}/web/batch"
    resp = client.post(f"{url}?wait=processed", json=valid, headers=admin)
    assert resp.status_code == 200, resp.text
    assert resp.json()["processed"] is True
    if invalid:
        rejected = client.post(url, json=invalid, headers=admin)
        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["accepted"] == 0
    return int(resp.json()["accepted"])


def run_job(
    app: Any, project: str, slot: datetime, run_id: int = 1001, **params: Any
) -> JobOutcome:
    state = app.state.dataintel
    (job,) = quality_jobs(state.port(ANALYTICS), state.sessions, state.port(CONFIGS))
    run = JobRun(id=run_id, job=job.name, project_id=project, slot=slot, params=params)
    return asyncio.run(job.run(run))


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
