"""API key payloads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from dataintel.api.types import AwareUtcTime, UtcTime
from dataintel.auth.permissions import Permission, Role


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="What the key is for.")
    project_id: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="The one project the key may touch; null: every project (global admins only).",
    )
    roles: list[Role] = Field(min_length=1, max_length=6)
    expires_at: AwareUtcTime | None = None
    pipeline_id: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="For ingest keys: the pipeline POST /v1/events writes to (a pipeline of "
        "project_id). Without it /v1/events needs the project to have exactly one deployed "
        "pipeline.",
    )


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    project_id: str | None
    pipeline_id: str | None = None
    roles: list[Role]
    prefix: str = Field(description="The key's visible start, to recognise it.")
    created_by: str
    created_at: UtcTime
    expires_at: UtcTime | None
    revoked_at: UtcTime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret key. Shown once: it is stored only as a hash.")


class CallerRead(BaseModel):
    """The calling credential, as authorization sees it (what a client may show or offer)."""

    subject: str = Field(description='"key:<id>" for an API key, "jwt:<sub>" for a JWT.')
    roles: list[Role]
    permissions: list[Permission] = Field(description="What these roles grant (docs/auth.md).")
    projects: list[str] | None = Field(
        description="The projects the credential is bound to; null: every project (global)."
    )
