"""Blobs on the wire and on disk: msgpack (exact float64, compact, and the format Redis'
Lua ``cmsgpack`` reads and writes)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import msgpack

Blob = dict[str, Any]


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
    """Decoded blobs by their exact bytes, least recently used first out, bounded by bytes.

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
                self._size += len(data)
                while self._size > self._max:
                    old, _ = self._blobs.popitem(last=False)
                    self._size -= len(old)
        return blob
