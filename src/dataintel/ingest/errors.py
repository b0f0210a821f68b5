"""Errors of the ingest plane (beyond the shared tree in ``dataintel.errors``)."""

from __future__ import annotations

from dataintel.errors import ServiceError


class UnsupportedMediaType(ServiceError):
    """The body is declared as something other than JSON (or JSON in another charset)."""

    status = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"
