"""Validation of events against the pipeline's *deployed* version, precompiled.

A ``PipelineValidator`` is built once per (project, deployed snapshot, pipeline) and turns one
JSON item into a ``StoredEvent`` or a list of typed reasons. Per event it does a handful of
dict lookups and ``type(v) in ...`` checks: no pydantic model, no allocation beyond the
stored event itself. Pointers in reasons are relative to the item ("/properties/price");
batch responses prefix them with the item's place in the body.

Rules: the event is known and enabled; required fields are present (null counts as absent);
values have the declared type (``number`` excludes booleans; ``timestamp`` is an ISO-8601
string or an epoch number); unknown properties follow the pipeline's policy (allow: kept,
drop: removed, reject: an ``unknown_property`` reason each); the event time is at most
``ingest_max_future_skew_seconds`` ahead of arrival (``future_timestamp``) and at most
``ingest_allowed_lateness_seconds`` behind it (``too_late``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, cast

from dataintel.config.deployments.active import ActiveConfig
from dataintel.ingest.envelope import (
    ENVELOPE_FIELDS,
    Reason,
    entity_id,
    event_id_of,
    new_event_id,
    reason,
    timestamp_us,
)
from dataintel.model.fields import FieldType
from dataintel.model.snapshot import EventSpec, PipelineSpec
from dataintel.storage import records
from dataintel.storage.eventlog.port import AppendItem
from dataintel.storage.records import StoredEvent

MAX_REASONS = 50  # per event; the rest are summarised in one last reason

_TYPES: dict[FieldType, frozenset[type]] = {
    FieldType.STRING: frozenset({str}),
    FieldType.NUMBER: frozenset({int, float}),  # type(True) is bool: not a number
    FieldType.BOOLEAN: frozenset({bool}),
    FieldType.TIMESTAMP: frozenset({str, int, float}),
    FieldType.OBJECT: frozenset({dict}),
}
_JSON_NAMES = {str: "string", int: "number", float: "number", bool: "boolean", dict: "object"}

# (the log item of a valid event or None, event_id, event name when a string, reasons)
Checked = tuple[AppendItem | None, str, str | None, list[Reason]]
MAX_DEPTH_MESSAGE = "nested too deeply to store (at most about 250 levels)"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    return _JSON_NAMES.get(type(value), "array" if isinstance(value, list) else "value")


def pointer_token(key: str) -> str:
    """RFC 6901 escaping of one reference token."""
    return key.replace("~", "~0").replace("/", "~1")


class EventValidator:
    __slots__ = ("declared", "enabled", "name", "policy", "required", "timestamps", "types")

    def __init__(self, spec: EventSpec, policy: str) -> None:
        self.name = spec.name
        self.enabled = spec.enabled
        self.policy = policy
        self.required = tuple(f.name for f in spec.fields if f.required)
        self.types = {f.name: _TYPES[f.type] for f in spec.fields}
        self.declared = {f.name: str(f.type) for f in spec.fields}
        self.timestamps = frozenset(f.name for f in spec.fields if f.type is FieldType.TIMESTAMP)

    def check(self, props: dict[str, Any], reasons: list[Reason]) -> dict[str, Any]:
        """``props`` (filtered under the drop policy); problems are appended to ``reasons``."""
        for name in self.required:
            if props.get(name) is None:
                reasons.append(
                    reason("missing_field", f"/properties/{name}", "required field is missing")
                )
        types = self.types
        unknown: list[str] = []
        for key, value in props.items():
            allowed = types.get(key)
            if allowed is None:
                unknown.append(key)
            elif value is not None and type(value) not in allowed:
                reasons.append(self._wrong_type(key, value))
            elif key in self.timestamps and value is not None and timestamp_us(value) is None:
                reasons.append(
                    reason(
                        "invalid_timestamp",
                        f"/properties/{key}",
                        "not an ISO-8601 time or an epoch number in range",
                    )
                )
        if not unknown or self.policy == "allow":
            return props
        if self.policy == "drop":
            return {k: v for k, v in props.items() if k in types}
        for key in unknown:
            reasons.append(
                reason(
                    "unknown_property",
                    f"/properties/{pointer_token(key)}",
                    f"property {key[:100]!r} is not declared for event '{self.name}' "
                    "(the pipeline rejects unknown properties)",
                )
            )
        return props

    def _wrong_type(self, key: str, value: Any) -> Reason:
        return reason(
            "wrong_type",
            f"/properties/{key}",
            f"expected {self.declared[key]}, got {json_type(value)}",
        )


@dataclass(frozen=True, slots=True)
class Limits:
    future_skew_us: int
    lateness_us: int


class PipelineValidator:
    """Checks items for one pipeline of one deployed config version."""

    def __init__(self, project_id: str, version: int, spec: PipelineSpec, limits: Limits) -> None:
        self.project_id = project_id
        self.pipeline_id = spec.id
        self.version = version
        self.limits = limits
        self.events = {e.name: EventValidator(e, spec.unknown_properties) for e in spec.events}

    def check(self, item: Any, now: int) -> Checked:
        """One item, arriving at ``now`` (UTC µs): valid, it comes back as the log item to
        append (the encoded StoredEvent, keyed by its entity, with its dedup key)."""
        if type(item) is not dict:
            found = json_type(item)
            return None, new_event_id(), None, [_not_an_object(found)]
        reasons: list[Reason] = []
        event_id = event_id_of(item, reasons)
        if len(item) > len(ENVELOPE_FIELDS) or not ENVELOPE_FIELDS.issuperset(item):
            _unknown_envelope_fields(item, reasons)
        name = item.get("event")
        validator = self._event(name, reasons)
        ts = self._timestamp(item.get("timestamp"), now, reasons)
        user_id = entity_id(item.get("user_id"), "/user_id", reasons)
        cart_id = entity_id(item.get("cart_id"), "/cart_id", reasons)
        session_id = entity_id(item.get("session_id"), "/session_id", reasons)
        props = item.get("properties")
        if props is None:
            props = {}
        elif type(props) is not dict:
            reasons.append(reason("wrong_type", "/properties", "must be an object"))
            props = {}
        if validator is not None:
            props = validator.check(props, reasons)
        named = name if type(name) is str else None
        if reasons:
            return None, event_id, named, _capped(reasons)
        stored: StoredEvent = {
            "project_id": self.project_id,
            "pipeline_id": self.pipeline_id,
            "pipeline_version": self.version,
            "event_id": event_id,
            "event": cast(str, name),
            "ts": ts,
            "received_at": now,
            "user_id": user_id,
            "cart_id": cart_id,
            "session_id": session_id,
            "properties": props,
        }
        try:
            value = records.encode(stored)
        except TypeError:  # orjson refuses nesting deeper than 254 levels
            return (
                None,
                event_id,
                named,
                [reason("invalid_envelope", "/properties", MAX_DEPTH_MESSAGE)],
            )
        entity = user_id or cart_id or session_id
        subject = (self.project_id, entity) if entity else None
        return (
            AppendItem(
                entity or event_id, value, records.dedup_key(self.project_id, event_id), subject
            ),
            event_id,
            named,
            reasons,
        )

    def _event(self, name: Any, reasons: list[Reason]) -> EventValidator | None:
        if name is None:
            reasons.append(reason("missing_field", "/event", "the event name is missing"))
            return None
        if type(name) is not str:
            reasons.append(
                reason("wrong_type", "/event", f"expected string, got {json_type(name)}")
            )
            return None
        validator = self.events.get(name)
        if validator is None:
            reasons.append(
                reason(
                    "unknown_event",
                    "/event",
                    f"event {name[:128]!r} is not in pipeline '{self.pipeline_id}' "
                    f"(deployed version {self.version})",
                )
            )
            return None
        if not validator.enabled:
            reasons.append(reason("event_disabled", "/event", f"event '{name}' is disabled"))
            return None
        return validator

    def _timestamp(self, value: Any, now: int, reasons: list[Reason]) -> int:
        if value is None:
            return now
        ts = timestamp_us(value)
        if ts is None:
            reasons.append(
                reason(
                    "invalid_timestamp",
                    "/timestamp",
                    "expected an ISO-8601 time or epoch seconds/milliseconds",
                )
            )
            return now
        if ts > now + self.limits.future_skew_us:
            skew = self.limits.future_skew_us // 1_000_000
            reasons.append(
                reason("future_timestamp", "/timestamp", f"more than {skew} s in the future")
            )
        elif ts < now - self.limits.lateness_us:
            late = self.limits.lateness_us // 1_000_000
            reasons.append(
                reason("too_late", "/timestamp", f"older than the allowed lateness of {late} s")
            )
        return ts


def _not_an_object(found: str) -> Reason:
    return reason("invalid_envelope", "", f"an event is a JSON object, got {found}")


def _unknown_envelope_fields(item: dict[str, Any], reasons: list[Reason]) -> None:
    for key in item:
        if key not in ENVELOPE_FIELDS:
            reasons.append(
                reason(
                    "invalid_envelope",
                    f"/{pointer_token(key)}",
                    f"unknown envelope field {key[:100]!r}: custom data goes under properties",
                )
            )


def _capped(reasons: list[Reason]) -> list[Reason]:
    if len(reasons) <= MAX_REASONS:
        return reasons
    rest = len(reasons) - MAX_REASONS + 1
    return [*reasons[: MAX_REASONS - 1], reason(reasons[-1]["code"], "", f"and {rest} more")]


@dataclass(slots=True)
class _Entry:
    config: ActiveConfig
    validators: dict[str, PipelineValidator] = field(default_factory=dict)


class ValidatorCache:
    """Compiled validators per project, reused while the deployed config is the same (the
    same ActiveConfig object, or an equal reload of the same version)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def get(self, config: ActiveConfig, spec: PipelineSpec) -> PipelineValidator:
        entry = self._entries.get(config.project_id)
        if entry is None or entry.config is not config:
            entry = self._refresh(config, entry)
        validator = entry.validators.get(spec.id)
        if validator is None:
            assert config.version is not None
            validator = PipelineValidator(config.project_id, config.version, spec, self.limits)
            entry.validators[spec.id] = validator
        return validator

    def _refresh(self, config: ActiveConfig, entry: _Entry | None) -> _Entry:
        same = (
            entry is not None
            and entry.config.version == config.version
            and entry.config.snapshot == config.snapshot
        )
        fresh = _Entry(config, entry.validators if same and entry else {})
        with self._lock:
            self._entries[config.project_id] = fresh
        return fresh
