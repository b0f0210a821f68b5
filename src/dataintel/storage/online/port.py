"""The OnlineStore port: per-entity feature state (tiles) for millisecond reads.

Writes come as *partial groups* (``PartialGroup``): for one (project, entity key) and a set
of state fields ``<feature>@<version>``, an Arrow table with one row per (entity, log
partition, level, tile) and each field's partial state in columns (the layout below). A
micro-batch is merged by set-based operations on those columns, never by a Python step per
(entity, feature).

Exactly once (DESIGN.md §3): ``apply(groups, ends)`` merges the groups and records the
batch's end positions. The caller first drops the entries below the stored ``positions``
(already applied), so a replay with different batch boundaries is exact. The embedded store
commits state and positions in ONE transaction. Redis applies one Lua script per (entity,
partition) that also records the entity's last applied offset: a crash between the scripts
and the positions leaves entities ahead of the positions, so ``apply`` skips what an entity
has applied and reports a *conflict* (the stored offset) for an update that overlaps it; it
then records no positions, and the caller re-applies the conflicting entities from the
entries after their stored offset and calls ``commit``.

Reads return, per state field, a blob (``dataintel.model.tiles``): ``{"t": {level: {start:
state}}, "b": base, "e": base_end, "l": last}``. An entity expires after ``ttl`` without
writes (absent afterwards, its state gone).

Partial columns (``i`` = the field's index in ``PartialGroup.fields``; null = no events):
``entity`` (text), ``log_partition``, ``level`` (0..4), ``tile`` (start µs), ``lo``/``hi``
(the rows' log offsets), ``last_t`` (latest event time µs), then per field
COUNT ``a{i}`` int · SUM/MIN/MAX ``a{i}`` double (MIN/MAX of a timestamp: ISO-8601 text) ·
AVG ``a{i}`` sum, ``b{i}`` count · FIRST/LAST ``a{i}`` event time, ``b{i}`` event id,
``c{i}`` the value as JSON text · COUNT_DISTINCT ``a{i}`` list of distinct texts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from dataintel.model.aggregations import Aggregation

Blob = dict[str, Any]


@dataclass(frozen=True, slots=True)
class EntityRef:
    project_id: str
    entity_key: str  # user_id, cart_id, session_id or a property name
    entity_id: str


@dataclass(frozen=True, slots=True)
class StateField:
    """One state field of the store: a feature version and how its states merge and age."""

    name: str  # "<feature>@<version>"
    aggregation: Aggregation
    keep: tuple[int, ...]  # per level: how long (µs before the processor clock) tiles stay useful
    lifetime: bool  # keep a base state for the lifetime value


@dataclass(frozen=True, slots=True)
class PartialGroup:
    """The partial tile states of one micro-batch for one (project, entity key) and fields
    (column layout: the module doc), computed at processor clock ``now_us``."""

    project_id: str
    entity_key: str
    fields: tuple[StateField, ...]
    table: pa.Table
    now_us: int


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
    """An entity's partition whose stored offset overlaps the batch (Redis after a crash):
    re-apply its entries after ``stored_offset``."""

    ref: EntityRef
    partition: int
    stored_offset: int


@dataclass(slots=True)
class ApplyOutcome:
    applied: int = 0
    skipped: int = 0
    conflicts: list[Conflict] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BatchValues:
    """One run of a batch feature version: every entity's value as of ``computed_at``."""

    project_id: str
    entity_key: str
    field: str  # "<feature>@<version>"
    computed_at: int  # µs (the run's slot)
    empty: Any  # the value of an entity the run did not find (no events in the window)
    values: Mapping[str, Any]  # entity id -> JSON scalar (number, string, bool or None)


@dataclass(frozen=True, slots=True)
class BatchValue:
    value: Any
    computed_at: int  # µs


class OnlineStore(ABC):
    kind: str  # "embedded" | "redis"
    # Does ``aread`` wait on I/O (so a slow store can be cut off by a timeout)? False for a
    # store read in the event loop itself, which no timeout can interrupt.
    async_reads: bool = False

    @abstractmethod
    def apply(self, groups: Sequence[PartialGroup], ends: Mapping[int, int]) -> ApplyOutcome:
        """Merge the groups and record ``ends`` (per partition, the next offset after the
        batch) as the resume point, exactly once (see the module doc). When the outcome has
        conflicts, the positions are not recorded."""

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
    def replace(
        self, states: Mapping[EntityRef, Mapping[str, Blob]], fields: Sequence[StateField]
    ) -> None:
        """Overwrite whole blobs of ``fields`` (backfill, recompute); positions are left as
        they are. Every blob's field is one of ``fields``."""

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
    def scrub(self) -> None:
        """After ``delete_entities`` (GDPR): leave no trace of the deleted entities in the
        store's own files and logs (change log, free pages, write-ahead log)."""

    @abstractmethod
    def write_batch(self, run: BatchValues) -> bool:
        """Make ``run`` the values of its field (all entities at once: an entity the run
        did not find reads as ``run.empty``), unless a later run of the field is stored.
        Idempotent; returns whether the run is now the stored one."""

    @abstractmethod
    def read_batch(
        self, refs: Sequence[EntityRef], fields: Sequence[str]
    ) -> list[dict[str, BatchValue]]:
        """Per ref, in order, the value of each batch field that has a stored run (fields
        never computed are left out). ``delete_entities`` forgets an entity's values."""

    async def aread_batch(
        self, refs: Sequence[EntityRef], fields: Sequence[str]
    ) -> list[dict[str, BatchValue]]:
        """``read_batch`` from the event loop (serving)."""
        return self.read_batch(refs, fields)

    @abstractmethod
    def ping(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...
