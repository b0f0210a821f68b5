"""Rules a feature definition must satisfy against the pipelines it reads.

Pure functions over snapshot specs, shared by the features API and `dataintel apply`, so both
refuse the same things with the same messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from dataintel.errors import InvalidInput
from dataintel.model.aggregations import Aggregation
from dataintel.model.fields import ENVELOPE_FIELDS, ENVELOPE_KEYS, FieldType

# Which field types each aggregation accepts (COUNT needs no field).
ACCEPTS: dict[Aggregation, frozenset[FieldType]] = {
    Aggregation.COUNT: frozenset(FieldType) - {FieldType.OBJECT},
    Aggregation.SUM: frozenset({FieldType.NUMBER}),
    Aggregation.AVG: frozenset({FieldType.NUMBER}),
    Aggregation.MIN: frozenset({FieldType.NUMBER, FieldType.TIMESTAMP}),
    Aggregation.MAX: frozenset({FieldType.NUMBER, FieldType.TIMESTAMP}),
    Aggregation.COUNT_DISTINCT: frozenset(
        {FieldType.STRING, FieldType.NUMBER, FieldType.BOOLEAN, FieldType.TIMESTAMP}
    ),
    Aggregation.LAST: frozenset(FieldType) - {FieldType.OBJECT},
    Aggregation.FIRST: frozenset(FieldType) - {FieldType.OBJECT},
}
ENTITY_FIELD_TYPES = frozenset({FieldType.STRING, FieldType.NUMBER})


def check_feature(
    *,
    loc: Sequence[str | int],
    pipeline_id: str,
    source_event: str,
    entity_key: str,
    aggregation: Aggregation,
    field: str | None,
    pipelines: dict[str, dict[str, dict[str, FieldType]]],
) -> None:
    """Raise InvalidInput naming the offending field of the definition.

    ``pipelines`` maps pipeline id -> event name -> property name -> type.
    ``loc`` is where the definition sits in the request (e.g. ["body"]).
    """
    base = list(loc)
    events = pipelines.get(pipeline_id)
    if events is None:
        raise InvalidInput.field([*base, "pipeline_id"], f"pipeline '{pipeline_id}' does not exist")
    props = events.get(source_event)
    if props is None:
        raise InvalidInput.field(
            [*base, "source_event"],
            f"event '{source_event}' is not defined in pipeline '{pipeline_id}'",
        )
    if entity_key not in ENVELOPE_KEYS:
        key_type = props.get(entity_key)
        if key_type is None:
            raise InvalidInput.field(
                [*base, "entity_key"],
                f"entity key '{entity_key}' is neither user_id, cart_id, session_id nor a "
                f"field of event '{source_event}'",
            )
        if key_type not in ENTITY_FIELD_TYPES:
            raise InvalidInput.field(
                [*base, "entity_key"],
                f"entity key field '{entity_key}' is {key_type}, must be string or number",
            )
    if field is None:
        if aggregation is not Aggregation.COUNT:
            raise InvalidInput.field([*base, "field"], f"{aggregation} needs a field")
        return
    field_type = ENVELOPE_FIELDS.get(field) or props.get(field)
    if field_type is None:
        raise InvalidInput.field(
            [*base, "field"],
            f"field '{field}' is neither an envelope field ({', '.join(ENVELOPE_FIELDS)}) "
            f"nor declared on event '{source_event}'",
        )
    if field_type not in ACCEPTS[aggregation]:
        allowed = ", ".join(sorted(ACCEPTS[aggregation]))
        raise InvalidInput.field(
            [*base, "field"],
            f"{aggregation} cannot aggregate '{field}' of type {field_type} (needs {allowed})",
            kind="type_mismatch",
        )
