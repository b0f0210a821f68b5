"""GDPR: forget (erasure in every store, suppression at ingest), subject export, status."""
