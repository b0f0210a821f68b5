"""Data-quality rules as deployed with the config snapshot (docs/quality.md).

A rule checks one *dataset* (all of a project's events, or one event name, optionally of one
pipeline) over a window of event time. Row-level rules count passing and total rows; the
rule passes when ``passing / total >= mostly`` (Great Expectations' ``mostly``, Dataplex's
passing threshold; reference A.7, A.9). Aggregate rules (freshness) pass or fail as a whole.

Each rule type has its own fields, validated here so that the config API, ``dataintel
apply`` and a deployed snapshot refuse the same mistakes (a 422 naming the field). The
custom SQL predicate is parsed and checked in ``model.quality_predicate``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from dataintel.model.fields import EVENT_NAME, SLUG
from dataintel.model.quality_predicate import check_predicate

RULE_NAME = r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$"
ENVELOPE_COLUMNS: dict[str, str] = {  # the name a rule uses -> the events table's column
    "event_id": "event_id",
    "event": "event",
    "user_id": "user_id",
    "cart_id": "cart_id",
    "session_id": "session_id",
    "pipeline_id": "pipeline_id",
    "timestamp": "ts",
    "received_at": "received_at",
}
PROPERTY_PATH = r"^properties(\.[A-Za-z_][A-Za-z0-9_]{0,127}){1,8}$"
COLUMN = r"^(event_id|event|user_id|cart_id|session_id|pipeline_id|timestamp|received_at)$|" + (
    PROPERTY_PATH
)
MAX_RULES = 500
MAX_VALUES = 1_000
MAX_INTERVALS = 10_000  # complete volume intervals one run may check
BOUND = 1e15  # |range and volume bounds|


class Dimension(StrEnum):
    """Pointblank's six dimensions (reference A.7)."""

    COMPLETENESS = "completeness"
    VALIDITY = "validity"
    UNIQUENESS = "uniqueness"
    CONSISTENCY = "consistency"
    TIMELINESS = "timeliness"
    VOLUME = "volume"


class RuleType(StrEnum):
    MISSING = "missing"
    DUPLICATE = "duplicate"
    RANGE = "range"
    ACCEPTED_VALUES = "accepted_values"
    REGEX = "regex"
    FRESHNESS = "freshness"
    VOLUME = "volume"
    SCHEMA = "schema"
    REFERENTIAL = "referential"
    CUSTOM_SQL = "custom_sql"
    DRIFT = "drift"


DEFAULT_DIMENSION: dict[RuleType, Dimension] = {
    RuleType.MISSING: Dimension.COMPLETENESS,
    RuleType.DUPLICATE: Dimension.UNIQUENESS,
    RuleType.RANGE: Dimension.VALIDITY,
    RuleType.ACCEPTED_VALUES: Dimension.VALIDITY,
    RuleType.REGEX: Dimension.VALIDITY,
    RuleType.FRESHNESS: Dimension.TIMELINESS,
    RuleType.VOLUME: Dimension.VOLUME,
    RuleType.SCHEMA: Dimension.VALIDITY,
    RuleType.REFERENTIAL: Dimension.CONSISTENCY,
    RuleType.CUSTOM_SQL: Dimension.VALIDITY,
    RuleType.DRIFT: Dimension.CONSISTENCY,
}
AGGREGATE_TYPES = frozenset({RuleType.FRESHNESS, RuleType.DRIFT})  # scored 0/1, not passing/total
# Rules a single event can be checked against (POST /v1/quality/validate with events).
ROW_TYPES = frozenset(
    {
        RuleType.MISSING,
        RuleType.RANGE,
        RuleType.ACCEPTED_VALUES,
        RuleType.REGEX,
        RuleType.CUSTOM_SQL,
    }
)

Bound = Annotated[float, Field(strict=True, ge=-BOUND, le=BOUND, allow_inf_nan=False)]
# Strict: JSON true/false and numeric strings are refused, not coerced (ints are numbers).


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=RULE_NAME, description="Unique within the project.")
    description: str = Field(default="", max_length=2000)
    dataset: str = Field(
        default="events",
        pattern=EVENT_NAME,
        description="'events' (every event of the project) or one event name.",
    )
    pipeline: str | None = Field(
        default=None, pattern=SLUG, description="Only events of this pipeline (null: any)."
    )
    severity: Literal["warning", "critical"] = "warning"
    mostly: float = Field(
        default=1.0,
        strict=True,
        ge=0.0,
        le=1.0,
        description="Row-level rules pass when passing/total rows >= mostly (ignored by "
        "freshness, which passes or fails as a whole).",
    )
    enabled: StrictBool = True
    dimension: Dimension | None = Field(
        default=None, description="The quality dimension it scores (null: the type's default)."
    )
    weight: float = Field(
        default=1.0, strict=True, gt=0, le=1000, description="Weight in its dimension."
    )

    @property
    def kind(self) -> RuleType:
        return RuleType(getattr(self, "type"))  # noqa: B009 - every subclass declares it

    @property
    def scored_dimension(self) -> Dimension:
        return self.dimension or DEFAULT_DIMENSION[self.kind]

    @property
    def events_filter(self) -> str | None:
        """The event name the dataset is restricted to (None: all events)."""
        return None if self.dataset == "events" else self.dataset


class _ColumnRule(_Rule):
    column: str = Field(
        pattern=COLUMN,
        description="An envelope column (user_id, cart_id, session_id, event_id, event, "
        "pipeline_id, timestamp, received_at) or a property path properties.<name>[.<name>].",
    )


