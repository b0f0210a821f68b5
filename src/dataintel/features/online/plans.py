"""What the processor computes for a deployed config: one plan per aggregation feature."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dataintel.model.aggregations import Aggregation
from dataintel.model.fields import ENVELOPE_FIELDS, ENVELOPE_KEYS, FieldType
from dataintel.model.snapshot import ConfigSnapshot, FeatureSpec
from dataintel.model.tiles import WindowSpec, has_lifetime, keeps, window_specs
from dataintel.model.windows import LIFETIME


@dataclass(frozen=True, slots=True)
class FeaturePlan:
    project_id: str
    name: str
    version: int
    pipeline_id: str
    source_event: str
    entity_key: str
    aggregation: Aggregation
    field: str | None
    numeric: bool  # SUM/AVG/MIN/MAX read the field as DOUBLE
    windows: tuple[WindowSpec, ...]
    keep: tuple[int, ...]
    lifetime: bool
    timestamp: bool = False  # MIN/MAX of a timestamp field: states are ISO-8601 UTC text

    @property
    def state_field(self) -> str:
        """The hash field of this feature version's blob in the online store."""
        return f"{self.name}@{self.version}"

    @property
    def source(self) -> tuple[str, str, str, str]:
        return (self.project_id, self.pipeline_id, self.source_event, self.entity_key)


_NUMERIC = frozenset({Aggregation.SUM, Aggregation.AVG, Aggregation.MIN, Aggregation.MAX})


def field_type(snapshot: ConfigSnapshot | None, spec: FeatureSpec) -> FieldType | None:
    """The type of the feature's field: an envelope field's, else the declared property's
    (None: no field, or unknown without a snapshot)."""
    if spec.field is None:
        return None
    if spec.field in ENVELOPE_FIELDS:
        return ENVELOPE_FIELDS[spec.field]
    pipeline = snapshot.pipeline(spec.pipeline_id) if snapshot is not None else None
    event = pipeline.event(spec.source_event) if pipeline else None
    found = event.field(spec.field) if event else None
    return found.type if found else None


def is_timestamp_extreme(
    aggregation: Aggregation, snapshot: ConfigSnapshot | None, spec: FeatureSpec
) -> bool:
    """MIN / MAX of a timestamp field: aggregated as instants, served as ISO-8601 text."""
    extreme = aggregation in (Aggregation.MIN, Aggregation.MAX)
    return extreme and field_type(snapshot, spec) is FieldType.TIMESTAMP


def plan_feature(
    project_id: str, spec: FeatureSpec, snapshot: ConfigSnapshot | None = None
) -> FeaturePlan | None:
    """The plan of an enabled aggregation feature (None for derived or disabled ones)."""
    aggregation = getattr(spec, "aggregation", None)
    if aggregation is None or not spec.enabled or getattr(spec, "expression", None):
        return None
    windows = window_specs(spec.name, spec.windows)
    timestamp = is_timestamp_extreme(Aggregation(aggregation), snapshot, spec)
    return FeaturePlan(
        project_id=project_id,
        name=spec.name,
        version=spec.version,
        pipeline_id=spec.pipeline_id,
        source_event=spec.source_event,
        entity_key=spec.entity_key,
        aggregation=Aggregation(aggregation),
        field=spec.field,
        numeric=Aggregation(aggregation) in _NUMERIC and not timestamp,
        windows=windows,
        keep=keeps(windows),
        lifetime=has_lifetime(windows),
        timestamp=timestamp,
    )


ANY = "*"  # source pipeline / event of the owner plan: every event
OWNER = "_owner"
OWNER_FIELD = f"{OWNER}@1"


def owner_plan(project_id: str) -> FeaturePlan:
    """Which user a cart belongs to: LAST(user_id) over every event of the cart."""
    windows = window_specs(OWNER, [LIFETIME])
    return FeaturePlan(
        project_id=project_id,
        name=OWNER,
        version=1,
        pipeline_id=ANY,
        source_event=ANY,
        entity_key="cart_id",
        aggregation=Aggregation.LAST,
        field="user_id",
        numeric=False,
        windows=windows,
        keep=keeps(windows),
        lifetime=True,
    )


def plan_project(project_id: str, snapshot: ConfigSnapshot) -> list[FeaturePlan]:
    """The plans of the deployed features, plus the cart → user owner plan when any exist."""
    plans = [p for p in (plan_feature(project_id, s, snapshot) for s in snapshot.features) if p]
    if plans:
        plans.append(owner_plan(project_id))
    return plans


def group_by_source(
    plans: Iterable[FeaturePlan],
) -> dict[tuple[str, str, str, str], list[FeaturePlan]]:
    groups: dict[tuple[str, str, str, str], list[FeaturePlan]] = {}
    for plan in plans:
        groups.setdefault(plan.source, []).append(plan)
    return groups


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def instant_text(us: int) -> str:
    """UTC µs as ISO-8601 with microseconds, e.g. ``2026-12-06T23:40:09.574680Z``: fixed
    width, so comparing the texts (Python, the Redis script) compares the instants."""
    moment = EPOCH + timedelta(microseconds=int(us))
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def is_envelope(name: str) -> bool:
    """An envelope field read as an aggregation field (not a property)."""
    return name in ENVELOPE_FIELDS


def is_envelope_key(name: str) -> bool:
    """An entity key read from the envelope (user_id, cart_id, session_id)."""
    return name in ENVELOPE_KEYS
