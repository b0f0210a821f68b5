"""What the runtime (ingest validation, feature computation) reads: the deployed config.

One service method, ``ActiveConfigCache.get``, with a per-process cache. A deploy or rollback
in this process invalidates it at once; other replicas pick the change up within
``config_cache_ttl_seconds`` (they also re-check the project's active version cheaply).
While the metadata store is away, the last config read is used (ADR 0017).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from dataintel.api.ports import Port
from dataintel.config.deployments.snapshot_repository import active_snapshot
from dataintel.model.snapshot import ConfigSnapshot
from dataintel.storage.metadata.outages import METADATA_OUTAGES


@dataclass(frozen=True, slots=True)
class ActiveConfig:
    project_id: str
    version: int | None  # None: nothing deployed yet
    snapshot: ConfigSnapshot
    pipeline_active: dict[str, bool]

    def accepts(self, pipeline_id: str) -> bool:
        """Deployed and not switched off. A pipeline deleted from the draft but still
        deployed keeps accepting events until the deploy that removes it."""
        return self.snapshot.pipeline(pipeline_id) is not None and self.pipeline_active.get(
            pipeline_id, True
        )


class ActiveConfigCache:
    def __init__(self, sessions: sessionmaker[Session], ttl_seconds: float) -> None:
        self._sessions = sessions
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, ActiveConfig]] = {}

    def get(self, project_id: str) -> ActiveConfig:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(project_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        try:
            config = self._load(project_id)
        except METADATA_OUTAGES:
            if hit is None:
                raise
            return hit[1]  # the store is away: the last deployed config read (ADR 0017)
        with self._lock:
            self._entries[project_id] = (now, config)
        return config

    async def aget(self, project_id: str) -> ActiveConfig:
        """``get`` for the event loop: a fresh entry costs nothing, a reload runs in a thread
        (the hot ingest path must not wait on the metadata store in the loop)."""
        with self._lock:
            hit = self._entries.get(project_id)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        return await asyncio.to_thread(self.get, project_id)

    def invalidate(self, project_id: str | None = None) -> None:
        with self._lock:
            if project_id is None:
                self._entries.clear()
            else:
                self._entries.pop(project_id, None)

    def _load(self, project_id: str) -> ActiveConfig:
        with self._sessions() as session:
            version, snapshot, active = active_snapshot(session, project_id)
        return ActiveConfig(project_id, version, snapshot, active)


CONFIGS: Port[ActiveConfigCache] = Port("configs", "the deployed config is not readable here")
