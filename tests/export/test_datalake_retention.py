"""Retention in the data lake (expire_events): whole expired hours are dropped, mixed files
rewritten without their expired rows, later hours and other projects untouched, and the
expired rows' bytes leave the lake's directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from dataintel.export.datalake.committed import committed_files, markers
from dataintel.export.datalake.expire import expire_events
from dataintel.export.datalake.writer import write_batch
from dataintel.model.retention import EventCutoffs
from dataintel.storage.blob.local import LocalBlobStore
from dataintel.storage.eventlog.port import LogEntry
from dataintel.storage.records import encode
from tests.export.lake_kit import T0, lake_ids, stored

START = datetime.fromtimestamp(T0 / 1e6, UTC)  # 08:00; events at 08, 09 and 10 h
MARKER = "expired-lake-marker-31d9"


def fill(lake: LocalBlobStore) -> None:
    """60 events of shop (views at even offsets, cart_adds at odd), 30 of other."""
    rows = []
    for o in range(60):
        event = stored(o, hour=o % 3)
        event["event"] = "view" if o % 2 == 0 else "cart_add"
        event["properties"] = {"note": MARKER if event["event"] == "view" else "kept"}
        rows.append(LogEntry(0, o, encode(event)))
    write_batch(lake, 0, rows)
    write_batch(lake, 1, [LogEntry(1, o, encode(stored(o, "other", o % 3))) for o in range(30)])


def test_mixed_files_are_rewritten_and_later_hours_untouched(tmp_path: Path) -> None:
    lake = LocalBlobStore(tmp_path / "lake")
    fill(lake)
    before = {f.hour: f.key for f in committed_files(lake, "shop")}
    cutoffs = EventCutoffs({"cart_add": None}, START + timedelta(hours=2))
    assert expire_events(lake, "shop", cutoffs) == 2  # hours 08 and 09
    ids = lake_ids(lake, "shop")
    expired = {f"e{o}" for o in range(60) if o % 2 == 0 and o % 3 < 2}
    assert set(ids) == {f"e{o}" for o in range(60)} - expired
    after = {f.hour: f.key for f in committed_files(lake, "shop")}
    assert after["2026-12-07T10"] == before["2026-12-07T10"]  # not touched
    assert ".r1." in after["2026-12-07T08"]
    assert sum(lake_ids(lake, "other").values()) == 30
    assert expire_events(lake, "shop", cutoffs) == 0
    holding = {
        p.relative_to(tmp_path / "lake").as_posix()
        for p in (tmp_path / "lake").rglob("*")
        if p.is_file() and MARKER.encode() in p.read_bytes()
    }
    assert holding == {after["2026-12-07T10"]}  # the views of hour 10 only


def test_whole_expired_hours_are_dropped(tmp_path: Path) -> None:
    lake = LocalBlobStore(tmp_path / "lake")
    fill(lake)
    assert expire_events(lake, "shop", EventCutoffs({}, START + timedelta(hours=1))) == 1
    assert sorted(f.hour for f in committed_files(lake, "shop")) == [
        "2026-12-07T09",
        "2026-12-07T10",
    ]
    assert len(markers(lake)) == 2
    assert expire_events(lake, "shop", EventCutoffs({"view": None})) == 0
