"""Ingest counters: aggregated in memory per request, flushed to the metadata store in bulk.

A request adds its per-event-name counts under one lock (no I/O); a background thread
upserts everything pending once per ``interval_s`` in one transaction. So the counters cost
no metadata write per request (a SQLite fsync per request would cap single-event ingest far
below 1,000 req/s) and ``GET /v1/events/stats`` is at most about one interval behind. A
failed flush keeps its counts for the next one; ``stop()`` flushes what is left.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dataintel.ingest import repository

log = structlog.get_logger("dataintel.ingest.stats")

HOUR_US = 3_600_000_000
ACCEPTED, DUPLICATE, REJECTED, SUPPRESSED = 0, 1, 2, 3
SLOTS = 4
# (project_id, pipeline_id, start of the hour of arrival in UTC µs, event name)
Key = tuple[str, str, int, str]
# event name -> [accepted, duplicate, rejected, suppressed]
EventCounts = dict[str, list[int]]


class IngestStats:
    def __init__(self, sessions: sessionmaker[Session], interval_s: float = 1.0) -> None:
        self._sessions = sessions
        self._interval = interval_s
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: dict[Key, list[int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(
        self, project_id: str, pipeline_id: str, received_us: int, counts: EventCounts
    ) -> None:
        """Add one request's counts (arrival time ``received_us``)."""
        hour = received_us - received_us % HOUR_US
        with self._lock:
            pending = self._pending
            for event, slots in counts.items():
                key = (project_id, pipeline_id, hour, event)
                total = pending.get(key)
                if total is None:
                    pending[key] = list(slots)
                else:
                    for i, n in enumerate(slots):
                        total[i] += n

    def flush(self) -> int:
        """Write the pending counts; the number of counter rows written."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
            if not batch:
                return 0
            try:
                with self._sessions.begin() as session:
                    repository.add_counts(session, [_row(k, v) for k, v in batch.items()])
            except IntegrityError:  # e.g. a project deleted meanwhile: retrying cannot help
                log.warning("ingest stats dropped: they no longer fit the store", rows=len(batch))
                return 0
            except Exception:
                self._restore(batch)
                raise
            return len(batch)

    def _restore(self, batch: dict[Key, list[int]]) -> None:
        with self._lock:
            for key, slots in batch.items():
                total = self._pending.setdefault(key, [0] * SLOTS)
                for i, n in enumerate(slots):
                    total[i] += n

    def start(self) -> None:
        """Flush every interval in a daemon thread (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ingest-stats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and flush what is pending."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()
        self._safe_flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._safe_flush()

    def _safe_flush(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001 - kept for the next flush; the thread lives on
            log.warning("ingest stats flush failed", error=str(exc)[:500])


def _row(key: Key, counts: list[int]) -> dict[str, Any]:
    project_id, pipeline_id, hour_us, event = key
    return {
        "project_id": project_id,
        "pipeline_id": pipeline_id,
        "hour": datetime.fromtimestamp(hour_us // 1_000_000, UTC),
        "event": event,
        "accepted": counts[ACCEPTED],
        "duplicate": counts[DUPLICATE],
        "rejected": counts[REJECTED],
        "suppressed": counts[SUPPRESSED],
    }
