"""GDPR requests: creating them (suppression takes effect at once, erasure is queued for the
runner), reading their status per store, listing them.

The subject's id is stored in clear only on a request that still has to erase something
(``GdprRequest.user_id``, cleared when it ends); everything else refers to the subject by its
keyed hash. Every request and its outcome go to the project's audit chain by request id."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from dataintel.errors import NotFound
from dataintel.gdpr import repository as repo
from dataintel.gdpr.schemas import GdprRequestRead, RequestType, StoreStatus
from dataintel.model.subject import subject_hash
from dataintel.storage.metadata.audit_repository import append
from dataintel.storage.metadata.gdpr_models import GdprOutbox, GdprRequest, GdprTask
from dataintel.storage.metadata.types import utcnow

SUPPRESSION = "suppression"
ERASING_STORES = ("event_log", "analytics", "online", "dead_letters", "reports")
DATA_LAKE = "data_lake"  # first: before the log's entries become tombstones
PROPAGATED = frozenset({RequestType.SUPPRESS_WITH_DELETE, RequestType.DELETE_ONLY})


def stores_of(kind: RequestType, data_lake: bool) -> tuple[str, ...]:
    """The stores a request works on, in order."""
    erasing = (DATA_LAKE, *ERASING_STORES) if data_lake else ERASING_STORES
    if kind is RequestType.SUPPRESS_WITH_DELETE:
        return (SUPPRESSION, *erasing)
    if kind is RequestType.DELETE_ONLY:
        return erasing
    return (SUPPRESSION,)


class GdprService:
    def __init__(
        self,
        session: Session,
        secret: bytes,
        propagation_configured: bool,
        data_lake: bool = False,
    ) -> None:
        self.session = session
        self.secret = secret
        self.propagation_configured = propagation_configured
        self.data_lake = data_lake

    def subject_hash(self, project_id: str, user_id: str) -> str:
        return subject_hash(self.secret, project_id, user_id)

    def forget(
        self, project_id: str, user_id: str, kind: RequestType, actor: str
    ) -> GdprRequestRead:
        digest = self.subject_hash(project_id, user_id)
        now = utcnow()
        stores = stores_of(kind, self.data_lake)
        erases = stores != (SUPPRESSION,)
        request = GdprRequest(
            id=f"gdpr_{uuid.uuid4().hex}",
            project_id=project_id,
            kind=kind.value,
            subject_hash=digest,
            user_id=user_id if erases else None,
            status=repo.PENDING if erases else repo.FINISHED,
            requested_by=actor,
            created_at=now,
            next_attempt_at=now,
            started_at=None if erases else now,
            finished_at=None if erases else now,
            state={},
        )
        repo.add_request(self.session, request, stores)
        if SUPPRESSION in stores:
            self._suppression(request, kind)
        detail = {"request_id": request.id, "type": kind.value, "stores": list(stores)}
        append(self.session, project_id, actor, "gdpr_request", request.id, detail)
        return self.status(project_id, request.id)

    def _suppression(self, request: GdprRequest, kind: RequestType) -> None:
        """Suppression (or its end) takes effect with the request, in its transaction."""
        if kind is RequestType.UNSUPPRESS:
            found = repo.unsuppress(self.session, request.project_id, request.subject_hash)
        else:
            repo.suppress(self.session, request.project_id, request.subject_hash, request.id)
            found = True
        task = self.session.get(GdprTask, (request.id, SUPPRESSION))
        assert task is not None
        task.status, task.erased = repo.FINISHED, int(found)
        task.started_at = task.finished_at = request.created_at
        self.session.flush()

    def status(self, project_id: str, request_id: str) -> GdprRequestRead:
        request = repo.get_request(self.session, project_id, request_id)
        if request is None:
            raise NotFound(f"GDPR request '{request_id}' not found in project '{project_id}'")
        return self.reads([request])[0]

    def requests(
        self, project_id: str, limit: int, subject: str | None = None
    ) -> list[GdprRequestRead]:
        digest = None if subject is None else self.subject_hash(project_id, subject)
        return self.reads(repo.requests(self.session, project_id, limit, digest))

    def reads(self, requests: Sequence[GdprRequest]) -> list[GdprRequestRead]:
        tasks = repo.tasks(self.session, [r.id for r in requests])
        return [self._read(r, tasks[r.id]) for r in requests]

    def _read(self, request: GdprRequest, tasks: list[GdprTask]) -> GdprRequestRead:
        kind = RequestType(request.kind)
        return GdprRequestRead(
            request_id=request.id,
            project_id=request.project_id,
            type=kind,
            status=request.status,
            error=request.error,
            requested_by=request.requested_by,
            created_at=request.created_at,
            started_at=request.started_at,
            finished_at=request.finished_at,
            next_attempt_at=request.next_attempt_at if request.status == repo.RUNNING else None,
            stores=[
                StoreStatus(
                    store=t.store,
                    status=t.status,
                    attempts=t.attempts,
                    erased=t.erased,
                    error=t.error,
                    started_at=t.started_at,
                    finished_at=t.finished_at,
                )
                for t in tasks
            ],
            propagation=self._propagation(request, kind),
        )

    def _propagation(self, request: GdprRequest, kind: RequestType) -> str:
        if kind not in PROPAGATED:
            return "not_applicable"
        if request.status != repo.FINISHED:
            return "pending" if self.propagation_configured else "not_configured"
        if self.session.get(GdprOutbox, request.id) is not None:
            return "pending"
        return "delivered" if request.state.get("propagated") else "not_configured"
