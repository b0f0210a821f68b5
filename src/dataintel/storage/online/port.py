"""The OnlineStore port: per-entity feature state (tiles) for millisecond reads.

Exactly once (DESIGN.md §3): every entity records, per log partition, the offset of the
last entry it has applied. ``apply`` gets one ``EntityUpdate`` per (entity, partition) of a
micro-batch, covering offsets ``first_offset..last_offset`` of that partition, and for each
it atomically (one SQLite transaction / one Lua script)

- applies it and records ``last_offset`` when the stored offset is below ``first_offset``;
- skips it when the stored offset is at or past ``last_offset`` (a replay);
- otherwise applies nothing and reports a *conflict* with the stored offset: a replay whose
  batch boundaries differ from the first run's. The caller recomputes that update from the
  entries after the stored offset and applies again.

The state of one feature version of one entity is one blob (``dataintel.model.tiles``),
stored in one hash field named ``<feature>@<version>``; an entity is one hash (Redis: one key
with a hash tag, so Cluster-safe) that expires after ``ttl`` without writes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dataintel.model.aggregations import Aggregation

Blob = dict[str, Any]


@dataclass(frozen=True, slots=True)
class EntityRef:
    project_id: str
    entity_key: str  # user_id, cart_id, session_id or a property name
    entity_id: str


@dataclass(slots=True)
class FeatureUpdate:
    aggregation: Aggregation
    tiles: dict[str, dict[int, Any]]  # level ("0".."4") → tile start µs → partial state
    last_ts: int  # latest event time in the partial, µs
    cuts: tuple[int, ...]  # per level: tiles ending at or before this are dropped
    lifetime: bool  # keep a base state for the lifetime value


@dataclass(slots=True)
class EntityUpdate:
    ref: EntityRef
    partition: int
    first_offset: int
    last_offset: int
    features: dict[str, FeatureUpdate]  # field "<feature>@<version>" → partial


@dataclass(frozen=True, slots=True)
class Conflict:
    update: EntityUpdate
    stored_offset: int


@dataclass(slots=True)
class ApplyOutcome:
    applied: int = 0
    skipped: int = 0
    conflicts: list[Conflict] = field(default_factory=list)


class OnlineStore(ABC):
    kind: str  # "embedded" | "redis"

    @abstractmethod
    def apply(self, updates: Sequence[EntityUpdate]) -> ApplyOutcome:
        """Apply each update exactly once (see the module doc)."""

    @abstractmethod
    def read(self, refs: Sequence[EntityRef], fields: Sequence[str]) -> list[dict[str, Blob]]:
        """Per ref, in order, the stored blobs of ``fields`` (absent fields are left out).
        One round trip whatever the number of refs."""

    async def aread(
        self, refs: Sequence[EntityRef], fields: Sequence[str]
    ) -> list[dict[str, Blob]]:
        """``read`` from the event loop (serving). By default ``read`` itself, for stores whose
        reads are in-memory lookups; a networked store overrides it with an async client."""
        return self.read(refs, fields)

    async def abuilt(self, project_id: str) -> set[str]:
        """``built`` from the event loop (see ``aread``)."""
        return self.built(project_id)

    @abstractmethod
    def replace(self, states: Mapping[EntityRef, Mapping[str, Blob]]) -> None:
        """Overwrite whole blobs (backfill, recompute); positions are left as they are."""

    @abstractmethod
    def positions(self) -> dict[int, int]:
        """Per partition, the next log offset the processor has fully applied (resume point)."""

    @abstractmethod
    def commit(self, positions: Mapping[int, int]) -> None:
        """Record the resume point (never moves backwards)."""

    @abstractmethod
    def built(self, project_id: str) -> set[str]:
        """The fields ("<feature>@<version>") of the project whose backfill is complete."""

    @abstractmethod
    def mark_built(self, project_id: str, fields: Sequence[str]) -> None: ...

    @abstractmethod
    def unmark_built(self, project_id: str, fields: Sequence[str]) -> None:
        """Forget the built markers of ``fields``: they are no longer maintained by the
        stream (not deployed any more), so they must be rebuilt before they are served."""

    @abstractmethod
    def delete_entities(self, refs: Sequence[EntityRef]) -> int:
        """Forget entities entirely (GDPR erasure); returns how many existed."""

    @abstractmethod
    def ping(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...
