"""A project's monitoring settings (the ``monitoring`` section of the deployed config):
where alert notifications go, how anomalies are detected on its hourly metrics, and the
drift thresholds of its features. Defaults and where each comes from: docs/quality.md
(reference A.4, A.5, A.9: Elementary, Soda, Iglewicz-Hoaglin, Evidently, PSI conventions).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

Seasonality = Literal["hour_of_week", "hour_of_day", "none"]
Direction = Literal["both", "drop", "spike"]
MetricKind = Literal[
    "volume",
    "revenue",
    "conversion_rate",
    "abandonment_rate",
    "null_rate",
    "mean",
    "rejection_rate",
]
ALL_METRICS: tuple[MetricKind, ...] = (
    "volume",
    "revenue",
    "conversion_rate",
    "abandonment_rate",
    "null_rate",
    "mean",
    "rejection_rate",
)


class AnomalySettings(BaseModel):
    """Seasonal robust detection on hourly metric buckets (docs/quality.md, "Anomalies")."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    enabled: StrictBool = True
    metrics: list[MetricKind] = Field(
        default=list(ALL_METRICS), max_length=7, description="The metric families watched."
    )
    bucket_hours: Literal[1, 2, 3, 4, 6, 8, 12, 24] = Field(
        default=1,
        description="The length of a metric bucket (UTC, aligned to the epoch). A bucket is "
        "judged by the first run after it ends; a small shop whose hours are too noisy "
        "judges 24-hour buckets.",
    )
    seasonality: Seasonality = Field(
        default="hour_of_week",
        description="Which past buckets form the baseline of a bucket: the same hour of the "
        "week, the same hour of the day, or every past hour (Elementary's seasonality).",
    )
    training_days: int = Field(
        default=21, ge=1, le=365, description="How far back the baseline reaches (3 weeks)."
    )
    warmup: int = Field(
        default=14,
        ge=2,
        le=1000,
        description="Baseline points needed before a metric may alert (not_evaluated before).",
    )
    threshold: float = Field(
        default=3.5,
        gt=0,
        le=100,
        description="|modified z| above which a bucket is anomalous (Iglewicz-Hoaglin 3.5); "
        "beyond 1.2 x threshold the alert is critical (Soda's warning_ratio 0.1).",
    )
    min_volume: int = Field(
        default=10,
        ge=0,
        le=10**9,
        description="A metric is judged only when the median of the events behind it in its "
        "baseline buckets (the count, or a rate's denominator) reaches this.",
    )
    min_band_ratio: float = Field(
        default=0.001,
        ge=0,
        le=1,
        description="The spread never counts as less than this share of the median (Soda "
        "min_confidence_interval_ratio), nor less than one unit (1 event, 1 currency unit, "
        "0.01 for a rate): a constant series does not alert on decimals.",
    )
    cooldown_hours: int = Field(
        default=6,
        ge=0,
        le=24 * 30,
        description="After an anomaly alert resolves, the same metric opens no new alert for "
        "this long (no flapping).",
    )
    direction: Direction = Field(default="both", description="Which deviations alert.")

    @field_validator("metrics")
    @classmethod
    def _distinct(cls, value: list[MetricKind]) -> list[MetricKind]:
        if len(set(value)) != len(value):
            raise ValueError("lists a metric twice")
        return value


class DriftSettings(BaseModel):
    """Feature drift against a reference window (docs/quality.md, "Drift")."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    enabled: StrictBool = True
    reference_days: int = Field(
        default=7, ge=1, le=365, description="The reference: the days before the current one."
    )
    bins: int = Field(
        default=10, ge=2, le=100, description="Quantile bins of the reference (PSI and JS)."
    )
    psi_warning: float = Field(default=0.1, gt=0, le=100, description="PSI warn threshold.")
    psi_critical: float = Field(default=0.25, gt=0, le=100, description="PSI critical.")
    js_warning: float = Field(
        default=0.1, gt=0, le=1, description="Jensen-Shannon distance (base 2) warn threshold."
    )
    min_rows: int = Field(
        default=100, ge=1, le=10**9, description="Values needed on each side to judge drift."
    )


class MonitoringSettings(BaseModel):
    """The ``monitoring`` section of a project's config."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        description="Where alert notifications are POSTed (signed; null: none are sent).",
    )
    webhook_secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="The HMAC-SHA256 key of the X-Dataintel-Signature header of notifications.",
    )
    anomalies: AnomalySettings = AnomalySettings()
    drift: DriftSettings = DriftSettings()
