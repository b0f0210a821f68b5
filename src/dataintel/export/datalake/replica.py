"""A read-only AnalyticsStore for API replicas: DuckDB in this process over the data lake.

In scale-out mode the worker owns the analytics store and writes the Parquet data lake
(``DATAINTEL_DATALAKE_URL``, S3-compatible). An API replica with
``DATAINTEL_ANALYTICS_URL=datalake://[?refresh_seconds=5]`` answers analytics from its own
in-memory DuckDB, loaded from the lake's committed files (through the commit markers, as
every reader must): no query server of our own, no shared engine file, any number of
replicas. The same SQL runs as on the embedded default (the DuckDB adapter's queries).

Freshness: an event is visible here once the worker's micro-batch that holds it is committed
(``DATAINTEL_DATALAKE_FLUSH_SECONDS``) and this replica has looked again (at most every
``refresh_seconds``, on the next read). An erasure or retention rewrite (a marker that no
longer lists a file) reloads the whole lake. What the lake does not hold is not here:
batch feature values (their table is empty) and each row's exact log offset (a row carries
the first offset of its micro-batch). Writes raise: the worker writes.

A look re-reads only the commit markers that are new or were replaced since the last one
(the listing's size and time say which). The lake unreachable (or slow): a read waits
``LOOK_WAIT_SECONDS`` at most for a look, then answers from what is loaded, and
``staleness()`` says how old that is (the analytics routes answer ``X-Stale: true`` with
``Age``); the next look is tried ``refresh_seconds`` later; the first that succeeds catches up.
A replica that starts while the lake is unreachable starts all the same (ingest and serving
do not need the lake): until its first look succeeds it has nothing to answer from, so its
reads fail as an outage (503 naming ``analytics``, or the analytics cache's last answer
marked stale), and every read after ``refresh_seconds`` tries again.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import structlog

from dataintel.export.datalake.committed import read_file
from dataintel.export.datalake.layout import MARKERS, DataFile, Marker
from dataintel.model.retention import EventCutoffs
from dataintel.model.subject import Subject
from dataintel.storage.analytics.duckdb import DuckDBAnalytics
from dataintel.storage.analytics.port import (
    ApplyResult,
    BatchRun,
    EventCount,
    EventQuery,
)
from dataintel.storage.blob.port import BlobNotFound, BlobStore
from dataintel.storage.eventlog.port import LogEntry

_LOAD = """
INSERT INTO events
SELECT $project_id, pipeline_id, pipeline_version, event_id, event,
       "timestamp"::TIMESTAMP, received_at::TIMESTAMP, user_id, cart_id, session_id,
       properties::JSON, $partition, $first_offset
