"""Without DATAINTEL_DATALAKE_URL a custom export to S3 is a 422 naming the destination."""

from __future__ import annotations

from tests.analytics.conftest import Platform
from tests.conftest import assert_problem


def test_s3_without_a_bucket_is_422(platform: Platform) -> None:
    shop = platform.project("shop")
    doc = {"destination": {"type": "s3", "prefix": "x"}}
    resp = platform.client.post("/v1/export/custom", json=doc, headers=shop)
    body = assert_problem(resp, 422, field="destination")
    assert "DATAINTEL_DATALAKE_URL" in body["detail"]
