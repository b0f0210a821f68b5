"""Open the OnlineStore named by a URL; the Redis driver is imported only when used.

- ``sqlite:///abs/path/online.db`` (embedded default: in-process cache over SQLite)
- ``redis://host:6379/0[?prefix=name]`` (one hash per entity, Lua apply, TTL)
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from dataintel.storage.online.port import OnlineStore


def open_online(url: str, ttl_seconds: int) -> OnlineStore:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        from dataintel.storage.online.sqlite import SQLiteOnline

        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ValueError("sqlite:// needs a file: sqlite:///abs/path/online.db")
        return SQLiteOnline(path, ttl_seconds)
    if parts.scheme in ("redis", "rediss"):
        try:
            from dataintel.storage.online.redis import RedisOnline
        except ModuleNotFoundError as exc:  # pragma: no cover - redis is a core dependency
            raise RuntimeError(f"the Redis online store needs 'redis': {exc}") from exc
        prefix = parse_qs(parts.query).get("prefix", ["dataintel"])[0]
        base = url.split("?", 1)[0]
        return RedisOnline(base, prefix, ttl_seconds)
    raise ValueError(f"unsupported online_url scheme {parts.scheme!r} (sqlite://, redis://)")
