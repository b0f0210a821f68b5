"""Blobs on the wire and on disk: msgpack (exact float64, compact, and the format Redis'
Lua ``cmsgpack`` reads and writes)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import msgpack

Blob = dict[str, Any]

# What a decoded blob holds in memory, estimated (measured on the serving bench's blobs with
# tracemalloc: ~119 bytes per tile with the blob's dicts): the caches of both online stores
# are bounded by this estimate, so ``cache_mb`` means megabytes of this process's memory.
DEFAULT_CACHE_MB = 256
BLOB_BYTES = 600
TILE_BYTES = 112


def blob_bytes(blob: Blob) -> int:
    """The estimated memory of a decoded blob."""
    return BLOB_BYTES + TILE_BYTES * sum(len(found) for found in blob["t"].values())


def pack(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, strict_map_key=False, raw=False)


def unpack_blob(data: bytes) -> Blob:
    """A blob, normalised: Lua's cmsgpack writes an empty table as an empty array and a table
    whose keys are exactly 1..n (tile starts, in tests with tiny timestamps) as an array."""
    blob = unpack(data)
    tiles = blob.get("t")
    levels: dict[str, dict[int, Any]] = {}
    if isinstance(tiles, dict):
        for level, found in tiles.items():
            if isinstance(found, list):
                found = dict(enumerate(found, start=1))
            if found:
                levels[level] = found
    return {"t": levels, "b": blob.get("b"), "e": blob.get("e"), "l": blob.get("l")}


def copy_blob(blob: Blob) -> Blob:
    """A copy ``tiles.apply_partial`` may change while readers keep the original (states are
    never mutated in place, only replaced)."""
    return {
        "t": {level: dict(found) for level, found in blob["t"].items()},
        "b": blob.get("b"),
        "e": blob.get("e"),
        "l": blob.get("l"),
    }


class DecodeCache:
    """Decoded blobs by their exact bytes, least recently used first out, bounded by memory
    (the key's bytes plus ``blob_bytes`` of the decoded blob).

    A hot entity's blobs change only when its events arrive, so most reads fetch bytes that
    were decoded moments ago: looking them up costs a hash of the bytes instead of a decode
    (~10x less). Equal bytes decode to equal blobs, so a hit is always right; the blobs are
    shared, so callers treat them as read-only (as with the embedded store's cache).
    """

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._size = 0
        self._blobs: OrderedDict[bytes, Blob] = OrderedDict()
        self._lock = threading.Lock()

    def decode(self, data: bytes) -> Blob:
        if self._max <= 0:
            return unpack_blob(data)
        with self._lock:
            blob = self._blobs.get(data)
            if blob is not None:
                self._blobs.move_to_end(data)
                return blob
        blob = unpack_blob(data)
        with self._lock:
            if data not in self._blobs:
                self._blobs[data] = blob
                self._size += len(data) + blob_bytes(blob)
                while self._size > self._max:
                    old, gone = self._blobs.popitem(last=False)
                    self._size -= len(old) + blob_bytes(gone)
        return blob
