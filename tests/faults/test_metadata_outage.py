"""PostgreSQL (the metadata store) goes away behind a TCP proxy: serving keeps answering
(credentials and deployed config are cached); ingest accepts while its copy of the GDPR
suppression list is fresh (``gdpr_suppression_refresh_seconds``) and then refuses with 503 +
Retry-After — it fails closed rather than risk storing a forgotten user's events; routes that
need the metadata store answer 503 naming it, fast, and /health/ready stays 200 (degraded),
naming it, while /health/dependencies answers 503. When it is
back, every event acknowledged meanwhile is applied, once."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.main import create_app
from tests.faults.events import cart_adds, open_shop
from tests.faults.proxy import proxy_to


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_ingest_and_serving_ride_out_a_metadata_outage(
    make_settings: Any, metadata_url: str
) -> None:
    with proxy_to("127.0.0.1", 5432) as proxy:
        url = metadata_url.replace("127.0.0.1:5432", proxy.address)
        settings = make_settings(metadata_url=url, breaker_threshold=3, breaker_reset_seconds=1.0)
        app = create_app(settings)
        with TestClient(app, raise_server_exceptions=False) as client:
            keys = open_shop(app)
            ingest = keys.headers(["ingest"], "shop")
            service = keys.headers(["service"], "shop")
            admin = keys.headers(["admin"], "shop")
            path = "/ingest/shop/web/batch"
            assert client.post(path + "?wait=processed", json=cart_adds(1), headers=ingest).json()[
                "processed"
            ]
            features = "/features/shop/users/ada"
            assert client.get(features, headers=service).json()["values"]["carts_1h"] == 1

            proxy.down()
            acked = refused = 0
            for _ in range(6):
                started = time.monotonic()
                sent = client.post(path, json=cart_adds(1), headers=ingest)
                if sent.status_code == 200:
                    acked += 1  # acknowledged into the event log
                else:
                    assert sent.status_code == 503, sent.text
                    assert sent.headers["retry-after"] == "1"
                    refused += 1
                served = client.get(features, headers=service)
                assert served.status_code == 200, served.text
                overview = client.get("/v1/analytics/overview", headers=admin)
                assert overview.status_code == 503, overview.text
                assert "metadata" in overview.json()["detail"]
                assert time.monotonic() - started < 2.0
                time.sleep(0.3)
            assert refused, "ingest must refuse once its suppression list is stale"
            ready = client.get("/health/ready")  # degraded is ready: it still serves
            assert ready.status_code == 200
            assert ready.json()["status"] == "degraded"
            assert "metadata" in ready.json()["failures"]
            assert client.get("/health/dependencies").status_code == 503

            proxy.up()
            time.sleep(1.1)  # the breaker's reset time
            done = client.post(path + "?wait=processed", json=cart_adds(1), headers=ingest)
            assert done.json()["processed"] is True, done.text
            served = client.get(features, headers=service).json()["values"]["carts_1h"]
            assert served == 1 + acked + 1  # each acknowledged event applied once
            assert client.get("/health/dependencies").status_code == 200
