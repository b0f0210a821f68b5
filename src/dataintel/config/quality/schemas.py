"""Quality-rule payloads: the model's QualityConfig and rules with their per-type checks."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from dataintel.model.quality import QualityConfig, QualityRule


class QualityReplace(QualityConfig):
    """PUT: every rule of the project (rules not listed are removed from the draft)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class QualityRead(QualityConfig):
    project_id: str = Field(description="The project these (draft) rules belong to.")


class QualityRuleRead(BaseModel):
    project_id: str
    rule: QualityRule
