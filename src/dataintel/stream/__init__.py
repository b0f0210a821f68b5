"""The stream processor: consumes the EventLog in micro-batches into the sinks, exactly once."""
