"""Exports: events (and later features, predictions) streamed in NDJSON, CSV or Parquet."""
