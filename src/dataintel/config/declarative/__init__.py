"""declarative."""
