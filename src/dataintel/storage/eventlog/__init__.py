"""EventLog port and adapters: SQLite WAL (embedded default) and Kafka (aiokafka)."""
