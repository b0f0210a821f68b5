"""The online/offline consistency monitor (the ``quality.consistency`` job): the service's
own proof that the features it serves are right.

Each run takes, per entity key of the project's enabled features, the ``sample`` entities
with the most recent events (where a processing fault shows first), reads their vectors
from the feature server (what the AI engine gets, evaluated at the server's ``as_of``) and
recomputes the same features by SQL in the analytics store at that same instant
(features/offline: the same window formula, DESIGN.md §3). Any value that differs, and is
not still ``building``, is a mismatch; a run with mismatches opens a ``consistency`` alert
(``consistency:<entity key>``), a clean one clears it. The alert names features and
counts, never entity ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from dataintel.features.offline.compute import compute_offline
from dataintel.features.serving.service import FeatureServer
from dataintel.model.snapshot import ConfigSnapshot, FeatureSpec
from dataintel.quality import alerts
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.sql_terms import Params, text_field

ENVELOPE_KEYS = frozenset({"user_id", "cart_id", "session_id"})


def same(a: Any, b: Any) -> bool:
    """Equal, floats within a relative 1e-9 (the two paths sum in different orders)."""
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9)
    return bool(a == b)


class ConsistencyMonitor:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        analytics: AnalyticsStore,
        server: FeatureServer,
        snapshot_of: Callable[[str], ConfigSnapshot],
        sample: int = 20,
        between_batches: asyncio.Lock | None = None,
    ) -> None:
        """``between_batches``: the processor's lock. Both sides are read while it is held,
        so they stand at the same log position: the processor writes the analytics store and
        then the online state of a batch, and a read between the two saw the analytics side
        ahead (false mismatches while events flow)."""
        self.sessions, self.analytics, self.server = sessions, analytics, server
        self.snapshot_of, self.sample = snapshot_of, sample
        self.between_batches = between_batches

    def recent(self, project_id: str, entity_key: str, events: list[str]) -> list[str]:
        """The ``sample`` entities of ``entity_key`` with the latest events."""
        p = Params()
        column = entity_key if entity_key in ENVELOPE_KEYS else text_field(entity_key)
        query = (
            f"SELECT e, max(ts) AS m FROM (SELECT {column} AS e, ts FROM events "  # noqa: S608
            f"WHERE project_id = {p(project_id)} AND event IN "
            f"({', '.join(p(e) for e in events)})) WHERE e IS NOT NULL "
            f"GROUP BY e ORDER BY m DESC, e LIMIT {int(self.sample)}"
        )
        return [str(r["e"]) for r in self.analytics.sql(query, p.values).to_pylist()]

    async def run(self, project_id: str, slot: datetime) -> dict[str, Any]:
        snapshot = self.snapshot_of(project_id)
        features = [f for f in snapshot.features if f.enabled]
        by_key: dict[str, list[FeatureSpec]] = {}
        for f in features:
            by_key.setdefault(f.entity_key, []).append(f)
        outcome: dict[str, Any] = {"slot": slot.isoformat(), "entity_keys": {}}
        findings: list[tuple[str, dict[str, Any]]] = []
        for key, specs in sorted(by_key.items()):
            found = await self._check(project_id, snapshot, key, specs)
            outcome["entity_keys"][key] = found
            findings.append((key, found))
        await asyncio.to_thread(self._alert, project_id, findings)
        return outcome

    async def _check(
        self, project_id: str, snapshot: ConfigSnapshot, key: str, specs: list[FeatureSpec]
    ) -> dict[str, Any]:
        events = sorted({f.source_event for f in specs})
        ids = await asyncio.to_thread(self.recent, project_id, key, events)
        if not ids:
            return {"entities": 0, "compared": 0, "mismatches": 0, "features": []}
        async with self.between_batches or contextlib.nullcontext():
            names = [f.name for f in specs]
            t, vectors = await self.server.entities(project_id, key, ids, names)
            offline = await asyncio.to_thread(
                compute_offline, self.analytics, project_id, specs, key, ids, t, snapshot
            )
        compared, mismatched = 0, set()
        mismatches = 0
        for entity, served in zip(ids, vectors, strict=True):
            if served.get("stale"):  # the online store was away: a kept vector, not a reading
                continue
            for name, want in offline[entity].items():
                if served["status"].get(name) == "building" or name not in served["values"]:
                    continue
                compared += 1
                if not same(served["values"][name], want):
                    mismatches += 1
                    mismatched.add(name)
        return {
            "entities": len(ids),
            "compared": compared,
            "mismatches": mismatches,
            "features": sorted(mismatched),
        }

    def _alert(self, project_id: str, findings: list[tuple[str, dict[str, Any]]]) -> None:
        with self.sessions.begin() as session:
            for key, found in findings:
                if found["compared"] == 0:
                    continue
                alerts.observe(
                    session,
                    project_id,
                    fingerprint=f"consistency:{key}",
                    failing=found["mismatches"] > 0,
                    kind="consistency",
                    severity="critical",
                    title=f"served {key} features differ from their recomputation: "
                    f"{found['mismatches']} of {found['compared']} values",
                    detail={"entity_key": key, **found},
                    source="quality.consistency",
                )
