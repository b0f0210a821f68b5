"""Blobs on the wire and on disk: msgpack (exact float64, compact, and the format Redis'
Lua ``cmsgpack`` reads and writes)."""

from __future__ import annotations

from typing import Any

import msgpack

Blob = dict[str, Any]


def pack(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, strict_map_key=False, raw=False)


def unpack_blob(data: bytes) -> Blob:
    """A blob; Lua writes an empty map as an empty array, so normalise those."""
    blob = unpack(data)
    tiles = blob.get("t")
    if not isinstance(tiles, dict):
        blob["t"] = {}
    else:
        for level, found in list(tiles.items()):
            if not isinstance(found, dict) or not found:
                del tiles[level]
    blob.setdefault("b", None)
    blob.setdefault("e", None)
    blob.setdefault("l", None)
    return dict(blob)


def copy_blob(blob: Blob) -> Blob:
    """A copy ``tiles.apply_partial`` may change while readers keep the original (states are
    never mutated in place, only replaced)."""
    return {
        "t": {level: dict(found) for level, found in blob["t"].items()},
        "b": blob.get("b"),
        "e": blob.get("e"),
        "l": blob.get("l"),
    }
