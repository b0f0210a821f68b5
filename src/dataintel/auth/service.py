"""API key lifecycle: create (shown once), list, revoke."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import event
from sqlalchemy.orm import Session

from dataintel.auth import repository
from dataintel.auth.key_cache import KEY_CACHE
from dataintel.auth.permissions import Role
from dataintel.auth.principal import Principal
from dataintel.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from dataintel.auth.tokens import display_prefix, new_key
from dataintel.errors import Forbidden, InvalidInput, NotFound
from dataintel.storage.metadata.models import ApiKey, Pipeline, Project
from dataintel.storage.metadata.types import utcnow


def to_read(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=key.id,
        name=key.name,
        project_id=key.project_id,
        pipeline_id=key.pipeline_id,
        roles=[Role(r) for r in key.roles],
        prefix=display_prefix(key.id),
        created_by=key.created_by,
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
    )


class ApiKeyService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, data: ApiKeyCreate, by: Principal) -> ApiKeyCreated:
        if data.project_id is None:
            if not by.is_global:
                raise Forbidden("only a global admin may create a key for every project")
        elif not by.sees_project(data.project_id) or not self.session.get(Project, data.project_id):
            raise NotFound(f"project '{data.project_id}' not found")
        if data.expires_at is not None and data.expires_at <= utcnow():
            raise InvalidInput.field(["body", "expires_at"], "must be in the future")
        if data.pipeline_id is not None and (
            data.project_id is None
            or not self.session.get(Pipeline, (data.project_id, data.pipeline_id))
        ):
            raise InvalidInput.field(
                ["body", "pipeline_id"], "no such pipeline in the key's project"
            )
        return self.mint(data.name, data.project_id, data.roles, by.subject, data)

    def mint(
        self,
        name: str,
        project_id: str | None,
        roles: Sequence[Role],
        created_by: str,
        data: ApiKeyCreate | None = None,
    ) -> ApiKeyCreated:
        key_id, secret, hashed = new_key()
        row = ApiKey(
            id=key_id,
            project_id=project_id,
            name=name,
            roles=sorted({str(r) for r in roles}),
            secret_hash=hashed,
            created_by=created_by,
            created_at=utcnow(),
            expires_at=data.expires_at if data else None,
            pipeline_id=data.pipeline_id if data else None,
        )
        repository.add_key(self.session, row)
        return ApiKeyCreated(**to_read(row).model_dump(), key=secret)

    def list(
        self, by: Principal, project_id: str | None, include_revoked: bool
    ) -> list[ApiKeyRead]:
        rows = repository.list_keys(self.session, by.projects, project_id, include_revoked)
        return [to_read(k) for k in rows]

    def revoke(self, key_id: str, by: Principal) -> ApiKeyRead:
        key = repository.get_key(self.session, key_id)
        visible = key is not None and (
            by.is_global or (key.project_id is not None and by.sees_project(key.project_id))
        )
        if key is None or not visible:
            raise NotFound(f"API key '{key_id}' not found")
        repository.revoke(key, utcnow())
        event.listen(
            self.session, "after_commit", lambda _s: KEY_CACHE.evict_key(key_id), once=True
        )
        return to_read(key)

    def rotate_named(self, name: str, project_id: str | None, roles: Sequence[Role]) -> str:
        """Revoke the live keys called ``name`` and mint a fresh one (used by the CLI)."""
        for key in repository.keys_named(self.session, name, project_id):
            repository.revoke(key, utcnow())
            KEY_CACHE.evict_key(key.id)
        return self.mint(name, project_id, roles, "cli").key
