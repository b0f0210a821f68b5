"""Anomaly detection payloads: the verdicts on metric buckets."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

VerdictStatus = Literal["ok", "anomaly", "not_evaluated", "low_volume"]


class EvaluationRead(BaseModel):
    metric: str = Field(description="e.g. volume:view, revenue, null_rate:view.item_id.")
    bucket: datetime = Field(description="The start of the judged bucket (UTC).")
    value: float | None
    status: VerdictStatus = Field(
        description="not_evaluated: fewer baseline points than the warm-up; low_volume: "
        "the baseline's median support is under min_volume."
    )
    expected: float | None = Field(description="The baseline median.")
    spread: float | None = Field(description="The MAD used (after the minimum band).")
    score: float | None = Field(description="The modified z: 0.6745 (value - median) / MAD.")
    baseline: int = Field(description="Points in the baseline.")
    evaluated_at: datetime


class EvaluationPage(BaseModel):
    evaluations: list[EvaluationRead] = Field(description="Newest bucket first.")
