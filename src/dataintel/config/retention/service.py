"""Read and replace a project's draft retention policy (a deploy makes it active), and read
where its retention runs stand."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dataintel.config.deployments.repository import write_retention
from dataintel.config.deployments.snapshot_repository import active_snapshot, draft_retention
from dataintel.config.retention.schemas import RetentionRead, RetentionReplace, RetentionRunRead
from dataintel.model.retention import RetentionPolicy
from dataintel.storage.metadata import retention_repository as repo


class RetentionService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, project_id: str) -> RetentionRead:
        policy = draft_retention(self.session, project_id)
        return RetentionRead(project_id=project_id, **policy.model_dump())

    def replace(self, project_id: str, data: RetentionReplace) -> RetentionRead:
        policy = RetentionPolicy.model_validate(data.model_dump())
        write_retention(self.session, project_id, policy)
        return RetentionRead(project_id=project_id, **policy.model_dump())

    def runs(self, project_id: str) -> RetentionRunRead:
        version, snapshot, _ = active_snapshot(self.session, project_id)
        found = repo.status(self.session, project_id)
        base = RetentionRunRead(
            project_id=project_id,
            deployed_version=version,
            policy=snapshot.retention,
            status="never",
        )
        if found is None or found.status is None:
            return base
        return base.model_copy(
            update={
                "status": found.status,
                "policy_version": found.policy_version,
                "started_at": found.started_at,
                "finished_at": found.finished_at,
                "next_run_at": found.next_run_at,
                "deleted": dict(found.deleted),
                "error": found.error,
            }
        )
