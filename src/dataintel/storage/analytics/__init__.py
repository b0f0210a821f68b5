"""AnalyticsStore port and adapters: DuckDB (embedded default) and ClickHouse (chDB, server)."""
