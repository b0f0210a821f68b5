"""What changed between two config snapshots, as a flat, deterministic list of changes.

Used for the pending diff (active version -> draft), for the record stored with every
deployment, and for the plan of `dataintel apply` (draft -> file). Order: each pipeline
(by id) followed by its events (by name), then the features (by name), the derived features,
the batch features, the analytics settings, the retention policy and the monitoring settings
(always present, so only ever updates), then the quality rules (by name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from dataintel.model.snapshot import ConfigSnapshot, EventSpec, FeatureSpec, PipelineSpec

ChangeKind = Literal[
    "pipeline",
    "event",
    "feature",
    "derived",
    "batch",
    "analytics",
    "retention",
    "monitoring",
    "quality",
]
ChangeAction = Literal["create", "update", "delete"]


class Change(BaseModel):
    kind: ChangeKind
    key: str = Field(
        description="'web' (pipeline), 'web/cart_add' (event), 'cart_adds' (feature or "
        "derived), 'analytics' (the analytics settings), 'retention' (the retention policy), "
        "'monitoring' (the monitoring settings), 'missing_sku' (a quality rule)"
    )
    action: ChangeAction
    fields: list[str] = Field(
        default_factory=list, description="Changed attributes (updates only)."
    )
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def _pipeline_attrs(p: PipelineSpec) -> dict[str, Any]:
    return p.model_dump(mode="json", exclude={"events"})


def _event_attrs(e: EventSpec) -> dict[str, Any]:
    return e.model_dump(mode="json")


def _feature_attrs(f: FeatureSpec) -> dict[str, Any]:
    return f.model_dump(mode="json")


def _compare(
    kind: ChangeKind, key: str, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> Change | None:
    if before is None and after is None:
        return None
    if before is None:
        return Change(kind=kind, key=key, action="create", after=after)
    if after is None:
        return Change(kind=kind, key=key, action="delete", before=before)
    fields = [name for name in after if before.get(name) != after[name]]
    fields += [name for name in before if name not in after]
    if not fields:
        return None
    return Change(kind=kind, key=key, action="update", fields=fields, before=before, after=after)


def _pair(
    kind: ChangeKind,
    before: Mapping[str, dict[str, Any]],
    after: Mapping[str, dict[str, Any]],
    prefix: str = "",
) -> Iterable[Change]:
    for name in sorted(before.keys() | after.keys()):
        change = _compare(kind, prefix + name, before.get(name), after.get(name))
        if change is not None:
            yield change


def diff(before: ConfigSnapshot, after: ConfigSnapshot) -> list[Change]:
    """Every create, update and delete that turns ``before`` into ``after``."""
    changes: list[Change] = []
    old_p = {p.id: p for p in before.pipelines}
    new_p = {p.id: p for p in after.pipelines}
    for pid in sorted(old_p.keys() | new_p.keys()):
        old, new = old_p.get(pid), new_p.get(pid)
        change = _compare(
            "pipeline",
            pid,
            _pipeline_attrs(old) if old else None,
            _pipeline_attrs(new) if new else None,
        )
        if change is not None:
            changes.append(change)
        old_e = {e.name: _event_attrs(e) for e in (old.events if old else [])}
        new_e = {e.name: _event_attrs(e) for e in (new.events if new else [])}
        changes.extend(_pair("event", old_e, new_e, prefix=f"{pid}/"))
    changes.extend(
        _pair(
            "feature",
            {f.name: _feature_attrs(f) for f in before.features},
            {f.name: _feature_attrs(f) for f in after.features},
        )
    )
    changes.extend(
        _pair(
            "derived",
            {d.name: d.model_dump(mode="json") for d in before.derived},
            {d.name: d.model_dump(mode="json") for d in after.derived},
        )
    )
    changes.extend(
        _pair(
            "batch",
            {b.name: b.model_dump(mode="json") for b in before.batch},
            {b.name: b.model_dump(mode="json") for b in after.batch},
        )
    )
    analytics = _compare(
        "analytics",
        "analytics",
        before.analytics.model_dump(mode="json"),
        after.analytics.model_dump(mode="json"),
    )
    retention = _compare(
        "retention",
        "retention",
        before.retention.model_dump(mode="json"),
        after.retention.model_dump(mode="json"),
    )
    monitoring = _compare(
        "monitoring",
        "monitoring",
        before.monitoring.model_dump(mode="json"),
        after.monitoring.model_dump(mode="json"),
    )
    changes += [c for c in (analytics, retention, monitoring) if c is not None]
    changes.extend(
        _pair(
            "quality",
            {r.name: r.model_dump(mode="json") for r in before.quality.rules},
            {r.name: r.model_dump(mode="json") for r in after.quality.rules},
        )
    )
    return changes


def summarize(changes: Iterable[Change]) -> dict[str, int]:
    """Counts per action, e.g. {"create": 3, "update": 1, "delete": 0}."""
    counts = {"create": 0, "update": 0, "delete": 0}
    for c in changes:
        counts[c.action] += 1
    return counts
