"""Who is calling: the result of authentication, checked by authorization."""

from __future__ import annotations

from dataclasses import dataclass

from dataintel.auth.permissions import GLOBAL_ONLY, Permission, Role, allows


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str  # "key:<id>" or "jwt:<sub>"
    roles: frozenset[Role]
    projects: frozenset[str] | None  # None: every project (a global credential)
    key_id: str | None = None
    pipeline_id: str | None = None  # an ingest key bound to one pipeline (/v1/events)
    # The rate-limit bucket; defaults to ``subject`` (an API key id is unique already). A JWT
    # sets it to issuer + projects + subject: two tenants' tokens may share a ``sub``.
    rate_limit_key: str | None = None

    @property
    def is_global(self) -> bool:
        return self.projects is None

    def sees_project(self, project_id: str) -> bool:
        return self.projects is None or project_id in self.projects

    def can(self, permission: Permission) -> bool:
        if permission in GLOBAL_ONLY and not self.is_global:
            return False
        return allows(self.roles, permission)

    @property
    def rate_limit_id(self) -> str:
        return self.rate_limit_key or self.subject
