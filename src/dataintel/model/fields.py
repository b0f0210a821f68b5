"""What an event is made of: the names, field types and envelope keys every plane agrees on."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

SLUG = r"^[a-z0-9][a-z0-9_-]{0,63}$"
EVENT_NAME = r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$"
FIELD_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
# One id rule for every entity key (user_id, cart_id, session_id, or a property used as one):
# a non-empty string of at most this many characters, any characters.
ENTITY_ID_MAX = 256
ENVELOPE_KEYS = ("user_id", "cart_id", "session_id")  # envelope fields usable as entity keys


class FieldType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"
    OBJECT = "object"


UnknownPolicy = Literal["allow", "drop", "reject"]

# Envelope fields usable as aggregation fields, with their type. The name means the envelope
# field even when the event also declares a property of that name.
ENVELOPE_FIELDS: dict[str, FieldType] = {
    "user_id": FieldType.STRING,
    "cart_id": FieldType.STRING,
    "session_id": FieldType.STRING,
    "event_id": FieldType.STRING,
    "event": FieldType.STRING,
    "timestamp": FieldType.TIMESTAMP,
}


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=FIELD_NAME)
    type: FieldType
    required: StrictBool = False
    description: str = Field(default="", max_length=2000)
    pii: StrictBool = Field(
        default=False, description="Personal data: erased and masked by GDPR tools."
    )
