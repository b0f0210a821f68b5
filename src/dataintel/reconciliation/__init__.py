"""Reconciliation: per project and day, the counts of the event log, the analytics store and
the online store compared, the platform's events cross-checked, and a store that lost
events or entity state repaired by replay from the log (docs/reconciliation.md)."""
