"""GET /v1/jobs (what runs and when), GET /v1/jobs/runs and /v1/jobs/runs/{id} (the
recorded runs), POST /v1/jobs/{job}/runs (run now): a project's scheduled work."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from dataintel.api.audit import annotate, annotate_project
from dataintel.api.deps import ProjectScope, app_state, credential_project_scope
from dataintel.auth.permissions import Permission
from dataintel.errors import Conflict, NotFound
from dataintel.model.jobs import slot_of
from dataintel.scheduler import repository as repo
from dataintel.scheduler.schemas import JobRead, JobRunPage, JobRunRead, JobsRead, TriggeredRun
from dataintel.scheduler.service import SCHEDULER
from dataintel.storage.metadata.job_models import JobRunRow
from dataintel.storage.metadata.types import utcnow

router = APIRouter(tags=["jobs"])
ReadScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.CONFIG_READ))]
WriteScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.CONFIG_WRITE))]
JobName = Annotated[str, Path(max_length=64, pattern=r"^[a-z][a-z0-9_.]*$")]
RunId = Annotated[int, Path(ge=1, le=2**62)]


def _read(row: JobRunRow) -> JobRunRead:
    return JobRunRead.model_validate(row, from_attributes=True)


@router.get("/v1/jobs", summary="The scheduled jobs, their next slot and last run")
def jobs(request: Request, scope: ReadScope) -> JobsRead:
    scheduler = app_state(request).port(SCHEDULER)
    now = utcnow()
    last = repo.last_runs(scope.session, scope.project_id, scheduler.names())
    listed = []
    for info in scheduler.catalog.values():
        found = last.get(info.name)
        listed.append(
            JobRead(
                name=info.name,
                description=info.description,
                every_seconds=info.every.total_seconds(),
                next_run_at=slot_of(now, info.every) + info.every,
                last_run=_read(found) if found is not None else None,
            )
        )
    return JobsRead(project_id=scope.project_id, jobs=listed)


@router.get("/v1/jobs/runs", summary="The project's job runs, newest first")
def runs(
    scope: ReadScope,
    job: Annotated[str | None, Query(max_length=64, description="Only this job.")] = None,
    status: Annotated[
        Literal["pending", "running", "finished", "failed"] | None,
        Query(description="Only runs in this state."),
    ] = None,
    after: Annotated[
        int | None, Query(ge=1, le=2**62, description="The `next_after` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JobRunPage:
    found = repo.runs(scope.session, repo.RunFilter(scope.project_id, job, status, after, limit))
    more = len(found) == limit
    return JobRunPage(
        items=[_read(row) for row in found], next_after=found[-1].id if more else None
    )


@router.get("/v1/jobs/runs/{run_id}", summary="One job run")
def run(scope: ReadScope, run_id: RunId) -> JobRunRead:
    found = repo.get(scope.session, scope.project_id, run_id)
    if found is None:
        raise NotFound(f"job run {run_id} not found")
    return _read(found)


@router.post(
    "/v1/jobs/{job}/runs", summary="Run a job for the project now (202 + run id)", status_code=202
)
async def trigger(
    request: Request, response: Response, scope: WriteScope, job: JobName
) -> TriggeredRun:
    scheduler = app_state(request).port(SCHEDULER)
    if job not in scheduler.catalog:
        raise NotFound(f"job '{job}' not found; jobs: {', '.join(scheduler.names()) or 'none'}")
    if scope.project.active_version is None:
        raise Conflict("the project has no deployed config: deploy it before running its jobs")
    run_id = await scheduler.trigger(job, scope.project_id)
    annotate(request, run_id=run_id)  # the request's audit entry (api/audit.py)
    annotate_project(request, scope.project_id)
    response.headers["Location"] = f"/v1/jobs/runs/{run_id}"
    return TriggeredRun(run_id=run_id, job=job)
