"""Batch features end to end on the REES46 slice: the features.batch job computes the due
features as of its slot into the online store (embedded SQLite with DuckDB, Redis with
chDB), the serving API returns them with their computed_at and ``stale`` past the TTL, a
re-run of a slot writes the same values, and projects never see each other's values.
Expected values are computed here with pandas from the events written."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.analytics.store_writer import write
from tests.conftest import Keys, apply_yaml, require_service
from tests.features.batch_data import PIPELINE_YAML, REES46, rees46_frame, rees46_rows
from tests.features.conftest import REDIS, drop_redis_prefix, redis_prefix
from tests.ingest.test_real_data import _file

from dataintel.api.state import ANALYTICS, ONLINE
from dataintel.auth.permissions import Role
from dataintel.config.deployments.active import CONFIGS
from dataintel.features.batch.jobs import JOB, batch_feature_jobs
from dataintel.main import create_app
from dataintel.model.jobs import Job, JobRun
from dataintel.scheduler.service import SCHEDULER
from dataintel.settings import Settings

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
T1 = NOW - timedelta(hours=2)
T2 = NOW - timedelta(minutes=1)
SHIFT = (T1 - timedelta(minutes=10)) - datetime(2019, 10, 1, 2, 50, tzinfo=UTC)
REALTIME = """
features:
  - {name: views, pipeline_id: web, source_event: view, aggregation: COUNT, windows: [1h]}
"""
BATCH = """
batch:
  - {name: category_popularity, pipeline_id: web, source_event: view, entity_key: category_code,
     aggregation: COUNT, window: 30d, schedule: 1h, ttl: 30m}
  - name: brand_conversion_rate
    entity_key: brand
    expression: "count_if(event = 'purchase') / nullif(count_if(event = 'view'), 0)"
    schedule: 1h
    ttl: 30m
  - {name: purchase_frequency, pipeline_id: web, source_event: purchase, aggregation: COUNT,
     window: 30d, schedule: 1h, ttl: 3h}
