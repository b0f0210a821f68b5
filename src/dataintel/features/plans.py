"""What the processor computes for a deployed config: one plan per aggregation feature."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dataintel.config.deployments.snapshot import ConfigSnapshot, FeatureSpec
from dataintel.config.features.schemas import Aggregation
from dataintel.config.features.validation import ENVELOPE_KEYS
from dataintel.config.features.windows import LIFETIME
from dataintel.features.tiles import WindowSpec, has_lifetime, keeps, window_specs


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

    @property
    def state_field(self) -> str:
        """The hash field of this feature version's blob in the online store."""
        return f"{self.name}@{self.version}"

    @property
    def source(self) -> tuple[str, str, str, str]:
        return (self.project_id, self.pipeline_id, self.source_event, self.entity_key)


_NUMERIC = frozenset({Aggregation.SUM, Aggregation.AVG, Aggregation.MIN, Aggregation.MAX})


def plan_feature(project_id: str, spec: FeatureSpec) -> FeaturePlan | None:
    """The plan of an enabled aggregation feature (None for derived or disabled ones)."""
    aggregation = getattr(spec, "aggregation", None)
    if aggregation is None or not spec.enabled or getattr(spec, "expression", None):
        return None
    windows = window_specs(spec.name, spec.windows)
    return FeaturePlan(
        project_id=project_id,
        name=spec.name,
        version=spec.version,
        pipeline_id=spec.pipeline_id,
        source_event=spec.source_event,
        entity_key=spec.entity_key,
        aggregation=Aggregation(aggregation),
        field=spec.field,
        numeric=Aggregation(aggregation) in _NUMERIC,
        windows=windows,
        keep=keeps(windows),
        lifetime=has_lifetime(windows),
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
    plans = [p for p in (plan_feature(project_id, s) for s in snapshot.features) if p]
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


def is_envelope(name: str) -> bool:
    return name in ENVELOPE_KEYS