class MissingRule(_ColumnRule):
    """Rows whose column is null, absent or '' fail (missing %)."""

    type: Literal["missing"]


class DuplicateRule(_ColumnRule):
    """Of the rows with a value, each repeat of an earlier value fails (duplicate %)."""

    type: Literal["duplicate"]


class RangeRule(_ColumnRule):
    """Rows with a value pass when it is a number within [min, max] (inclusive)."""

    type: Literal["range"]
    min: Bound | None = None
    max: Bound | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RangeRule:
        if self.min is None and self.max is None:
            raise ValueError("a range rule needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self


class AcceptedValuesRule(_ColumnRule):
    """Rows with a value pass when its text is one of ``values``."""

    type: Literal["accepted_values"]
    values: list[Annotated[str, Field(max_length=1000)]] = Field(
        min_length=1, max_length=MAX_VALUES
    )


class RegexRule(_ColumnRule):
    """Rows with a value pass when its text fully matches ``pattern`` (RE2 syntax)."""

    type: Literal["regex"]
    pattern: str = Field(min_length=1, max_length=1000)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        if re.search(r"\(\?<?[=!]|\\[1-9]", value):
            raise ValueError("lookarounds and backreferences are not supported (RE2 syntax)")
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class FreshnessRule(_Rule):
    """Passes when the newest event of the window is at most ``max_age_seconds`` old at the
    end of the window (fails when the window has no event)."""

    type: Literal["freshness"]
    max_age_seconds: int = Field(strict=True, ge=1, le=366 * 86_400)


class VolumeRule(_Rule):
    """Each complete ``interval_seconds`` interval of the window is a row: it passes when its
    event count is within [min, max] and, with ``baseline: seasonal``, when it is not an
    anomaly against the same interval of the week in the ``baseline_weeks`` weeks before
    (median and MAD, modified z beyond ``z_threshold``: model/anomaly.py); an interval
    without events counts 0."""

    type: Literal["volume"]
    interval_seconds: int = Field(default=3600, strict=True, ge=60, le=7 * 86_400)
    min: Annotated[int, Field(strict=True, ge=0, le=10**15)] | None = None
    max: Annotated[int, Field(strict=True, ge=0, le=10**15)] | None = None
    baseline: Literal["bounds", "seasonal"] = "bounds"
    baseline_weeks: int = Field(default=3, strict=True, ge=2, le=12)
    z_threshold: float = Field(default=3.5, strict=True, gt=0, le=100, allow_inf_nan=False)
    min_band_ratio: float = Field(default=0.1, strict=True, ge=0, le=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _bounds(self) -> VolumeRule:
        if self.baseline == "seasonal":
            if (7 * 86_400) % self.interval_seconds:
                raise ValueError("a seasonal volume rule needs an interval that divides a week")
        elif self.min is None and self.max is None:
            raise ValueError("a volume rule needs min, max or both (or baseline: seasonal)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self


class SchemaRule(_Rule):
    """Events arriving in the window are rows; each dead letter (a rejected event) fails and
    each accepted event passes: the pass fraction is 1 - the schema violation rate."""

    type: Literal["schema"]


class ReferentialRule(_ColumnRule):
    """Rows of the dataset with a value in ``column`` pass when an event ``parent_event`` of
    the project has the same value in ``parent_column`` at or before the row's event time."""

    type: Literal["referential"]
    parent_event: str = Field(pattern=EVENT_NAME)
    parent_column: str | None = Field(
        default=None, pattern=COLUMN, description="Null: the same as column."
    )


class CustomSqlRule(_Rule):
    """Rows pass when ``predicate`` (one boolean SQL expression over the event's columns and
    properties.<name>) is true; null counts as false."""

    type: Literal["custom_sql"]
    predicate: str = Field(min_length=1, max_length=2000)

    @field_validator("predicate")
    @classmethod
    def _safe(cls, value: str) -> str:
        check_predicate(value)
        return value


class DriftRule(_ColumnRule):
    """A numeric column's distribution in the window against the ``reference_days`` before
    it: bins cut at the reference's ``bins``-quantiles, then PSI or Jensen-Shannon distance
    of the two binned shares (model/drift.py); fails at ``threshold`` or more (PSI 0.25:
    "significant", 0.1 would be a warning; JS 0.1 — reference A.5)."""

    type: Literal["drift"]
    metric: Literal["psi", "js"] = "psi"
    threshold: float = Field(default=0.25, strict=True, gt=0, le=100, allow_inf_nan=False)
    reference_days: int = Field(default=7, strict=True, ge=1, le=365)
    bins: int = Field(default=10, strict=True, ge=2, le=50)


QualityRule = Annotated[
    MissingRule
    | DuplicateRule
    | RangeRule
    | AcceptedValuesRule
    | RegexRule
    | FreshnessRule
    | VolumeRule
    | SchemaRule
    | ReferentialRule
    | CustomSqlRule
    | DriftRule,
    Field(discriminator="type"),
]


class QualityConfig(BaseModel):
    """A project's quality rules (the ``quality`` section of the config snapshot)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: list[QualityRule] = Field(default_factory=list, max_length=MAX_RULES)

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[QualityRule]) -> list[QualityRule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"the rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return rules

    def rule(self, name: str) -> QualityRule | None:
        return next((r for r in self.rules if r.name == name), None)