"""
EXTRA = [  # arrive between the two runs
    {
        "event": "view",
        "ts": T1 + timedelta(minutes=10),
        "user_id": f"new-{i}",
        "properties": {"category_code": "electronics.smartphone", "brand": "apple", "price": 1.0},
    }
    for i in range(7)
]


@pytest.fixture(params=["embedded+duckdb", "redis+chdb"])
def app(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings], tmp_path: Any
) -> Iterator[Any]:
    _file(str(REES46.relative_to(REES46.parents[1])))
    overrides: dict[str, Any] = {}
    prefix = None
    if request.param.startswith("redis"):
        require_service("redis", "127.0.0.1", 6379)
        prefix = redis_prefix()
        overrides = {
            "online_url": f"{REDIS}?prefix={prefix}",
            "analytics_url": f"chdb:///{tmp_path / 'ch'}",
        }
    yield create_app(make_settings(**overrides))
    if prefix is not None:
        drop_redis_prefix(prefix)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    found = rees46_frame()
    found["ts"] = found.ts + SHIFT
    return found


def shifted(project_id: str = "shop") -> Iterator[dict[str, Any]]:
    for row in rees46_rows():
        yield {**row, "ts": row["ts"] + SHIFT, "project_id": project_id}


def quiet(client: TestClient, app: Any) -> None:
    """Stop the app's scheduler: these tests run the job's slots themselves."""
    client.portal.call(app.state.dataintel.port(SCHEDULER).stop)  # type: ignore[union-attr]


def job(app: Any) -> Job:
    state = app.state.dataintel
    [found] = batch_feature_jobs(
        state.port(ANALYTICS), state.port(ONLINE), state.sessions, state.port(CONFIGS)
    )
    assert found.name == JOB
    return found


def run(
    client: TestClient, app: Any, at: datetime, project_id: str = "shop", manual: bool = False
) -> dict[str, Any]:
    slot = JobRun(1, JOB, project_id, at, manual)
    outcome: dict[str, Any] = client.portal.call(job(app).run, slot)  # type: ignore[union-attr]
    return outcome


def get(
    client: TestClient, headers: dict[str, str], key: str, entity: str, project_id: str = "shop"
) -> dict[str, Any]:
    resp = client.get(
        f"/features/{project_id}/entities/{key}", params={"entity_id": entity}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def counts(frame: pd.DataFrame, at: datetime, event: str, key: str) -> dict[str, int]:
    rows = frame[(frame.event == event) & (frame.ts <= at) & frame[key].notna()]
    return {k: int(v) for k, v in rows.groupby(key).size().items()}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_job_serving_stale_and_reruns(
    app: Any, client: TestClient, keys: Keys, frame: pd.DataFrame
) -> None:
    quiet(client, app)
    keys.project("shop")
    apply_yaml(app, "project: {id: shop, name: Shop}\n" + PIPELINE_YAML + REALTIME + BATCH)
    state = app.state.dataintel
    write(state.port(ANALYTICS), shifted())
    reader = keys.headers([Role.SERVICE], "shop")
    before = get(client, reader, "category_code", "electronics.smartphone")
    assert before["values"]["category_popularity"] is None
    assert before["status"]["category_popularity"] == "building"  # never computed

    first = run(client, app, T1)
    assert set(first["computed"]) == {
        "category_popularity",
        "brand_conversion_rate",
        "purchase_frequency",
    }
    popular = counts(frame, T1, "view", "category_code")
    assert first["computed"]["category_popularity"] == len(popular)
    phone = get(client, reader, "category_code", "electronics.smartphone")
    assert phone["values"]["category_popularity"] == popular["electronics.smartphone"]
    assert phone["computed_at"]["category_popularity"] == iso(T1)
    assert phone["status"]["category_popularity"] == "stale"  # 2 h old, TTL 30 m
    assert phone["versions"]["category_popularity"] == 1
    nothing = get(client, reader, "category_code", "no.such.category")
    assert nothing["values"]["category_popularity"] == 0  # COUNT of an empty window

    buyers = counts(frame, T1, "purchase", "user_id")
    buyer = max(buyers, key=lambda u: buyers[u])
    user = client.get(f"/features/shop/users/{buyer}", headers=reader).json()
    assert user["values"]["purchase_frequency"] == buyers[buyer]
    assert "purchase_frequency" not in user["status"]  # 2 h old, TTL 3 h
    batch = client.post(
        "/features/shop/users/batch",
        json={"user_ids": [buyer, "nobody"], "features": ["purchase_frequency"]},
        headers=reader,
    ).json()
    assert [r["values"] for r in batch["results"]] == [
        {"purchase_frequency": buyers[buyer]},
        {"purchase_frequency": 0},
    ]

    brands = frame[(frame.ts <= T1) & frame.brand.notna()]
    views = brands[brands.event == "view"].groupby("brand").size()
    buys = brands[brands.event == "purchase"].groupby("brand").size()
    top = buys.idxmax()
    rate = get(
        client,
        reader,
        "brand",
        str(top),
    )["values"]["brand_conversion_rate"]
    assert rate == pytest.approx(buys[top] / views[top], rel=1e-12)

    assert run(client, app, T1 + timedelta(minutes=30))["computed"] == {}  # not due (1 h)
    write(state.port(ANALYTICS), [{**e, "project_id": "shop"} for e in EXTRA])
    second = run(client, app, T2)
    assert second["computed"]["category_popularity"] == len(popular)
    fresh = get(client, reader, "category_code", "electronics.smartphone")
    assert fresh["values"]["category_popularity"] == popular["electronics.smartphone"] + len(EXTRA)
    assert fresh["computed_at"]["category_popularity"] == iso(T2)
    assert "category_popularity" not in fresh["status"]
    assert run(client, app, T2) == second  # the same slot again: the same values
    again = get(client, reader, "category_code", "electronics.smartphone")
    assert {**again, "as_of": None} == {**fresh, "as_of": None}
    # an older slot never overwrites a newer run
    run(client, app, T1, manual=True)
    assert get(client, reader, "category_code", "electronics.smartphone")["computed_at"][
        "category_popularity"
    ] == iso(T2)

    definitions = client.get("/v1/features/definitions", headers=reader).json()["features"]
    assert {(d["name"], d["kind"], d["ttl"]) for d in definitions} >= {
        ("category_popularity", "batch", "30m")
    }

    # point in time: the run with the latest computed_at <= t, as served after that run
    at = [
        T1 - timedelta(minutes=1),
        T1,
        T1 + timedelta(minutes=30),
        T2 - timedelta(microseconds=1),
        T2,
        NOW,
    ]
    rows = [{"entity_id": "electronics.smartphone", "timestamp": iso(t)} for t in at]
    rows.append({"entity_id": "no.such.category", "timestamp": iso(T1 + timedelta(minutes=5))})
    body = {"entity_key": "category_code", "features": ["category_popularity"], "rows": rows}
    resp = client.post("/v1/features/historical", json=body, headers=reader)
    assert resp.status_code == 200, resp.text
    got = [r["category_popularity"] for r in resp.json()["rows"]]
    one, two = phone["values"]["category_popularity"], fresh["values"]["category_popularity"]
    assert got == [None, one, one, one, two, two, 0]
    assert resp.json()["versions"] == {"category_popularity": 1}
    # mixed with a real-time feature of the same entity key, for every value by default
    users = [{"entity_id": buyer, "timestamp": iso(t)} for t in (T1 - timedelta(seconds=1), T2)]
    resp = client.post(
        "/v1/features/historical", json={"rows": users, "format": "csv"}, headers=reader
    )
    assert resp.status_code == 200, resp.text
    header, early, late = csv.reader(io.StringIO(resp.text))
    assert header[-2:] == ["views_1h", "purchase_frequency"]
    assert early[-1] == ""
    assert late[-1] == str(buyers[buyer])


def test_projects_never_see_each_others_values(app: Any, client: TestClient, keys: Keys) -> None:
    quiet(client, app)
    for project_id in ("shop", "other"):
        keys.project(project_id)
        apply_yaml(app, f"project: {{id: {project_id}, name: Shop}}\n" + PIPELINE_YAML + BATCH)
    write(app.state.dataintel.port(ANALYTICS), shifted("shop"))
    write(app.state.dataintel.port(ANALYTICS), [{**e, "project_id": "other"} for e in EXTRA])
    run(client, app, T2, "shop")
    run(client, app, T2, "other")
    other = keys.headers([Role.SERVICE], "other")
    mine = get(client, other, "category_code", "electronics.smartphone", "other")
    assert mine["values"]["category_popularity"] == len(EXTRA)
    assert (
        get(client, other, "category_code", "computers.notebook", "other")["values"][
            "category_popularity"
        ]
        == 0
    )
    shop = keys.headers([Role.SERVICE], "shop")
    assert get(client, shop, "category_code", "electronics.smartphone")["values"][
        "category_popularity"
    ] > len(EXTRA)
    denied = client.get(
        "/features/shop/entities/category_code", params={"entity_id": "x"}, headers=other
    )
    assert denied.status_code in (403, 404)
    analyst = keys.headers([Role.ANALYST], "shop")  # no features:read
    assert (
        client.get(
            "/features/shop/entities/category_code", params={"entity_id": "x"}, headers=analyst
        ).status_code
        == 403
    )


def test_run_now_through_the_scheduler(
    app: Any, client: TestClient, keys: Keys, frame: pd.DataFrame
) -> None:
    keys.project("shop")
    apply_yaml(app, "project: {id: shop, name: Shop}\n" + PIPELINE_YAML + BATCH)
    write(app.state.dataintel.port(ANALYTICS), shifted())
    dev = keys.headers([Role.DEVELOPER], "shop")
    url = "/api/v1/projects/shop/batch-features/category_popularity/runs"
    queued = client.post(url, headers=dev)
    assert queued.status_code == 202, queued.text
    assert queued.headers["Location"] == f"/v1/jobs/runs/{queued.json()['run_id']}"
    deadline = time.monotonic() + 60
    while True:
        found = client.get(queued.headers["Location"], headers=dev).json()
        if found["status"] in ("finished", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert found["status"] == "finished", found
    popular = counts(frame, NOW, "view", "category_code")
    assert found["outcome"]["computed"] == {"category_popularity": len(popular)}
    reader = keys.headers([Role.SERVICE], "shop")
    phone = get(client, reader, "category_code", "electronics.smartphone")
    assert phone["values"]["category_popularity"] == popular["electronics.smartphone"]
    missing = client.post("/api/v1/projects/shop/batch-features/nope/runs", headers=dev)
    assert missing.status_code == 404
    analyst = keys.headers([Role.ANALYST], "shop")
    assert client.post(url, headers=analyst).status_code == 403
