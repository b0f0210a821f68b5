"""Event ingestion: HTTP request -> validation -> EventLog (and the dead-letter store)."""
