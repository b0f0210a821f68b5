"""GET /v1/export/features: every entity's values as of an instant, or at each step of a
range, equal the brute-force reference (tests/features/reference.py) — the same values
training sets and the online service give; pages by cursor add up to every entity; bad
parameters are 422s naming them; the export is in the audit trail."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from tests.conftest import Keys, assert_problem
from tests.features.test_historical import USERS, Hist, close, iso, us_of

from dataintel.auth.permissions import Role
from dataintel.features.offline import export as feature_export

PATH = "/v1/export/features"


@pytest.fixture
def hist(app: Any, client: TestClient, keys: Keys) -> Hist:
    world = Hist(app, client, keys)
    world.send()
    return world


def check(hist: Hist, rows: list[dict[str, Any]], key: str = "user_id", every: bool = True) -> None:
    """Each row's values equal the reference (every value of the key, or a subset)."""
    for row in rows:
        want = hist.expected(str(row["entity_id"]), us_of(str(row["timestamp"])), key)
        names = set(row) - {"entity_id", "timestamp"}
        assert names == set(want) if every else names < set(want)
        for name in names:
            assert close(row[name], want[name]), (row, name, want[name])


def test_every_entity_as_of_an_instant(hist: Hist) -> None:
    t = sorted(e["ts"] for e in hist.events)[60]
    resp = hist.client.get(PATH, params={"as_of": iso(t)}, headers=hist.service)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    seen = sorted({e["user_id"] for e in hist.events if e["ts"] < t + 1})
    assert [r["entity_id"] for r in body["rows"]] == seen
    assert {us_of(r["timestamp"]) for r in body["rows"]} == {t}
    check(hist, body["rows"])


def test_a_history_at_a_step_in_every_format_and_by_pages(
    hist: Hist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feature_export, "CHUNK_ENTITIES", 2)  # several chunks per page
    times = sorted(e["ts"] for e in hist.events)
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=times[10])
    params = {
        "from": start.isoformat(),
        "to": (start + timedelta(days=2)).isoformat(),
        "step": "6h",
        "feature": ["adds", "spend", "skus", "last_sku", "last_gift"],
    }
    whole = hist.client.get(PATH, params=params, headers=hist.service).json()
    assert len(whole["rows"]) == len(USERS) * 8
    assert [r["entity_id"] for r in whole["rows"][:8]] == [USERS[0]] * 8
    check(hist, whole["rows"], every=False)

    parquet = hist.client.get(PATH, params={**params, "format": "parquet"}, headers=hist.service)
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == len(whole["rows"])
    assert table.column("adds_1h").to_pylist() == [r["adds_1h"] for r in whole["rows"]]
    csv = hist.client.get(PATH, params={**params, "format": "csv"}, headers=hist.service)
    assert csv.text.count("\n") == len(whole["rows"]) + 1

    pages, cursor = [], None
    while True:
        page = hist.client.get(
            PATH,
            params={**params, "limit": 3, **({"cursor": cursor} if cursor else {})},
            headers=hist.service,
        )
        assert page.status_code == 200, page.text
        pages += page.json()["rows"]
        cursor = page.headers.get("x-next-cursor")
        if cursor is None:
            break
    assert len(pages) == len(whole["rows"])
    for got, want in zip(pages, whole["rows"], strict=True):  # a float sum may differ in
        assert got.keys() == want.keys()  # its last bit with the chunk it was summed in
        assert all(close(got[k], want[k]) for k in want), (got, want)

    carts = hist.client.get(
        PATH,
        params={
            "entity_key": "cart_id",
            "entity_id": ["c1", "c0", "ghost"],
            "as_of": iso(times[-1] + 1),
        },
        headers=hist.service,
    ).json()
    assert [r["entity_id"] for r in carts["rows"]] == ["c0", "c1", "ghost"]
    check(hist, carts["rows"], "cart_id")

    from tests.audit.test_audit_trail import trail

    officer = Keys(hist.app).headers([Role.COMPLIANCE], "hist")
    acts = [e for e in trail(hist.client, officer) if e["action"] == "export_features"]
    assert acts[0]["detail"]["rows"] == len(whole["rows"])
    assert acts[0]["detail"]["instants"] == 8


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"feature": ["nope"]}, "feature"),
        ({"entity_key": "nope"}, "entity_key"),
        ({"step": "1h"}, "from"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z", "step": "1h"}, "to"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z", "step": "30s"}, "step"),
        ({"as_of": "2026-01-01T00:00:00Z", "step": "1h"}, "as_of"),
        ({"limit": 0}, "limit"),
    ],
)
def test_bad_parameters_are_422_naming_them(
    hist: Hist, params: dict[str, object], field: str
) -> None:
    assert_problem(hist.client.get(PATH, params=params, headers=hist.service), 422, field=field)


def test_roles_and_tenants(hist: Hist) -> None:
    keys = Keys(hist.app)
    assert_problem(hist.client.get(PATH, headers=keys.headers([Role.ANALYST], "hist")), 403)
    keys.project("other")
    other = keys.headers([Role.SERVICE], "other")
    assert_problem(hist.client.get(PATH, params={"project_id": "hist"}, headers=other), 404)
