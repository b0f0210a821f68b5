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


def _entities_sql(
    key: str, plans: Sequence[FeaturePlan], applied: Mapping[int, int], params: list[object]
) -> str:
    def bind(value: object) -> str:
        params.append(value)
        return f"${len(params)}"

    column = key if is_envelope_key(key) else f"json_extract_string(properties, {bind(key)})"
    where = ["project_id = $1", "received_at >= $2", "received_at < $3", f"{column} IS NOT NULL"]
    if not any(p.source_event == ANY for p in plans):
        sources = sorted({f"{p.pipeline_id}/{p.source_event}" for p in plans})
        where.append(f"list_contains({bind(sources)}, concat(pipeline_id, '/', event))")
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
    """Per entity key, the ids (sorted) whose built state fields are absent online."""
    built = online.built(project_id)
    applied = online.positions()
    by_key: dict[str, list[FeaturePlan]] = {}
    for plan in plans:
        if plan.state_field in built:
            by_key.setdefault(plan.entity_key, []).append(plan)
    damaged: dict[str, list[str]] = {}
    for key, mine in sorted(by_key.items()):
        params: list[object] = [project_id, day[0], day[1]]
        text = _entities_sql(key, mine, applied, params)
        ids = sorted(str(v) for v in analytics.sql(text, params).column("id").to_pylist())
        fields = [p.state_field for p in mine]
        lost: list[str] = []
        for i in range(0, len(ids), READ_CHUNK):
            chunk = ids[i : i + READ_CHUNK]
            found = online.read([EntityRef(project_id, key, e) for e in chunk], fields)
            lost += [e for e, blobs in zip(chunk, found, strict=True) if set(fields) - set(blobs)]
        if lost:
            damaged[key] = lost
    return damaged
