"""The one permission matrix of the service. docs/auth.md shows it as a table (a test keeps
the two equal). Every route declares the Permission it needs."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    DEVELOPER = "developer"
    INGEST = "ingest"
    SERVICE = "service"
    ANALYST = "analyst"
    COMPLIANCE = "compliance"


class Permission(StrEnum):
    PROJECTS_MANAGE = "projects:manage"  # create projects; global admins only
    PROJECT_READ = "project:read"
    CONFIG_READ = "config:read"
    CONFIG_WRITE = "config:write"
    DEPLOY = "deploy"
    KEYS_MANAGE = "keys:manage"
    EVENTS_WRITE = "events:write"
    FEATURES_READ = "features:read"
    ANALYTICS_READ = "analytics:read"
    EXPORT_READ = "export:read"
    GDPR_MANAGE = "gdpr:manage"
    AUDIT_READ = "audit:read"


_ALL_ROLES = frozenset(Role)

MATRIX: dict[Permission, frozenset[Role]] = {
    Permission.PROJECTS_MANAGE: frozenset({Role.ADMIN}),
    Permission.PROJECT_READ: _ALL_ROLES,
    Permission.CONFIG_READ: frozenset({Role.ADMIN, Role.DEVELOPER, Role.SERVICE, Role.ANALYST}),
    Permission.CONFIG_WRITE: frozenset({Role.ADMIN, Role.DEVELOPER}),
    Permission.DEPLOY: frozenset({Role.ADMIN, Role.DEVELOPER}),
    Permission.KEYS_MANAGE: frozenset({Role.ADMIN}),
    Permission.EVENTS_WRITE: frozenset({Role.ADMIN, Role.INGEST}),
    Permission.FEATURES_READ: frozenset({Role.ADMIN, Role.DEVELOPER, Role.SERVICE}),
    Permission.ANALYTICS_READ: frozenset({Role.ADMIN, Role.ANALYST}),
    Permission.EXPORT_READ: frozenset({Role.ADMIN, Role.ANALYST}),
    Permission.GDPR_MANAGE: frozenset({Role.ADMIN, Role.COMPLIANCE}),
    Permission.AUDIT_READ: frozenset({Role.ADMIN, Role.COMPLIANCE}),
}

# Permissions that only a credential not bound to one project (a global admin) may use.
GLOBAL_ONLY: frozenset[Permission] = frozenset({Permission.PROJECTS_MANAGE})


def allows(roles: frozenset[Role], permission: Permission) -> bool:
    return not roles.isdisjoint(MATRIX[permission])
