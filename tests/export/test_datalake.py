"""The data lake on a real S3 API (moto's server): files per (project, hour) committed by
markers, the continuous export resuming from its markers and sweeping uncommitted files,
fencing, and erase_subject."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from dataintel.export.datalake.committed import committed_files, markers, next_offsets
from dataintel.export.datalake.erase import erase_subject
from dataintel.export.datalake.exporter import DataLakeExport, Fenced
from dataintel.export.datalake.layout import file_key, parse_file
from dataintel.export.datalake.writer import parquet_bytes, split_by_project_hour, write_batch
from dataintel.export.service import EXPORT_SCHEMA
from dataintel.storage.blob.s3 import S3BlobStore
from dataintel.storage.eventlog.sqlite import SqliteEventLog
from tests.export.lake_kit import committed_rows, entries, items, lake_ids
from tests.s3_server import S3Server


@pytest.fixture
def lake(s3_server: S3Server) -> S3BlobStore:
    return s3_server.store()


def test_files_are_hive_partitioned_by_project_and_hour(lake: S3BlobStore) -> None:
    write_batch(lake, 0, entries(0, range(0, 30)))
    write_batch(lake, 0, entries(0, range(30, 45), project_id="other"))
    write_batch(lake, 1, entries(1, range(0, 12)))
    keys = [f.key for f in committed_files(lake)]
    assert (
        "events/project_id=shop/hour=2026-12-07T08/part-p0-"
        + "0" * 20
        + "-"
        + ("0" * 18 + "29.parquet")
        in keys
    )
    assert {k.split("/")[2] for k in keys} == {f"hour=2026-12-07T{h}" for h in ("08", "09", "10")}
    assert len(keys) == 9
    assert committed_rows(lake) == 57
    assert next_offsets(lake, {0, 1, 2}) == {0: 45, 1: 12, 2: 0}
    # What Spark / DuckDB / Athena do: read the listed files, project and hour from the path.
    dataset = ds.dataset(
        [f"{lake.root}/{k}" for k in keys],
        filesystem=lake.fs,
        format="parquet",
        partitioning="hive",
        partition_base_dir=f"{lake.root}/events",
    )
    table = dataset.to_table()
    assert table.num_rows == 57
    assert set(table.schema.names) == {*EXPORT_SCHEMA.names, "project_id", "hour"}
    assert pc.sum(pc.equal(table.column("project_id"), "other")).as_py() == 15
    assert sum(lake_ids(lake, "shop").values()) == 42


def test_a_batch_overlapping_a_commit_is_fenced(lake: S3BlobStore) -> None:
    write_batch(lake, 0, entries(0, range(0, 10)))
    export = DataLakeExport.__new__(DataLakeExport)
    export.store = lake
    with pytest.raises(Fenced):
        export._commit(0, entries(0, range(5, 20)))


async def _export_all(log: SqliteEventLog, lake: S3BlobStore) -> DataLakeExport:
    export = DataLakeExport(log, lake, batch_events=300, flush_seconds=0.05)
    export.start()
    ends = await log.end_offsets()
    deadline = time.monotonic() + 20
    while await asyncio.to_thread(next_offsets, lake, set(ends)) != ends:
        assert time.monotonic() < deadline, "the export did not catch up"
        await asyncio.sleep(0.05)
    await export.stop()
    return export


@pytest.mark.anyio
async def test_the_export_resumes_from_its_markers_and_sweeps_uncommitted_files(
    lake: S3BlobStore, tmp_path: Path
) -> None:
    log = SqliteEventLog.from_url(f"sqlite:///{tmp_path}/log.db?partitions=2", 3600)
    await log.start()
    try:
        await log.append(items(700))
        first = await _export_all(log, lake)
        assert first.files_written >= 6
        ends = await log.end_offsets()
        # A life killed after PUTting the files of its next batch, before the marker:
        table = split_by_project_hour(entries(0, range(ends[0], ends[0] + 50)))
        orphan = file_key("shop", "2026-12-07T08", 0, ends[0], ends[0] + 49)
        lake.put(orphan, parquet_bytes(next(iter(table.values()))))
        await log.append(items(1000)[700:])
        await _export_all(log, lake)
        assert not lake.exists(orphan)
    finally:
        await log.close()
    seen = lake_ids(lake, "shop") + lake_ids(lake, "other")
    assert len(seen) == 1000
    assert set(seen.values()) == {1}
    listed = {f.key for f in committed_files(lake)}
    assert {k for k in lake.list("events/") if parse_file(k)} == listed


def test_erase_subject_rewrites_the_files_holding_the_subject(lake: S3BlobStore) -> None:
    write_batch(lake, 0, entries(0, range(0, 60)))
    write_batch(lake, 1, entries(1, range(0, 40), project_id="other"))
    before = {f.key: f for f in committed_files(lake)}
    # What a rewrite killed before its marker swap leaves: an unlisted file of a committed range.
    leftover = next(iter(before)).replace(".parquet", ".r7.parquet")
    lake.put(leftover, b"half")
    rewritten = erase_subject(lake, "shop", {"u1"}, {"c3"})
    assert not lake.exists(leftover)
    after = committed_files(lake)
    shop = [f for f in before.values() if f.project_id == "shop"]
    assert rewritten == len(shop)  # every hour of shop holds u1 or c3
    events = lake_ids(lake, "shop")
    gone = {f"e{i}" for i in range(60) if i % 5 == 1 or i % 7 == 3}
    assert set(events) == {f"e{i}" for i in range(60)} - gone
    assert sum(lake_ids(lake, "other").values()) == 40  # another project's u1 stays
    assert all(not lake.exists(k) for k in before if before[k].project_id == "shop")
    assert all(".r1." in f.key for f in after if f.project_id == "shop")
    assert sum(f.rows for f in after) == 100 - len(gone)
    assert [m.first_offset for m in markers(lake)] == [0, 0]
    assert erase_subject(lake, "shop", {"u1"}, {"c3"}) == 0
    assert erase_subject(lake, "shop", {"u2"}, set()) == 3
    assert all(".r2." in f.key for f in committed_files(lake, "shop"))
