"""Rejected events: stored with their reasons, listed, and replayed after a schema fix."""
