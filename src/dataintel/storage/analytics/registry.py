"""Open the AnalyticsStore named by a URL; each engine's driver is imported only when used.

- ``duckdb:///abs/path/analytics.duckdb`` (embedded default; ``duckdb://:memory:`` for tests)
- ``chdb:///abs/path/dir[?database=name]`` (ClickHouse in-process; one data dir per process)
- ``clickhouse://[user[:password]@]host[:8123]/db[?secure=true]`` (a ClickHouse server)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from dataintel.storage.analytics.port import AnalyticsStore

_PACKAGES = {"duckdb": "duckdb", "chdb": "chdb", "clickhouse": "clickhouse-connect"}


def open_analytics(url: str) -> AnalyticsStore:
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme not in _PACKAGES:
        raise ValueError(
            f"unsupported analytics_url scheme {scheme!r} (duckdb://, chdb://, clickhouse://)"
        )
    try:
        if scheme == "duckdb":
            return _duckdb(parts.netloc + parts.path, parts.query)
        if scheme == "chdb":
            return _chdb(parts.netloc + parts.path, parts.query)
        return _clickhouse(url)
    except ModuleNotFoundError as exc:
        package = _PACKAGES[scheme]
        raise RuntimeError(
            f"the {scheme} analytics store needs the {package!r} package: "
            f"pip install '{package}' ({exc})"
        ) from exc


def _duckdb(path: str, query: str) -> AnalyticsStore:
    from dataintel.storage.analytics.duckdb import DuckDBAnalytics

    limit = parse_qs(query).get("memory_limit", [None])[0]
    return DuckDBAnalytics(unquote(path) or ":memory:", memory_limit=limit)


def _chdb(path: str, query: str) -> AnalyticsStore:
    from dataintel.storage.analytics.clickhouse import ClickHouseAnalytics
    from dataintel.storage.analytics.clickhouse_engines import ChdbEngine

    if not path:
        raise ValueError("chdb:// needs a data directory: chdb:///abs/path/dir")
    database = parse_qs(query).get("database", ["dataintel"])[0]
    return ClickHouseAnalytics(ChdbEngine(unquote(path), database))


def _clickhouse(url: str) -> AnalyticsStore:
    from dataintel.storage.analytics.clickhouse import ClickHouseAnalytics
    from dataintel.storage.analytics.clickhouse_engines import ServerEngine

    return ClickHouseAnalytics(ServerEngine(**clickhouse_client_args(url)))


def clickhouse_client_args(url: str) -> dict[str, Any]:
    """``clickhouse://user:password@host:port/db?secure=true`` → clickhouse-connect arguments."""
    parts = urlsplit(url)
    options = {key: values[0] for key, values in parse_qs(parts.query).items()}
    secure = options.get("secure", "false").lower() in {"1", "true", "yes"}
    return {
        "host": parts.hostname or "localhost",
        "port": parts.port or (8443 if secure else 8123),
        "username": unquote(parts.username or "default"),
        "password": unquote(parts.password or ""),
        "database": parts.path.strip("/") or "default",
        "secure": secure,
    }
