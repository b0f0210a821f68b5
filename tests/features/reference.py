"""The brute-force reference: the feature contract of docs/features.md applied literally to
raw events (stored-event dicts), one value at a time. Slow and obviously right."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from dataintel.features.online.plans import instant_text
from dataintel.ingest.envelope import timestamp_us
from dataintel.model.aggregations import Aggregation
from dataintel.model.snapshot import FeatureSpec
from dataintel.model.windows import parse_window

ENVELOPE = ("user_id", "cart_id", "session_id", "event_id", "event")
KEYS = ("user_id", "cart_id", "session_id")
SECOND = 1_000_000
ENTITY_ID_MAX = 256


def _get(event: dict[str, Any], name: str) -> Any:
    if name == "timestamp":
        return instant_text(event["ts"])
    value = event.get(name) if name in ENVELOPE else event["properties"].get(name)
    return None if value is None or value == "" else value


def _key(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def entity_of(event: dict[str, Any], entity_key: str) -> str | None:
    """The entity id; a property key longer than 256 characters is no id (ignored)."""
    value = event.get(entity_key) if entity_key in KEYS else _get(event, entity_key)
    if value is None or value == "":
        return None
    text = _key(value)
    return text if entity_key in KEYS or len(text) <= ENTITY_ID_MAX else None


def instant_of(value: Any) -> int | None:
    """A timestamp field's instant (µs) as ingest reads it."""
    return timestamp_us(value)


def value_of(
    agg: Aggregation, field: str | None, events: list[dict[str, Any]], instants: bool = False
) -> Any:
    if agg is Aggregation.COUNT:
        return len(events)
    assert field is not None
    has = [e for e in events if _get(e, field) is not None]
    if agg is Aggregation.COUNT_DISTINCT:
        return len({_key(_get(e, field)) for e in has})
    if agg in (Aggregation.FIRST, Aggregation.LAST):
        if not has:
            return None
        order = sorted(has, key=lambda e: (e["ts"], e["event_id"]))
        return _get(order[0] if agg is Aggregation.FIRST else order[-1], field)
    if instants:  # MIN / MAX of a timestamp field: the instant, as ISO-8601 text
        moments = [m for e in has if (m := instant_of(_get(e, field))) is not None]
        if not moments:
            return None
        return instant_text(min(moments) if agg is Aggregation.MIN else max(moments))
    numbers = [float(_get(e, field)) for e in has]
    if agg is Aggregation.SUM:
        return float(sum(numbers))
    if not numbers:
        return None
    if agg is Aggregation.AVG:
        return sum(numbers) / len(numbers)
    return min(numbers) if agg is Aggregation.MIN else max(numbers)


def reference_values(
    events: Iterable[dict[str, Any]],
    spec: FeatureSpec,
    entity_key: str,
    entity_id: str,
    t_us: int,
    instants: bool = False,
) -> dict[str, Any]:
    """Every value ``<feature>_<window>`` of one entity at ``t_us`` (``instants``: the field
    is a timestamp field; the envelope ``timestamp`` always is one)."""
    assert spec.aggregation is not None
    agg = Aggregation(spec.aggregation)
    mine = [
        e
        for e in events
        if e["project_id"] is not None
        and e["pipeline_id"] == spec.pipeline_id
        and e["event"] == spec.source_event
        and entity_of(e, entity_key) == entity_id
        and e["ts"] <= t_us
    ]
    out: dict[str, Any] = {}
    for text in spec.windows:
        w = parse_window(text)
        if w.seconds is None:
            chosen = mine
        else:
            g = (w.granularity_seconds or 1) * SECOND
            start = ((t_us - w.seconds * SECOND) // g) * g
            chosen = [e for e in mine if e["ts"] >= start]
        instant = instants or spec.field == "timestamp"
        out[f"{spec.name}_{w.name}"] = value_of(agg, spec.field, chosen, instant)
    return out
