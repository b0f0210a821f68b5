"""Request and response shapes of POST /v1/features/historical (point-in-time training sets).

The rows of a JSON body are plain objects (``entity_id``, ``timestamp`` and any other
columns, which are kept), checked by the service so that an error names its row; the
OpenAPI schemas below are written out (not generated) because one operation takes either a
JSON body or a multipart upload.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from dataintel.model.fields import FIELD_NAME

MAX_ROWS = 1_000_000
MAX_FEATURES = 500
ENTITY_ID = "entity_id"
TIMESTAMP = "timestamp"


class HistoricalFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"


FeatureName = Annotated[str, Field(min_length=1, max_length=200)]


class HistoricalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity_key: str = Field(default="user_id", pattern=FIELD_NAME)
    features: list[FeatureName] | None = Field(default=None, min_length=1, max_length=MAX_FEATURES)
    rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ROWS)
    format: HistoricalFormat = HistoricalFormat.JSON


class HistoricalOptions(BaseModel):
    """The form fields of a multipart upload (``features``: comma-separated names)."""

    model_config = ConfigDict(extra="forbid")

    entity_key: str = Field(default="user_id", pattern=FIELD_NAME)
    features: str | None = Field(default=None, min_length=1, max_length=100_000)
    format: HistoricalFormat = HistoricalFormat.JSON


_FEATURES_DOC = (
    "Feature names (every window) or value names such as `cart_adds_5m`; default: every "
    "enabled aggregation feature of `entity_key` in the deployed config."
)
_ROW: dict[str, Any] = {
    "type": "object",
    "required": [ENTITY_ID, TIMESTAMP],
    "properties": {
        ENTITY_ID: {
            "anyOf": [{"type": "string", "minLength": 1, "maxLength": 256}, {"type": "integer"}]
        },
        TIMESTAMP: {
            "anyOf": [{"type": "string", "maxLength": 64}, {"type": "number"}],
            "description": "ISO-8601 (naive: UTC) or epoch seconds / milliseconds.",
        },
    },
    "additionalProperties": True,
}
_FORMAT: dict[str, Any] = {"type": "string", "enum": [f.value for f in HistoricalFormat]}
JSON_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["rows"],
    "additionalProperties": False,
    "properties": {
        "entity_key": {"type": "string", "pattern": FIELD_NAME, "default": "user_id"},
        "features": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_FEATURES,
            "items": {"type": "string", "minLength": 1, "maxLength": 200},
            "description": _FEATURES_DOC,
        },
        "rows": {"type": "array", "minItems": 1, "maxItems": MAX_ROWS, "items": _ROW},
        "format": {**_FORMAT, "default": "json"},
    },
}
UPLOAD_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "Parquet or CSV with columns entity_id and timestamp (others kept).",
        },
        "entity_key": {"type": "string", "pattern": FIELD_NAME, "default": "user_id"},
        "features": {"type": "string", "description": "Comma-separated. " + _FEATURES_DOC},
        "format": {**_FORMAT, "default": "json"},
    },
}
REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {"schema": JSON_BODY},
        "multipart/form-data": {"schema": UPLOAD_BODY},
    },
}
JSON_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["entity_key", "values", "versions", "rows"],
    "properties": {
        "entity_key": {"type": "string"},
        "values": {"type": "array", "items": {"type": "string"}, "description": "Value names."},
        "versions": {"type": "object", "additionalProperties": {"type": "integer"}},
        "rows": {
            "type": "array",
            "items": {"type": "object", "additionalProperties": True},
            "description": "Each input row, in input order, with every value as of its "
            "timestamp (UTC, ISO-8601).",
        },
    },
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Every input row with its values, streamed.",
        "content": {
            "application/json": {"schema": JSON_RESULT},
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    413: {"description": "More than 1,000,000 rows, or a body over the configured limit."},
}
