"""Responses of the audit routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEntryRead(BaseModel):
    chain: str = Field(description="The project id, or `_global`.")
    seq: int = Field(description="1, 2, 3, … within the chain.")
    at: datetime
    actor: str = Field(description="Who: `key:<id>`, `jwt:<subject>`, `cli`.")
    action: str = Field(description="What: the route's name (e.g. `create_key`), or an act.")
    target: str | None = Field(description="Which: the route's path parameters.")
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    chain: str
    entries: list[AuditEntryRead]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null when this page is the last."
    )


class ChainProblem(BaseModel):
    seq: int
    problem: str


class AuditVerification(BaseModel):
    chain: str
    valid: bool
    entries: int = Field(description="Entries read.")
    head_seq: int | None = Field(description="The last entry the chain's head records.")
    head_hash: str | None
    problems: list[ChainProblem] = Field(description="Each broken link, by seq.")
