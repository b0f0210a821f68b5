"""A forget request with the data lake on (moto's S3 server): the lake's files are
rewritten without the subject, every other row stays, and the lake is erased before the
log's entries become tombstones (which its export would skip)."""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc
import pytest

from dataintel.export.datalake.committed import read_events
from dataintel.settings import Settings
from dataintel.storage.blob.registry import open_blob
from tests.gdpr.conftest import Shop, busiest_users
from tests.s3_server import ACCESS_KEY, SECRET_KEY, S3Server


@pytest.fixture
def lake_url(s3_server: S3Server) -> str:
    return s3_server.url(s3_server.bucket())


@pytest.fixture
def settings(make_settings: Any, lake_url: str) -> Settings:
    return make_settings(
        datalake_url=lake_url,
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY,
        datalake_flush_seconds=0.2,
        gdpr_suppression_refresh_seconds=0.2,
    )


def test_forget_rewrites_the_data_lake_without_the_user(shop: Shop, settings: Settings) -> None:
    user = busiest_users(shop.events, 1)[0]
    mine = [e for e in shop.events if e["user_id"] == user]
    created = shop.forget(user)
    assert [s["store"] for s in created["stores"]][:3] == ["suppression", "data_lake", "event_log"]
    done = shop.wait(created["request_id"])
    assert done["status"] == "finished", done
    erased = {s["store"]: s["erased"] for s in done["stores"]}
    assert erased["data_lake"] >= 1
    assert erased["event_log"] == len(mine)

    store = open_blob(settings.datalake_url or "", access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    try:
        lake = read_events(store, "shop")
    finally:
        store.close()
    ids = set(lake.column("event_id").to_pylist())
    assert ids == {e["event_id"] for e in shop.events} - {e["event_id"] for e in mine}
    assert not pc.any(pc.equal(lake.column("user_id"), user)).as_py()
