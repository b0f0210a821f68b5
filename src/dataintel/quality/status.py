"""Which rules speak for a pipeline, an event or a feature, and their status and score.

- a pipeline: the rules pinned to it, and the unpinned rules of its events or of all events;
- an event: the rules whose dataset is that event (of any pipeline, or its own);
- a feature: the rules on its source event whose column is the feature's field (or that
  have no column: freshness, volume, schema, custom SQL) - a COUNT feature has no field, so
  every rule on its source event speaks for it.
Each rule counts with its latest result (quality/score.py for the formula)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dataintel.model.quality import QualityRule
from dataintel.model.snapshot import ConfigSnapshot, FeatureSpec, PipelineSpec
from dataintel.quality.schemas import ScopeStatus
from dataintel.quality.score import Check, score
from dataintel.storage.metadata.quality_models import QualityResult


def _column(rule: QualityRule) -> str | None:
    column: Any = getattr(rule, "column", None)
    return str(column) if column is not None else None


def of_pipeline(rule: QualityRule, pipeline: PipelineSpec) -> bool:
    if rule.pipeline is not None:
        return rule.pipeline == pipeline.id
    return rule.events_filter is None or pipeline.event(rule.dataset) is not None


def of_event(rule: QualityRule, event: str) -> bool:
    return rule.events_filter == event


def of_feature(rule: QualityRule, feature: FeatureSpec) -> bool:
    if rule.events_filter != feature.source_event:
        return False
    if rule.pipeline is not None and rule.pipeline != feature.pipeline_id:
        return False
    column = _column(rule)
    return feature.field is None or column is None or column == f"properties.{feature.field}"


def scope_status(
    name: str,
    rules: Iterable[QualityRule],
    latest: Mapping[str, QualityResult],
    alerting: set[str],
) -> ScopeStatus:
    chosen = [r for r in rules if r.enabled]
    found = [latest[r.name] for r in chosen if r.name in latest]
    result = score(Check(r.dimension, r.weight, r.status, r.pass_fraction) for r in found)
    return ScopeStatus(
        name=name,
        score=result.score,
        dimensions=result.dimensions,
        rules=len(chosen),
        failing_rules=sorted(r.rule for r in found if r.status == "fail"),
        errored_rules=sorted(r.rule for r in found if r.status == "error"),
        last_run=max((r.evaluated_at for r in found), default=None),
        open_alerts=sum(1 for r in chosen if r.name in alerting),
    )


def statuses(
    snapshot: ConfigSnapshot, latest: Mapping[str, QualityResult], alerting: set[str]
) -> tuple[ScopeStatus, list[ScopeStatus], list[ScopeStatus], list[ScopeStatus]]:
    """(overall, per pipeline, per event, per feature); ``alerting``: the rules with an open
    (or acknowledged) alert."""
    rules = snapshot.quality.rules
    overall = scope_status("project", rules, latest, alerting)
    pipelines = [
        scope_status(p.id, [r for r in rules if of_pipeline(r, p)], latest, alerting)
        for p in snapshot.pipelines
    ]
    names = sorted({e.name for p in snapshot.pipelines for e in p.events})
    events = [
        scope_status(n, [r for r in rules if of_event(r, n)], latest, alerting) for n in names
    ]
    features = [
        scope_status(f.name, [r for r in rules if of_feature(r, f)], latest, alerting)
        for f in snapshot.features
    ]
    return overall, pipelines, events, features
