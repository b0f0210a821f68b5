"""An export stream that records itself in the project's audit trail when it ends."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from dataintel.storage.metadata.audit_repository import record


class Counted(Protocol):
    rows: int  # rows handed to the encoder so far


class Stream(Protocol):
    """An export body and its row count (export.service.ExportStream, the features export)."""

    @property
    def body(self) -> Iterator[bytes]: ...

    @property
    def sent(self) -> Counted: ...


@dataclass(frozen=True, slots=True)
class ExportAudit:
    """Records an export in the project's audit trail once its stream ends: who, what (the
    filters, the format — never a subject's id), how many rows, and whether the client
    received it all."""

    sessions: sessionmaker[Session]
    project_id: str
    actor: str
    action: str
    detail: dict[str, Any]

    def wrap(self, stream: Stream) -> Iterator[bytes]:
        complete = False
        try:
            yield from stream.body
            complete = True
        finally:
            detail = {**self.detail, "rows": stream.sent.rows, "complete": complete}
            record(self.sessions, self.project_id, self.actor, self.action, None, detail)
