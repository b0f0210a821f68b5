"""Suppression at ingest: events of a user suppressed by a GDPR request are dropped (and
counted as ``suppressed``), never appended to the log.

Each API process keeps, per project, the set of suppressed subject hashes and reloads it
when it is older than ``refresh_s``; a forget request waits twice that before it reads the
log's end, so nothing of the subject slips in behind it. A project with no suppressed user
costs one set lookup per request; otherwise each accepted event's user id is hashed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import orjson
from sqlalchemy.orm import Session, sessionmaker

from dataintel.model.subject import subject_hash
from dataintel.storage.eventlog.port import AppendItem
from dataintel.storage.metadata.gdpr_repository import installation_secret, suppressed


class Suppressions:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        refresh_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._secret: bytes | None = None
        self._sets: dict[str, tuple[float, frozenset[str]]] = {}

    async def of(self, project_id: str) -> frozenset[str]:
        """The project's suppressed subject hashes (reloaded when stale)."""
        cached = self._sets.get(project_id)
        if cached is not None and self._clock() - cached[0] < self._refresh_s:
            return cached[1]
        return await anyio.to_thread.run_sync(self._load, project_id)

    def _load(self, project_id: str) -> frozenset[str]:
        with self._sessions() as session:
            hashes = suppressed(session, project_id)
        if hashes and self._secret is None:
            self._secret = installation_secret(self._sessions)
        with self._lock:
            self._sets[project_id] = (self._clock(), hashes)
        return hashes

    def forget(self, project_id: str) -> None:
        """Drop the cached set (this process changed it)."""
        self._sets.pop(project_id, None)

    def suppressed_items(
        self, project_id: str, hashes: frozenset[str], items: list[AppendItem]
    ) -> list[bool]:
        """Per item: whether its user is suppressed."""
        key = self._secret
        if not hashes or key is None:
            return [False] * len(items)
        flags = []
        for item in items:
            user = orjson.loads(item.value).get("user_id")
            flags.append(isinstance(user, str) and subject_hash(key, project_id, user) in hashes)
        return flags

    def names_suppressed(
        self, project_id: str, hashes: frozenset[str], dead_letter: dict[str, Any]
    ) -> bool:
        """Whether a dead letter's payload is of a suppressed user."""
        payload = dead_letter.get("payload")
        user = payload.get("user_id") if isinstance(payload, dict) else None
        key = self._secret
        if not isinstance(user, str) or key is None:
            return False
        return subject_hash(key, project_id, user) in hashes
