"""Pipeline and event-schema payloads."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from dataintel.api.types import NonNegInt32, UtcTime
from dataintel.model.fields import EVENT_NAME, SLUG, FieldSpec, UnknownPolicy

T = TypeVar("T")


def not_null(v: T | None) -> T:
    """For XUpdate fields where null means "leave unchanged" only when omitted: an explicit
    null is refused (422 naming the field) instead of being silently ignored."""
    if v is None:
        raise ValueError("must not be null (omit the field to leave it unchanged)")
    return v


def _unique_fields(fields: list[FieldSpec]) -> list[FieldSpec]:
    seen: set[str] = set()
    for f in fields:
        if f.name in seen:
            raise ValueError(f"field {f.name!r} is declared twice")
        seen.add(f.name)
    return fields


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=EVENT_NAME)
    description: str = Field(default="", max_length=2000)
    enabled: StrictBool = True
    fields: list[FieldSpec] = Field(default_factory=list, max_length=500)

    _unique = field_validator("fields")(_unique_fields)


def _unique_event_names(v: list[EventCreate] | None) -> list[EventCreate] | None:
    names = [e.name for e in v or ()]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"event {sorted(dupes)[0]!r} is declared twice")
    return v


class EventReplace(EventCreate):
    """PUT: the full event schema; ``name`` may be omitted (it is the path's)."""

    name: str | None = Field(default=None, pattern=EVENT_NAME)  # type: ignore[assignment]


class EventUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=2000)
    enabled: StrictBool | None = None
    fields: list[FieldSpec] | None = Field(default=None, max_length=500)

    _not_null = field_validator("description", "enabled", "fields")(not_null)

    @field_validator("fields")
    @classmethod
    def _unique(cls, v: list[FieldSpec] | None) -> list[FieldSpec] | None:
        return None if v is None else _unique_fields(v)


class EventRead(BaseModel):
    name: str
    description: str
    enabled: bool
    fields: list[FieldSpec]


class PipelineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=SLUG, description="Stable id used in ingest URLs, e.g. 'web'.")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    unknown_properties: UnknownPolicy = Field(
        default="allow", description="What ingest does with properties no field declares."
    )
    events: list[EventCreate] = Field(default_factory=list, max_length=500)

    _unique_events = field_validator("events")(_unique_event_names)


class PipelineUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    unknown_properties: UnknownPolicy | None = None

    _not_null = field_validator("name", "description", "unknown_properties")(not_null)


class PipelineRead(BaseModel):
    id: str
    project_id: str
    name: str
    description: str
    unknown_properties: UnknownPolicy
    active: bool = Field(description="Inactive pipelines refuse events (takes effect at once).")
    events: list[EventRead]
    ingest_url: str
    created_at: UtcTime
    updated_at: UtcTime


class WebhookInfo(BaseModel):
    url: str
    secret: str = Field(description="Signing secret for the X-Dataintel-Signature header.")
    signature_header: str = "X-Dataintel-Signature"
    scheme: str = "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>"
    tolerance_seconds: NonNegInt32 = 300
    previous_secret_valid_until: UtcTime | None = Field(
        description="Until then the secret before the last rotation still verifies."
    )
    rotated_at: UtcTime | None


class PipelineReplace(BaseModel):
    """PUT: the pipeline's full definition (``id`` may be omitted: it is the path's). With
    ``events`` the event schemas are replaced as a set too (missing ones are deleted, 409
    while a feature uses them); without, they are left as they are: they are sub-resources
    with their own PUT."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, pattern=SLUG)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    unknown_properties: UnknownPolicy = Field(
        default="allow", description="What ingest does with properties no field declares."
    )
    events: list[EventCreate] | None = Field(default=None, max_length=500)

    _unique_events = field_validator("events")(_unique_event_names)
