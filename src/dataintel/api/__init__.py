"""Cross-cutting HTTP: dependencies, auth, problem+json errors, middleware, health, metrics."""
