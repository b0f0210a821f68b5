"""How the offline path reads events: field expressions per engine, parameters, the
features of one request. The queries themselves are built by ``offline_query``.

Field values are read the way the stream's partials read them (``partials.text_sql`` …) on
DuckDB. ClickHouse prints a JSON double without its ``.0`` when it is integral (``1.0`` →
``1``), which would merge ``1`` and ``1.0`` in COUNT_DISTINCT and turn a LAST of ``1.0``
into ``1``: its expressions put the ``.0`` back, so both engines yield the same text. (The
ClickHouse functions are written by name; ``AnalyticsStore.sql`` keeps their case.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dataintel.features.online import partials
from dataintel.features.online.plans import is_envelope, is_envelope_key
from dataintel.model.aggregations import Aggregation
from dataintel.model.fields import ENTITY_ID_MAX, FieldType
from dataintel.model.snapshot import FeatureSpec
from dataintel.model.tiles import WindowSpec, window_specs

NUMERIC = frozenset({Aggregation.SUM, Aggregation.AVG, Aggregation.MIN, Aggregation.MAX})
PICKS = frozenset({Aggregation.FIRST, Aggregation.LAST})


class Fields:
    """SQL expressions reading an event's entity and fields, for one engine."""

    def __init__(self, dialect: str) -> None:
        self.clickhouse = dialect == "clickhouse"

    def entity(self, key: str) -> str:
        """The entity id (the rule of ``partials.entity_sql``: at most 256 characters)."""
        if is_envelope_key(key):
            return key
        if not self.clickhouse:
            return partials.entity_sql(key)
        value = self.text(key)
        return f"CASE WHEN char_length({value}) <= {ENTITY_ID_MAX} THEN {value} END"

    def text(self, field: str) -> str:
        """The field as text, NULL when missing, JSON null or '' (COUNT_DISTINCT's key)."""
        if field == "timestamp" and self.clickhouse:
            return "formatDateTime(ts, '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC')"
        if is_envelope(field) or not self.clickhouse:
            return partials.text_sql(field)
        path = lit(field)
        return (
            f"CASE WHEN {self._integral_double(path)} THEN concat(JSONExtractRaw(properties, "
            f"{path}), '.0') ELSE nullif(JSONExtractString(properties, {path}), '') END"
        )

    def number(self, field: str) -> str:
        return f"TRY_CAST({self.text(field)} AS DOUBLE)"

    def instant(self, field: str) -> str:
        """A timestamp field as UTC µs (``partials.instant_sql`` on ClickHouse)."""
        if not self.clickhouse:
            return partials.instant_sql(field)
        if field == "timestamp":
            return "toUnixTimestamp64Micro(ts)"
        path = lit(field)
        parsed = f"parseDateTime64BestEffortOrNull(JSONExtractString(properties, {path}), 6, 'UTC')"
        return partials.instant_case(
            f"JSONType(properties, {path})",
            ("String", f"toUnixTimestamp64Micro({parsed})"),
            ("'Int64', 'UInt64', 'Double'", f"JSONExtractFloat(properties, {path})"),
            lambda us: f"toInt64({us})",
        )

    def json(self, field: str) -> str:
        """The field as JSON text (FIRST / LAST keep the value's JSON type); envelope ids,
        always strings, are returned as they are."""
        if is_envelope(field):
            return self.text(field)
        if not self.clickhouse:
            return partials.json_sql(field)
        path = lit(field)
        raw = f"JSONExtractRaw(properties, {path})"
        return f"CASE WHEN {self._integral_double(path)} THEN concat({raw}, '.0') ELSE {raw} END"

    @staticmethod
    def _integral_double(path: str) -> str:
        return (
            f"JSONType(properties, {path}) = 'Double' AND NOT "
            f"regexp_matches(JSONExtractRaw(properties, {path}), '[.eEnN]')"
        )


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class Selected:
    """One requested feature: its spec, windows, source number and value kind."""

    spec: FeatureSpec
    aggregation: Aggregation
    windows: tuple[WindowSpec, ...]
    source: int
    text_value: bool  # FIRST/LAST: the value is read as text (a string field), not JSON
    timestamp: bool = False  # MIN/MAX of a timestamp field: instants, served as ISO text


FieldTypes = Callable[[FeatureSpec], FieldType | None]


def select_features(
    features: Sequence[FeatureSpec],
    entity_key: str,
    types: FieldTypes | None = None,
) -> tuple[list[Selected], list[tuple[str, str]]]:
    """The aggregation features of ``entity_key`` and their distinct (pipeline, event).
    FIRST / LAST of an envelope field, or of a field ``types`` says is a string, read the
    value as text; the others read its JSON text. MIN / MAX of a timestamp field (the
    envelope ``timestamp``, or as ``types`` says) aggregate instants."""
    sources: list[tuple[str, str]] = []
    chosen: list[Selected] = []
    for spec in features:
        if spec.entity_key != entity_key or spec.aggregation is None:
            continue
        source = (spec.pipeline_id, spec.source_event)
        if source not in sources:
            sources.append(source)
        field = spec.field or ""
        declared = types(spec) if types is not None and field else None
        aggregation = Aggregation(spec.aggregation)
        extreme = aggregation in (Aggregation.MIN, Aggregation.MAX)
        chosen.append(
            Selected(
                spec,
                aggregation,
                window_specs(spec.name, spec.windows),
                sources.index(source),
                is_envelope(field) or declared is FieldType.STRING,
                extreme and (field == "timestamp" or declared is FieldType.TIMESTAMP),
            )
        )
    return chosen, sources
