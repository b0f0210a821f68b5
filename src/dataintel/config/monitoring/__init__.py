"""The monitoring settings of a project (draft config): alert webhook, anomaly detection and
drift thresholds (docs/quality.md)."""
