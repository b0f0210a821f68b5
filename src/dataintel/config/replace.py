"""PUT (replace) beside PATCH (merge) for config resources.

A PUT body is the resource's full definition, the same shape as its create body: required
fields are required, an omitted optional field is reset to its default (where PATCH would
leave it unchanged). The identifier (``id`` / ``name``) may be repeated in the body, but
must then equal the one in the path: a PUT never renames.
"""

from __future__ import annotations

from dataintel.errors import InvalidInput


def same_identifier(member: str, in_body: str | None, in_path: str) -> None:
    if in_body is not None and in_body != in_path:
        raise InvalidInput.field(
            ["body", member],
            f"must equal the path's '{in_path}' (PUT replaces a resource, it does not rename "
            "it); omit it or create a new resource",
        )
