"""Reading and verifying one audit chain."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dataintel.audit.schemas import AuditEntryRead, AuditPage, AuditVerification, ChainProblem
from dataintel.model.audit_chain import verify
from dataintel.storage.metadata import audit_repository as repo


class AuditService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def page(self, where: repo.EntryFilter, limit: int) -> AuditPage:
        rows = repo.entries(self.session, where, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return AuditPage(
            chain=where.chain,
            entries=[AuditEntryRead.model_validate(r, from_attributes=True) for r in rows],
            next_after=rows[-1].seq if more else None,
        )

    def verify(self, chain: str) -> AuditVerification:
        head = repo.head(self.session, chain)
        count, problems = verify(repo.links(self.session, chain), head)
        return AuditVerification(
            chain=chain,
            valid=not problems,
            entries=count,
            head_seq=head[0] if head else None,
            head_hash=head[1] if head else None,
            problems=[ChainProblem(seq=p.seq, problem=p.problem) for p in problems],
        )
