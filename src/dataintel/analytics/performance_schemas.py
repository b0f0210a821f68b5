"""Response models of ``GET /v1/analytics/performance`` (model performance per version)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class Interval(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class BinStrategy(StrEnum):
    UNIFORM = "uniform"
    QUANTILE = "quantile"


class Scores(BaseModel):
    predictions: int = Field(description="Predictions joined to a known outcome.")
    positives: int = Field(description="Of those, carts purchased within the horizon.")
    base_rate: float | None
    roc_auc: float | None = Field(description="Null when only one class is present.")
    pr_auc: float | None = Field(description="Average precision (scikit-learn's definition).")
    brier: float | None
    log_loss: float | None


class CalibrationBin(BaseModel):
    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_rate: float


class RocPointRead(BaseModel):
    fpr: float = Field(description="False positive rate.")
    tpr: float = Field(description="True positive rate (recall).")
    threshold: float | None = Field(description="Probabilities at or above it count as positive.")


class TopRead(BaseModel):
    percent: float
    count: int = Field(description="ceil(percent x predictions / 100) highest probabilities.")
    threshold: float | None = Field(description="The lowest probability in the top.")
    precision: float | None
    recall: float | None
    lift: float | None = Field(description="precision / base_rate.")


class PointRead(Scores):
    start: datetime = Field(description="Start of the interval (UTC), by prediction time.")


class ModelPerformance(Scores):
    model_version: str | None = Field(description="Null: predictions without a version.")
    pending: int = Field(description="Predictions whose horizon has not ended (left out).")
    invalid: int = Field(description="Predictions without a probability in [0, 1] (left out).")
    roc: list[RocPointRead] = Field(
        description="ROC curve: scikit-learn's roc_curve (no dropped points), at most 200 of "
        "its points, evenly spaced; empty with one class only."
    )
    calibration: list[CalibrationBin]
    top: list[TopRead]
    series: list[PointRead]


class PerformanceRead(BaseModel):
    project_id: str
    from_: datetime = Field(alias="from")
    to: datetime
    horizon: str
    interval: Interval
    bins: int
    strategy: BinStrategy
    purchase_event: str
    models: list[ModelPerformance]

    model_config = {"populate_by_name": True}
