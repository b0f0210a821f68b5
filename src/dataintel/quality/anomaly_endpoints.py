"""GET /v1/quality/anomalies/evaluations: the anomaly detector's verdicts on the project's
metric buckets, each with its baseline median, spread and score (``config:read``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from dataintel.api.deps import ProjectScope, credential_project_scope
from dataintel.api.json_body import StrictJSONRoute
from dataintel.api.types import UtcTime
from dataintel.auth.permissions import Permission
from dataintel.quality import anomaly_repository as repo
from dataintel.quality.anomaly_schemas import EvaluationPage, EvaluationRead, VerdictStatus

router = APIRouter(prefix="/v1/quality/anomalies", tags=["quality"], route_class=StrictJSONRoute)
ReadScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.CONFIG_READ))]


@router.get("/evaluations", summary="The verdicts on the project's metric buckets")
def evaluations(
    scope: ReadScope,
    metric: Annotated[str | None, Query(max_length=300, description="Only this metric.")] = None,
    status: Annotated[VerdictStatus | None, Query(description="Only this verdict.")] = None,
    since: Annotated[UtcTime | None, Query(description="Buckets at or after.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EvaluationPage:
    found = repo.evaluations(scope.session, scope.project_id, since, (metric, status), limit)
    return EvaluationPage(
        evaluations=[
            EvaluationRead(
                metric=e.metric,
                bucket=e.bucket,
                value=e.value,
                status=e.status,
                expected=e.expected,
                spread=e.spread,
                score=e.score,
                baseline=e.baseline,
                evaluated_at=e.evaluated_at,
            )
            for e in found
        ]
    )
