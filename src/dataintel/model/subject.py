"""A data subject of a GDPR request: one user of one project, and the carts and sessions
that are theirs (found in the events where the user appears).

``subject_hash`` is what the service keeps once a request has ended: an HMAC of the
(project, user) pair under the installation's secret, never the id itself."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Subject:
    project_id: str
    user_id: str
    cart_ids: frozenset[str] = field(default_factory=frozenset)
    session_ids: frozenset[str] = field(default_factory=frozenset)

    def owns(self, event: dict[str, Any]) -> bool:
        """Whether a stored event (envelope fields) is the subject's."""
        if event.get("project_id") != self.project_id:
            return False
        return (
            event.get("user_id") == self.user_id
            or event.get("cart_id") in self.cart_ids
            or event.get("session_id") in self.session_ids
        )

    def values(self) -> frozenset[str]:
        """Every id that names the subject (what must be gone from the stores' bytes)."""
        return frozenset({self.user_id}) | self.cart_ids | self.session_ids


def subject_hash(secret: bytes, project_id: str, user_id: str) -> str:
    message = f"{project_id}\x00{user_id}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
