"""The quality jobs on the scheduler: ``monitor_jobs`` runs (the anomaly job judges, raises
an alert and delivers its signed notification at once), and a manual run through the jobs
API end to end (POST → 202 → the run finishes with the detector's outcome)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.api.state import ANALYTICS
from dataintel.config.deployments.active import CONFIGS
from dataintel.features.serving.service import SERVER
from dataintel.model.jobs import JobRun
from dataintel.quality.anomalies import AnomalyDetector
from dataintel.quality.monitor_jobs import monitor_jobs
from dataintel.settings import Settings
from dataintel.storage.metadata.models import IngestStat
from dataintel.storage.metadata.monitoring_models import MetricEvaluation
from tests.analytics.store_writer import write
from tests.conftest import Keys, apply_yaml
from tests.quality.test_alerts import SECRET, Receiver

HOUR = timedelta(hours=1)


def project(project: str, url: str | None = None) -> str:
    hook = f"webhook_url: '{url}', webhook_secret: {SECRET}, " if url else ""
    return (
        f"project: {{id: {project}, name: Shop}}\n"
        "pipelines: [{id: web, name: Web, events: [{name: view}]}]\n"
        f"monitoring: {{{hook}anomalies: {{seasonality: none, warmup: 5, min_volume: 5}}}}\n"
    )


def steady(project: str, start: datetime, hours: int, per_hour: int) -> list[dict[str, Any]]:
    return [
        {"event": "view", "ts": start + h * HOUR + timedelta(seconds=i), "user_id": f"u{i}"}
        for h in range(hours)
        for i in range(per_hour + (h % 3))  # 20, 21, 22, … : a little spread
    ]


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(scheduler_poll_seconds=0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(fail=0)
    yield found
    found.server.shutdown()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_the_anomaly_job_alerts_and_notifies_in_its_run(
    app: Any, client: TestClient, keys: Keys, receiver: Receiver
) -> None:
    keys.project("shop")
    keys.project("other")
    apply_yaml(app, project("shop", receiver.url))
    apply_yaml(app, project("other"))
    state = app.state.dataintel
    store = state.port(ANALYTICS)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    write(store, steady("shop", start, 10, 20), "shop")  # 10 normal hours, then silence
    write(store, steady("other", start, 11, 20), "other")  # the other shop goes on
    configs = state.port(CONFIGS)
    configs.invalidate()
    jobs = {
        j.name: j
        for j in monitor_jobs(
            state.settings,
            state.sessions,
            store,
            lambda p: configs.get(p).snapshot,
            state.port(SERVER),
        )
    }
    assert set(jobs) == {
        "quality.anomalies",
        "quality.drift",
        "quality.consistency",
        "quality.notify",
    }
    slot = start + 11 * HOUR  # judges hour 10: shop has no views at all
    run = jobs["quality.anomalies"].run
    shop = asyncio.run(run(JobRun(1, "quality.anomalies", "shop", slot)))
    assert shop["anomalies"] == ["volume:view"]
    assert shop["notifications"] == {"delivered": 1, "failed": 0, "dropped": 0}
    assert b'"quality.alert.opened"' in receiver.received[0][1]
    other = asyncio.run(run(JobRun(2, "quality.anomalies", "other", slot)))
    assert other["anomalies"] == []  # its own series only (tenant isolation)
    admin = keys.headers(["admin"], "other")
    assert client.get("/v1/quality/alerts", headers=admin).json()["alerts"] == []


def test_a_manual_run_through_the_jobs_api(app: Any, client: TestClient, keys: Keys) -> None:
    keys.project("shop")
    apply_yaml(app, project("shop"))
    admin = keys.headers(["admin"], "shop")
    queued = client.post("/v1/jobs/quality.anomalies/runs", headers=admin)
    assert queued.status_code == 202, queued.text
    url = queued.headers["location"]
    deadline = time.monotonic() + 20
    while (found := client.get(url, headers=admin).json())["status"] not in ("finished", "failed"):
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    assert found["status"] == "finished", found
    assert found["outcome"]["anomalies"] == []
    assert "bucket" in found["outcome"]


def test_a_burst_of_ingest_rejections_is_an_anomaly(
    app: Any, client: TestClient, keys: Keys
) -> None:
    keys.project("shop")
    apply_yaml(app, project("shop"))
    state = app.state.dataintel
    start = datetime(2026, 5, 1, tzinfo=UTC)
    with state.sessions.begin() as session:  # 10 hours of ~1 % rejections, then 40 %
        for h in range(11):
            rejected = 40 if h == 10 else 1 + h % 2
            session.add(
                IngestStat(
                    project_id="shop",
                    pipeline_id="web",
                    hour=start + h * HOUR,
                    event="view",
                    accepted=100 - rejected,
                    duplicate=0,
                    rejected=rejected,
                )
            )
    configs = state.port(CONFIGS)
    configs.invalidate()
    detector = AnomalyDetector(
        state.sessions, state.port(ANALYTICS), lambda p: configs.get(p).snapshot
    )
    assert detector.run("shop", start + 10 * HOUR)["anomalies"] == []
    assert detector.run("shop", start + 11 * HOUR)["anomalies"] == ["rejection_rate"]
    with state.sessions() as session:
        judged = session.get(MetricEvaluation, ("shop", "rejection_rate", start + 10 * HOUR))
        assert judged is not None
        assert judged.value == pytest.approx(0.4)  # 40 of 100 received
        assert judged.expected == pytest.approx(0.015)  # median of 1 %, 2 %, … (10 hours)
    admin = keys.headers(["analyst"], "shop")
    url = "/v1/quality/anomalies/evaluations?metric=rejection_rate&status=anomaly"
    (shown,) = client.get(url, headers=admin).json()["evaluations"]
    assert shown["value"] == pytest.approx(0.4)
    assert shown["bucket"].startswith("2026-05-01T10:00:00")
    assert shown["baseline"] == 10
    keys.project("other")
    other = keys.headers(["admin"], "other")
    assert client.get(url, headers=other).json()["evaluations"] == []  # not another's
    assert client.get(url + "&limit=5000", headers=other).status_code == 422
