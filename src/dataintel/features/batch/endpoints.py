"""POST /api/v1/projects/{project_id}/batch-features/{name}/runs: compute a deployed batch
feature now (a manual run of the job ``features.batch``, answered 202 with its run id)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from pydantic import BaseModel

from dataintel.api.deps import ProjectScope, app_state, project_scope
from dataintel.auth.permissions import Permission
from dataintel.config.deployments.active import CONFIGS
from dataintel.errors import NotFound
from dataintel.features.batch.jobs import JOB
from dataintel.scheduler.port import JOBS

router = APIRouter(prefix="/api/v1/projects/{project_id}/batch-features", tags=["features"])
WriteScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_WRITE))]
Name = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,127}$", max_length=128)]


class BatchRunQueued(BaseModel):
    run_id: int
    job: str
    features: list[str]


@router.post(
    "/{batch_name}/runs",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Compute a deployed batch feature now (202; poll GET /v1/jobs/runs/{run_id})",
)
async def run_now(
    request: Request, response: Response, batch_name: Name, scope: WriteScope
) -> BatchRunQueued:
    state = app_state(request)
    config = await state.port(CONFIGS).aget(scope.project_id)
    if not any(b.name == batch_name and b.enabled for b in config.snapshot.batch):
        raise NotFound(f"batch feature '{batch_name}' is not deployed (or not enabled)")
    run_id = await state.port(JOBS).trigger(JOB, scope.project_id, {"features": [batch_name]})
    response.headers["Location"] = f"/v1/jobs/runs/{run_id}"
    return BatchRunQueued(run_id=run_id, job=JOB, features=[batch_name])