FROM _file
ON CONFLICT DO NOTHING
"""
LOOK_WAIT_SECONDS = 1.0  # a read waits this long at most for a look at the lake
log = structlog.get_logger(__name__)


class ReadOnlyReplica(RuntimeError):
    pass


class DataLakeReplica(DuckDBAnalytics):
    """DuckDB in memory, kept equal to the lake's committed files."""

    positions_in_memory = False  # a read may first reload from the lake

    def __init__(self, lake: BlobStore, refresh_seconds: float = 5.0) -> None:
        super().__init__(":memory:")
        self._lake = lake
        self._refresh_seconds = refresh_seconds
        self._refresh_lock = threading.Lock()  # held by the one look at a time
        self._checked_at = float("-inf")  # the last look's start (monotonic)
        self._current_at = time.monotonic()  # the last complete look's start
        self._behind = False  # the last look failed, or runs past LOOK_WAIT_SECONDS
        self._markers: dict[str, tuple[str, Marker]] = {}  # key: (listing version, marker)
        self._loaded: set[str] = set()
        self._lake_positions: dict[int, int] = {}
        self._signature = 0
        self._ever_loaded = False  # a look has succeeded since this replica started
        try:
            self.refresh(force=True)
        except Exception as exc:  # noqa: BLE001 - whatever stops the first look, start anyway
            self._behind = True
            self._checked_at = time.monotonic()
            log.warning("datalake_unreachable_at_start", error=str(exc))

    # -- keeping up with the lake -----------------------------------------------------------

    def refresh(self, force: bool = False) -> None:
        """Load the files committed since the last look (at most every refresh_seconds),
        waiting LOOK_WAIT_SECONDS at most (see the module doc). ``force``: look now, wait
        for it, raise what it raises."""
        if force:
            with self._refresh_lock:
                self._look()
            return
        if time.monotonic() - self._checked_at < self._refresh_seconds:
            self._ensure_loaded()
            return
        if not self._refresh_lock.acquire(blocking=False):
            self._ensure_loaded()
            return  # another read is looking: answer from what is loaded
        look = threading.Thread(target=self._look_then_release, name="datalake-look", daemon=True)
        look.start()
        look.join(LOOK_WAIT_SECONDS)
        if look.is_alive():
            self._behind = True
        self._ensure_loaded()

    def _ensure_loaded(self) -> None:
        """Reads of a replica that never read the lake fail as an outage (nothing to answer
        from, not even stale data)."""
        if not self._ever_loaded:
            raise ConnectionError(
                "the data lake has not been read since this replica started (unreachable); "
                f"the next look is within {self._refresh_seconds:g} s"
            )

    def staleness(self) -> int | None:
        """Seconds since the last complete look, while the lake cannot be read (None:
        current)."""
        if not self._behind:
            return None
        return max(0, round(time.monotonic() - self._current_at))

    def _look_then_release(self) -> None:
        try:
            self._look()
        except Exception as exc:  # noqa: BLE001 - whatever stops a look, answer from memory
            self._behind = True
            self._checked_at = time.monotonic()  # try again refresh_seconds later
            log.warning("datalake_unreachable", error=str(exc), stale_s=self.staleness())
        finally:
            self._refresh_lock.release()

    def _look(self) -> None:
        started = time.monotonic()
        committed = self._committed()
        files = {f.key: (f, m) for m in committed for f in m.files}
        if not self._loaded <= files.keys():  # a file was rewritten or expired
            self._clear()
        for key in sorted(files.keys() - self._loaded):
            self._load(*files[key])
            self._loaded.add(key)
        positions: dict[int, int] = {}
        for m in committed:
            positions[m.partition] = max(positions.get(m.partition, 0), m.last_offset + 1)
        self._lake_positions = positions
        listing = "\n".join(sorted(files)).encode()
        self._signature = int.from_bytes(hashlib.sha256(listing).digest()[:7], "big")
        self._checked_at = self._current_at = started
        self._behind = False
        self._ever_loaded = True

    def _committed(self) -> list[Marker]:
        """The commit markers, reading again only those new or replaced since the last look
        (committed.markers reads every one: too slow per look once there are thousands)."""
        found: dict[str, tuple[str, Marker]] = {}
        for key, version in self._lake.list_versions(MARKERS).items():
            known = self._markers.get(key)
            if known is not None and known[0] == version:
                found[key] = known
            elif key.endswith(".json"):
                try:
                    found[key] = (version, Marker.from_json(self._lake.get(key)))
                except BlobNotFound:  # deleted between the listing and the read
                    continue
        self._markers = found
        return sorted((m for _, m in found.values()), key=lambda m: (m.partition, m.first_offset))

    def _clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM events")
        self._loaded.clear()

    def _load(self, file: DataFile, marker: Marker) -> None:
        table = read_file(self._lake, file.key)
        table = table.set_column(
            table.schema.get_field_index("properties"),
            "properties",
            pc.fill_null(table.column("properties"), "{}"),
        )
        with self._lock:
            self._db.register("_file", table)
            try:
                self._db.execute(
                    _LOAD,
                    {
                        "project_id": file.project_id,
                        "partition": marker.partition,
                        "first_offset": marker.first_offset,
                    },
                )
            finally:
                self._db.unregister("_file")

    # -- reads: refresh first -----------------------------------------------------------------

    def positions(self) -> dict[int, int]:
        self.refresh()
        return dict(self._lake_positions)

    def erasures(self) -> int:
        """Not a count here: a digest of the committed files' keys. The analytics cache keys
        answers by it and the positions, shared by every replica through Redis: a rewrite
        (erasure, retention) keeps the positions but changes the keys, so no replica is
        handed an answer computed before it."""
        self.refresh()
        return self._signature

    def scan_events(self, query: EventQuery) -> Iterator[pa.RecordBatch]:
        self.refresh()
        yield from super().scan_events(query)

    def count_events(self, project_id: str, since: datetime | None = None) -> list[EventCount]:
        self.refresh()
        return super().count_events(project_id, since)

    def sql(self, query: str, params: Sequence[object] = ()) -> pa.Table:
        self.refresh()
        return super().sql(query, params)

    def sql_batches(
        self,
        query: str,
        params: Sequence[object] = (),
        tables: Mapping[str, pa.Table] | None = None,
        batch_rows: int = 10_000,
    ) -> Iterator[pa.RecordBatch]:
        self.refresh()
        yield from super().sql_batches(query, params, tables, batch_rows)

    def ping(self) -> None:
        self._lake.list("_committed/partition=0/")  # the lake answers
        super().ping()

    # -- writes: the worker's ---------------------------------------------------------------

    def apply(self, entries: Sequence[LogEntry]) -> ApplyResult:  # noqa: ARG002
        raise ReadOnlyReplica("a data lake replica is read-only: the worker applies events")

    def write_batch_values(self, run: BatchRun) -> None:  # noqa: ARG002
        raise ReadOnlyReplica("a data lake replica is read-only: the worker writes batches")

    def erase(self, subject: Subject) -> int:  # noqa: ARG002
        raise ReadOnlyReplica("a data lake replica is read-only: the worker erases")

    def delete_events_before(self, project_id: str, cutoffs: EventCutoffs) -> int:  # noqa: ARG002
        raise ReadOnlyReplica("a data lake replica is read-only: the worker applies retention")
