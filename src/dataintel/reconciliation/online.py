"""Which entities of a project lost their online state: per entity key of the deployed
features, the entities with events of the day that the online store has applied (per the
analytics store), whose state fields the online store does not hold (docs/reconciliation.md,
"Online store": what this finds, and what it cannot)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from dataintel.features.online.plans import ANY, FeaturePlan, is_envelope_key
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.online.port import EntityRef, OnlineStore

READ_CHUNK = 1_000  # entities per online read


def _entities_sql(plan: FeaturePlan, applied: Mapping[int, int], params: list[object]) -> str:
    """The plan's entities with events of the day the online store has applied."""

    def bind(value: object) -> str:
        params.append(value)
        return f"${len(params)}"

    key = plan.entity_key
    column = key if is_envelope_key(key) else f"json_extract_string(properties, {bind(key)})"
    where = ["project_id = $1", "received_at >= $2", "received_at < $3", f"{column} IS NOT NULL"]
    if plan.source_event != ANY:
        where.append(f"pipeline_id = {bind(plan.pipeline_id)}")
        where.append(f"event = {bind(plan.source_event)}")
    done = [
        f"(log_partition = {bind(partition)} AND log_offset < {bind(end)})"
        for partition, end in sorted(applied.items())
    ]
    where.append(f"({' OR '.join(done)})" if done else "false")
    return f"SELECT DISTINCT {column} AS id FROM events WHERE {' AND '.join(where)}"  # noqa: S608


def damaged_entities(
    analytics: AnalyticsStore,
    online: OnlineStore,
    plans: Sequence[FeaturePlan],
    project_id: str,
    day: tuple[datetime, datetime],
) -> dict[str, list[str]]:
    """Per entity key, the ids (sorted) lacking the state field of a built feature whose
    source events of ``day`` they have (``day``: the part of the day within the online
    store's TTL, where an entity cannot have expired)."""
    built = online.built(project_id)
    applied = online.positions()
    expected: dict[str, dict[str, set[str]]] = {}  # key -> entity -> fields it must have
    for plan in plans:
        if plan.state_field not in built:
            continue
        params: list[object] = [project_id, day[0], day[1]]
        found = analytics.sql(_entities_sql(plan, applied, params), params)
        entities = expected.setdefault(plan.entity_key, {})
        for entity in found.column("id").to_pylist():
            entities.setdefault(str(entity), set()).add(plan.state_field)
    damaged: dict[str, list[str]] = {}
    for key, entities in sorted(expected.items()):
        ids = sorted(entities)
        fields = sorted(set().union(*entities.values()))
        lost: list[str] = []
        for i in range(0, len(ids), READ_CHUNK):
            chunk = ids[i : i + READ_CHUNK]
            blobs = online.read([EntityRef(project_id, key, e) for e in chunk], fields)
            lost += [e for e, held in zip(chunk, blobs, strict=True) if entities[e] - set(held)]
        if lost:
            damaged[key] = lost
    return damaged
