"""The audit trail: every change to the configuration, keys and deployments, every export
and report download, appended to hash-chained logs (docs/compliance.md)."""
