"""Strict JSON request bodies for the config plane (projects, pipelines, features,
deployments, API keys, dead-letter replay): one mechanism, a route class.

Before FastAPI parses a body into its model, ``StrictJSONRoute`` reads it once more with
``json`` and an ``object_pairs_hook`` and refuses, as a 422 naming the field:

- a key repeated within one object (``{"roles": ["ingest"], "roles": ["admin"]}``):
  parsers disagree on which one wins (Python and orjson keep the last, others the first), so
  a body that means two things to two readers is refused rather than read last-wins;
- a NUL character (U+0000) in any string, key or value: PostgreSQL text and JSONB cannot
  hold it, and no name, description or message needs it (refused on SQLite too, so a
  config is portable between the two stores).

The cost (a second parse of a config body, at most a few kB) is paid on the config plane
only; the ingest routes read their bodies raw and have their own rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from dataintel.errors import InvalidInput


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _nul_pointer(value: Any, path: list[str | int]) -> list[str | int] | None:
    """The location of the first string (or key) holding a NUL character, else None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return [*path, key]
            found = _nul_pointer(item, [*path, key])
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_pointer(item, [*path, index])
            if found is not None:
                return found
    return None


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True  # FastAPI reads a body without a Content-Type as JSON too
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def check_body(raw: bytes) -> None:
    """Raise InvalidInput for a duplicate key or a NUL character. Syntax errors are left to
    FastAPI's own parse (which reports them as it always has)."""
    try:
        parsed = json.loads(raw, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as dup:
        raise InvalidInput.field(
            ["body", dup.key],
            f"duplicate key '{dup.key}': each key may appear once per object",
            "duplicate_key",
        ) from None
    except ValueError:  # not JSON (or not UTF-8): FastAPI answers it
        return
    where = _nul_pointer(parsed, ["body"])
    if where is not None:
        raise InvalidInput.field(
            where, "must not contain the NUL character (U+0000)", "nul_character"
        )


class StrictJSONRoute(APIRoute):
    """An APIRoute whose JSON request body is checked by ``check_body`` first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            if request.method in {"POST", "PUT", "PATCH"} and _is_json(
                request.headers.get("content-type")
            ):
                raw = await request.body()  # cached: the handler reads the same bytes
                if raw:
                    check_body(raw)
            return await handler(request)

        return strict_handler
