"""The OnlineStore port and its adapters (embedded SQLite, Redis)."""
