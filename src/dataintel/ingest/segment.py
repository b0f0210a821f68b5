"""A Segment-compatible tracking API: POST /v1/track, /v1/identify, /v1/page, /v1/batch.

Authentication is Segment's: HTTP Basic with the write key (here: an ingest API key bound to a
project, and optionally a pipeline) as the user name and an empty password. Messages are
mapped onto the event envelope, then validated and stored exactly like /v1/events:

- ``messageId`` -> ``event_id``; ``userId``, else ``anonymousId`` -> ``user_id``;
- the event name: ``event`` (track; spaces become underscores, so "Order Completed" is
  declared as ``Order_Completed``), or the call type (``identify``, ``page``, ``screen``,
  ``group``, ``alias``): declare those events in the pipeline to accept them;
- properties: ``properties`` (track, page, screen; page/screen ``name`` goes to
  ``properties.name``), ``traits`` (identify, group; plus ``group_id``), ``previous_id``
  (alias);
- ``timestamp``, else the message's or the batch's ``sentAt``, else ``receivedAt``;
- ``context.cart_id`` / ``cartId`` and ``context.session_id`` / ``sessionId``.

Answers are Segment's ``200 {"success": true}`` plus our per-item results (pointers refer to
the mapped envelope, under ``/batch/<index>`` for a batch). Rejected messages are
dead-lettered as their mapped envelope. ``Content-Encoding: gzip`` bodies are accepted.
"""

from __future__ import annotations

import zlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from dataintel.api.deps import app_state
from dataintel.errors import BadRequest, PayloadTooLarge
from dataintel.ingest.deps import segment_target
from dataintel.ingest.endpoints import ERRORS, Service, json_response
from dataintel.ingest.envelope import parse_json
from dataintel.ingest.schemas import SegmentRead, json_body
from dataintel.ingest.service import IngestTarget

router = APIRouter(prefix="/v1", tags=["segment"])
Target = Annotated[IngestTarget, Depends(segment_target)]
RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {"model": SegmentRead, "description": "Processed: a result per message."},
}
_MESSAGE: dict[str, Any] = {"type": "object", "description": "A Segment message."}
_BATCH: dict[str, Any] = {
    "type": "object",
    "required": ["batch"],
    "properties": {"batch": {"type": "array", "items": _MESSAGE}},
}


async def segment_body(request: Request) -> bytes:
    """The body, gunzipped when sent with ``Content-Encoding: gzip`` (bounded by the same
    byte limit as plain bodies)."""
    raw = await request.body()
    if request.headers.get("content-encoding", "").strip().lower() != "gzip":
        return raw
    limit = app_state(request).settings.max_body_bytes
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise BadRequest("the body is not valid gzip") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"the decompressed body exceeds {limit} bytes", limit_bytes=limit)
    return data


Body = Annotated[bytes, Depends(segment_body)]


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None and v != ""), None)


def _event_name(name: Any) -> Any:
    """Segment names like "Order Completed" as declarable names: spaces become "_"."""
    return name.strip().replace(" ", "_") if isinstance(name, str) else name


def _properties(msg: dict[str, Any], kind: Any) -> Any:
    if kind in ("identify", "group"):
        traits = msg.get("traits")
        if kind == "group" and isinstance(traits, dict) and msg.get("groupId") is not None:
            return {**traits, "group_id": msg["groupId"]}
        return traits
    if kind == "alias":
        return {"previous_id": msg.get("previousId")}
    props = msg.get("properties")
    if kind in ("page", "screen") and msg.get("name") is not None:
        return {**(props if isinstance(props, dict) else {}), "name": msg["name"]}
    return props


def to_envelope(msg: Any, kind: str | None = None, sent_at: Any = None) -> Any:
    """One Segment message as an event envelope (non-objects pass through, to be rejected)."""
    if not isinstance(msg, dict):
        return msg
    kind = kind or msg.get("type")
    context = msg.get("context")
    context = context if isinstance(context, dict) else {}
    envelope = {
        "event_id": msg.get("messageId"),
        "event": _event_name(msg.get("event")) if kind == "track" else kind,
        "timestamp": _first(
            msg.get("timestamp"), msg.get("sentAt"), sent_at, msg.get("receivedAt")
        ),
        "user_id": _first(msg.get("userId"), msg.get("anonymousId")),
        "cart_id": _first(context.get("cart_id"), context.get("cartId")),
        "session_id": _first(context.get("session_id"), context.get("sessionId")),
        "properties": _properties(msg, kind),
    }
    return {k: v for k, v in envelope.items() if v is not None}


async def _single(kind: str, target: IngestTarget, body: bytes, service: Any) -> Any:
    outcome = await service.ingest(target, [to_envelope(parse_json(body), kind)], None)
    return json_response({"success": True, **outcome.body()})


def _route(kind: str) -> Any:
    async def endpoint(target: Target, body: Body, service: Service) -> Any:
        return await _single(kind, target, body, service)

    endpoint.__name__ = f"segment_{kind}"
    return endpoint


for _kind in ("track", "identify", "page"):
    router.add_api_route(
        f"/{_kind}",
        _route(_kind),
        methods=["POST"],
        response_model=None,
        responses=RESPONSES,
        openapi_extra=json_body(_MESSAGE),
        summary=f"Segment-compatible {_kind} (HTTP Basic: write key = an ingest API key)",
    )


@router.post(
    "/batch",
    response_model=None,
    responses=RESPONSES,
    openapi_extra=json_body(_BATCH),
    summary="Segment-compatible batch (HTTP Basic: write key = an ingest API key)",
)
async def segment_batch(target: Target, body: Body, service: Service) -> Any:
    payload = parse_json(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
        raise BadRequest('a Segment batch is an object {"batch": [...]}')
    sent_at = payload.get("sentAt")
    items = [to_envelope(m, None, sent_at) for m in payload["batch"]]
    outcome = await service.ingest_batch(target, items, "/batch")
    return json_response({"success": True, **outcome.body()})
