"""Rules a batch feature must satisfy against the pipelines of its config.

Pure functions over snapshot specs, used by the batch-features API, at deploy and by
``dataintel apply``, so all refuse the same things with the same messages (422 naming the
field: ``/body/expression``, ``/body/entity_key``, …)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dataintel.config.features.validation import ENTITY_FIELD_TYPES, check_feature
from dataintel.errors import InvalidInput
from dataintel.model.aggregations import Aggregation
from dataintel.model.batch import (
    EXPRESSION_ENVELOPE,
    BatchFeatureSpec,
    ExpressionRefused,
    expression_fields,
)
from dataintel.model.batch_fields import declared_types
from dataintel.model.fields import ENVELOPE_KEYS, FieldType
from dataintel.model.snapshot import ConfigSnapshot, PipelineSpec
from dataintel.model.windows import parse_window

Loc = Sequence[str | int]
# Batch aggregations read numbers where the online ones also take timestamps.
NUMBER_ONLY = frozenset({Aggregation.SUM, Aggregation.AVG, Aggregation.MIN, Aggregation.MAX})


def check_batch(spec: BatchFeatureSpec, pipelines: Sequence[PipelineSpec], loc: Loc) -> list[str]:
    """Raise InvalidInput naming the offending field; return the fields the feature reads."""
    base = list(loc)
    if spec.expression is None:
        return _check_aggregation(spec, pipelines, base)
    for name in ("aggregation", "field"):
        if getattr(spec, name) is not None:
            raise InvalidInput.field([*base, name], "must be null when expression is given")
    if spec.pipeline_id is not None and not any(p.id == spec.pipeline_id for p in pipelines):
        raise InvalidInput.field(
            [*base, "pipeline_id"], f"pipeline '{spec.pipeline_id}' does not exist"
        )
    types = declared_types(pipelines, spec.pipeline_id, spec.source_event)
    if spec.source_event is not None and not any(
        e.name == spec.source_event
        for p in pipelines
        if spec.pipeline_id in (None, p.id)
        for e in p.events
    ):
        raise InvalidInput.field(
            [*base, "source_event"], f"event '{spec.source_event}' is not defined"
        )
    _check_entity(spec.entity_key, types, [*base, "entity_key"])
    try:
        names = expression_fields(spec.expression)
    except ExpressionRefused as exc:
        raise InvalidInput.field([*base, "expression"], str(exc)) from exc
    for name in names:
        if name not in EXPRESSION_ENVELOPE and name not in types:
            raise InvalidInput.field(
                [*base, "expression"],
                f"'{name}' is neither an envelope field nor a property declared (with one "
                "type) by the events it reads",
            )
        if types.get(name) is FieldType.OBJECT:
            raise InvalidInput.field([*base, "expression"], f"'{name}' is an object")
    return names


def _check_aggregation(
    spec: BatchFeatureSpec, pipelines: Sequence[PipelineSpec], base: list[str | int]
) -> list[str]:
    assert spec.aggregation is not None
    if spec.aggregation in (Aggregation.FIRST, Aggregation.LAST):
        raise InvalidInput.field(
            [*base, "aggregation"],
            f"{spec.aggregation} is served by the real-time features; a batch feature "
            "aggregates (COUNT, SUM, AVG, MIN, MAX, COUNT_DISTINCT)",
        )
    for name in ("pipeline_id", "source_event"):
        if getattr(spec, name) is None:
            raise InvalidInput.field([*base, name], "is required for an aggregation")
    assert spec.pipeline_id is not None
    assert spec.source_event is not None
    tables = {
        p.id: {e.name: {f.name: f.type for f in e.fields} for e in p.events} for p in pipelines
    }
    check_feature(
        loc=base,
        pipeline_id=spec.pipeline_id,
        source_event=spec.source_event,
        entity_key=spec.entity_key,
        aggregation=spec.aggregation,
        field=spec.field,
        pipelines=tables,
    )
    props = tables[spec.pipeline_id][spec.source_event]
    number = (props.get(spec.field or "") or FieldType.TIMESTAMP) is FieldType.NUMBER
    if spec.aggregation in NUMBER_ONLY and spec.field is not None and not number:
        raise InvalidInput.field(
            [*base, "field"],
            f"a batch {spec.aggregation} reads a number field; '{spec.field}' is not one",
            kind="type_mismatch",
        )
    return [f for f in (spec.field,) if f is not None]


def _check_entity(key: str, types: dict[str, FieldType], loc: list[str | int]) -> None:
    if key in ENVELOPE_KEYS:
        return
    kind = types.get(key)
    if kind is None:
        raise InvalidInput.field(
            loc, f"entity key '{key}' is neither user_id, cart_id, session_id nor a declared field"
        )
    if kind not in ENTITY_FIELD_TYPES:
        raise InvalidInput.field(
            loc, f"entity key field '{key}' is {kind}, must be string or number"
        )


def check_all(
    batch: Sequence[BatchFeatureSpec],
    pipelines: Sequence[PipelineSpec],
    feature_names: set[str],
    loc: Callable[[BatchFeatureSpec], Loc],
) -> None:
    """Every enabled batch feature of a config (deploy, apply): fits the pipelines, and its
    name is not a real-time feature or value name of the same config."""
    for spec in batch:
        if not spec.enabled:
            continue
        if spec.name in feature_names:
            raise InvalidInput.field(
                [*loc(spec), "name"], f"'{spec.name}' is already a feature or value name"
            )
        check_batch(spec, pipelines, loc(spec))


def taken_names(snapshot: ConfigSnapshot) -> set[str]:
    """The real-time feature, value and derived names of a config (a batch feature's name
    is served beside them, so it must differ)."""
    names = {f.name for f in snapshot.features} | {d.name for d in snapshot.derived}
    for f in snapshot.features:
        names |= {f"{f.name}_{parse_window(w).name}" for w in f.windows}
    return names
