"""Open the OnlineStore named by a URL; the Redis driver is imported only when used.

- ``sqlite:///abs/path/online.db[?cache_mb=256]`` (embedded default: in-process cache of
  decoded entities over SQLite, bounded by their estimated memory; ``sqlite://:memory:`` for
  tests)
- ``redis://[user:password@]host:6379/0[?prefix=name&decode_cache_mb=256&<redis-py options>]``
  (one hash per entity, Lua apply, TTL; ``rediss://`` for TLS; ``decode_cache_mb=0`` turns
  the cache of decoded blobs off)
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from dataintel.storage.online.codec import DEFAULT_CACHE_MB
from dataintel.storage.online.port import OnlineStore

DEFAULT_PREFIX = "dataintel"


def open_online(url: str, ttl_seconds: int) -> OnlineStore:
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    if parts.scheme == "sqlite":
        from dataintel.storage.online.sqlite import SQLiteOnline

        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ValueError("sqlite:// needs a file: sqlite:///abs/path/online.db")
        return SQLiteOnline(path, ttl_seconds, cache_bytes=_megabytes(options, "cache_mb"))
    if parts.scheme in ("redis", "rediss"):
        try:
            from dataintel.storage.online.redis import RedisOnline
        except ModuleNotFoundError as exc:  # pragma: no cover - redis is a core dependency
            raise RuntimeError(
                f"the Redis online store needs 'redis': pip install redis ({exc})"
            ) from exc
        prefix = options.pop("prefix", DEFAULT_PREFIX)
        cache_bytes = _megabytes(options, "decode_cache_mb")
        options.pop("decode_cache_mb", None)
        client_url = urlunsplit(parts._replace(query=urlencode(options)))
        return RedisOnline(client_url, prefix, ttl_seconds, decode_cache_bytes=cache_bytes)
    raise ValueError(f"unsupported online_url scheme {parts.scheme!r} (sqlite://, redis://)")


def _megabytes(options: dict[str, str], name: str) -> int:
    """The cache bound ``name`` of the URL's options (megabytes, default DEFAULT_CACHE_MB)
    in bytes."""
    text = options.get(name, str(DEFAULT_CACHE_MB))
    try:
        megabytes = float(text)
    except ValueError:
        raise ValueError(f"online_url option {name}={text!r} must be a number of MB") from None
    return int(megabytes * (1 << 20))
