"""Authentication (API keys, JWT) and authorization (roles, permissions, tenancy)."""
