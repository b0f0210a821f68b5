"""Backfill: build a new or changed feature version's online state from the analytics history.

The processor runs it between two micro-batches, when the online store and the analytics
store have applied exactly the same log prefix: the state built from the analytics store is
then exactly the state the stream would have built, and the stream continues from there. The
version is marked built only at the end, and serving never reads a version that is not built
(it answers ``status: building``), so a feature is never served half-built.

Events are scanned from the analytics store in Arrow batches and go through the same
vectorised ``PartialBuilder`` as the stream, so both paths share one implementation.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import structlog

from dataintel.features.online.partials import PartialBuilder, state_field
from dataintel.features.online.plans import ANY, FeaturePlan, group_by_source
from dataintel.model.tiles import Blob, apply_partial
from dataintel.storage.analytics.port import AnalyticsStore, EventQuery
from dataintel.storage.online.port import EntityRef, EntityUpdate, OnlineStore
from dataintel.storage.online.updates import to_updates

log = structlog.get_logger("dataintel.backfill")
SCAN_ROWS = 50_000
WRITE_ENTITIES = 1_000


@dataclass
class BackfillProgress:
    project_id: str
    fields: list[str]
    state: str = "running"  # running | done | failed
    events_total: int = 0
    events_done: int = 0
    entities: int = 0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    error: str | None = None


def fold(states: dict[EntityRef, dict[str, Blob]], updates: Iterable[EntityUpdate]) -> None:
    """Merge updates into in-memory blobs (partitions do not matter here)."""
    for update in updates:
        blobs = states.setdefault(update.ref, {})
        for name, fu in update.features.items():
            blobs[name] = apply_partial(
                fu.aggregation, blobs.get(name), fu.tiles, fu.last_ts, fu.cuts, fu.lifetime
            )


def build_states(
    analytics: AnalyticsStore,
    builder: PartialBuilder,
    plans: Sequence[FeaturePlan],
    now: int,
    *,
    entity: tuple[str, str] | None = None,
    among: tuple[str, frozenset[str]] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> dict[EntityRef, dict[str, Blob]]:
    """The blobs of ``plans`` (one project) from every stored event, as of ``now``.

    ``entity``: (entity_key, id) to rebuild one entity only (repair / on-demand compute),
    scanning only its events when the key is an envelope column. ``among``: (entity_key,
    ids) to rebuild several entities of one key in ONE scan of its source events.
    """
    if among is not None:
        key, wanted = among
        built = build_states(analytics, builder, [p for p in plans if p.entity_key == key], now)
        return {ref: blobs for ref, blobs in built.items() if ref.entity_id in wanted}
    states: dict[EntityRef, dict[str, Blob]] = {}
    groups = group_by_source(plans)
    for (project_id, pipeline_id, event, entity_key), members in groups.items():
        if entity is not None and entity[0] != entity_key:
            continue
        query = _entity_filter(_query(project_id, pipeline_id, event), entity)
        for batch in analytics.scan_events(query):
            table = pa.Table.from_batches([batch])
            fold(states, to_updates(builder.build(table, [members], now)))
            if on_batch is not None:
                on_batch(table.num_rows)
    if entity is not None:
        states = {ref: blobs for ref, blobs in states.items() if ref.entity_id == entity[1]}
    return states


def _query(project_id: str, pipeline_id: str, event: str) -> EventQuery:
    return EventQuery(
        project_id=project_id,
        pipeline_id=None if pipeline_id == ANY else pipeline_id,
        events=() if event == ANY else (event,),
        batch_rows=SCAN_ROWS,
    )


def count_scanned(analytics: AnalyticsStore, plans: Sequence[FeaturePlan]) -> int:
    """How many event rows ``build_states`` scans for ``plans``: one scan per source group
    (an event read by two groups, e.g. a user and a cart feature, counts twice), so the
    progress ``events_done`` reaches exactly this total."""
    total = 0
    for project_id, pipeline_id, event, _ in group_by_source(plans):
        sql, params = "SELECT count(*) AS n FROM events WHERE project_id = $1", [project_id]
        if pipeline_id != ANY:
            params.append(pipeline_id)
            sql += f" AND pipeline_id = ${len(params)}"
        if event != ANY:
            params.append(event)
            sql += f" AND event = ${len(params)}"
        total += int(analytics.sql(sql, params).column("n")[0].as_py() or 0)
    return total


def _entity_filter(query: EventQuery, entity: tuple[str, str] | None) -> EventQuery:
    """Narrow the scan to one entity when its key is an envelope column."""
    if entity is None:
        return query
    key, value = entity
    if key == "user_id":
        return dataclasses.replace(query, user_id=value)
    if key == "cart_id":
        return dataclasses.replace(query, cart_id=value)
    if key == "session_id":
        return dataclasses.replace(query, session_id=value)
    return query


def run_backfill(
    analytics: AnalyticsStore,
    online: OnlineStore,
    builder: PartialBuilder,
    plans: Sequence[FeaturePlan],
    now: int,
    progress: BackfillProgress,
    on_progress: Callable[[BackfillProgress], None] | None = None,
) -> None:
    """Build and store the state of ``plans`` (one project), then mark them built."""
    progress.events_total = count_scanned(analytics, plans)

    last = time.monotonic()

    def advance(rows: int) -> None:
        nonlocal last
        progress.events_done += rows
        if on_progress is not None and time.monotonic() - last > 1.0:
            last = time.monotonic()
            on_progress(progress)

    states = build_states(analytics, builder, plans, now, on_batch=advance)
    fields = [state_field(p) for p in plans]
    # Entities with no event of a new feature must not keep a blob of an older build.
    refs = list(states)
    for start in range(0, len(refs), WRITE_ENTITIES):
        chunk = refs[start : start + WRITE_ENTITIES]
        online.replace({ref: states[ref] for ref in chunk}, fields)
        progress.entities += len(chunk)
    online.mark_built(progress.project_id, [p.state_field for p in plans])
    progress.state = "done"
    progress.finished_at = time.time()
    log.info(
        "backfill done",
        project_id=progress.project_id,
        fields=progress.fields,
        entities=progress.entities,
        events=progress.events_done,
        seconds=round(progress.finished_at - progress.started_at, 3),
    )
