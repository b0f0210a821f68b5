"""The document of ``POST /v1/export/custom``: a declarative query over the project's events
(docs/ingest.md, "Custom export")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from dataintel.api.types import UtcTime
from dataintel.export.formats import ExportFormat
from dataintel.model.fields import EVENT_NAME, FIELD_NAME

EventName = Annotated[str, StringConstraints(pattern=EVENT_NAME, max_length=128)]
FieldRef = Annotated[
    str,
    StringConstraints(max_length=160),
    Field(
        description="An envelope field (event, event_id, timestamp, received_at, user_id, "
        "cart_id, session_id, pipeline_id) or properties.<name> of a deployed event."
    ),
]
Alias = Annotated[str, StringConstraints(pattern=FIELD_NAME, max_length=64)]
Text = Annotated[str, StringConstraints(max_length=1000)]
Scalar = Text | float | bool
KeyPrefix = Annotated[
    str,
    StringConstraints(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._=-]*(/[A-Za-z0-9][A-Za-z0-9._=-]*)*$", max_length=200
    ),
]
STREAM_MAX_ROWS = 100_000
JOB_MAX_ROWS = 1_000_000  # a report holds its table in memory (as the events kind)


class Filter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: FieldRef
    op: Literal["=", "!=", ">", ">=", "<", "<=", "in", "not_in", "is_null", "not_null"]
    value: Scalar | list[Scalar] | None = Field(
        default=None, description="A scalar; a list (1-100) for in / not_in; none for is_null."
    )

    @model_validator(mode="after")
    def _value_fits_op(self) -> Filter:
        if self.op in ("is_null", "not_null"):
            if self.value is not None:
                raise ValueError(f"{self.op} takes no value")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not 1 <= len(self.value) <= 100:
                raise ValueError(f"{self.op} takes a list of 1 to 100 values")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"{self.op} takes one value")
        return self


class Aggregate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    fn: Literal["count", "count_distinct", "sum", "avg", "min", "max"]
    field: FieldRef | None = Field(default=None, description="Required except for count.")
    as_: Alias | None = Field(default=None, alias="as", description="The column's name.")

    @model_validator(mode="after")
    def _field_when_needed(self) -> Aggregate:
        if self.fn != "count" and self.field is None:
            raise ValueError(f"{self.fn} needs a field")
        return self

    @property
    def name(self) -> str:
        if self.as_ is not None:
            return self.as_
        return self.fn if self.field is None else f"{self.fn}_{self.field.split('.')[-1]}"


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: Annotated[str, StringConstraints(max_length=160)] = Field(
        description="An output column: a selected field, a group-by field, `time`, or an "
        "aggregate's name."
    )
    desc: bool = False


class Download(BaseModel):
    """The result in the response (or, above the streaming limit, as a report's file)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["download"] = "download"


class S3Destination(BaseModel):
    """The result as Parquet files partitioned by date in the service's S3 bucket (the one
    ``DATAINTEL_DATALAKE_URL`` names: bucket and credentials are never taken from a request),
    under ``exports/project_id=<project>/<prefix>/<report id>/date=<YYYY-MM-DD>/``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["s3"]
    prefix: KeyPrefix = Field(
        default="custom", description="Folder under the project's exports (letters, digits, ._=-)."
    )


class CustomExport(BaseModel):
    """Rows (``fields``) or aggregates (``aggregations``, optionally ``group_by`` and
    ``interval``) of the events that match, in ``order_by`` order, at most ``limit``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    events: list[EventName] = Field(
        default=[], max_length=50, description="Event names (default: every deployed event)."
    )
    from_: UtcTime | None = Field(default=None, alias="from", description="Event time, inclusive.")
    to: UtcTime | None = Field(default=None, description="Event time, exclusive.")
    fields: list[FieldRef] = Field(
        default=[], max_length=50, description="Row export: the columns (default: envelope)."
    )
    filters: list[Filter] = Field(default=[], max_length=20, description="All must hold.")
    group_by: list[FieldRef] = Field(default=[], max_length=10)
    interval: Literal["hour", "day", "week", "month"] | None = Field(
        default=None, description="Aggregates per UTC time bucket (a `time` column)."
    )
    aggregations: list[Aggregate] = Field(default=[], max_length=20)
    order_by: list[Order] = Field(default=[], max_length=5)
    limit: int = Field(
        default=10_000,
        ge=1,
        le=JOB_MAX_ROWS,
        description=f"Most rows. Up to {STREAM_MAX_ROWS:,} stream back; more run as a job "
        "(202, then the file at the report's url).",
    )
    format: ExportFormat = ExportFormat.NDJSON
    destination: Download | S3Destination = Field(
        default_factory=Download,
        discriminator="type",
        description="download (default) or s3: always a job (202), Parquet files partitioned "
        "by the date of `timestamp` (rows) or `time` (aggregates with an interval).",
    )

    @model_validator(mode="after")
    def _shape(self) -> CustomExport:
        if self.from_ is not None and self.to is not None and self.from_ >= self.to:
            raise ValueError("'to' must be after 'from'")
        aggregated = bool(self.aggregations)
        if not aggregated and (self.group_by or self.interval):
            raise ValueError("group_by and interval need aggregations")
        if aggregated and self.fields:
            raise ValueError("fields is for row exports; with aggregations use group_by")
        names = [a.name for a in self.aggregations]
        if len(set(names)) != len(names):
            raise ValueError("two aggregations have the same name: set 'as'")
        return self
