"""GET /v1/quality/features/{name}/statistics: a feature's daily statistics and drift, as
the ``quality.drift`` job stored them (``config:read``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from dataintel.api.deps import ProjectScope, credential_project_scope
from dataintel.api.json_body import StrictJSONRoute
from dataintel.api.types import UtcTime
from dataintel.auth.permissions import Permission
from dataintel.quality import stats_repository as repo
from dataintel.quality.stats_schemas import FeatureDayRead, FeatureStatisticsRead

router = APIRouter(prefix="/v1/quality/features", tags=["quality"], route_class=StrictJSONRoute)
FEATURE_NAME = r"^[a-z][a-z0-9_]{0,127}$"  # as the features API names them
ReadScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.CONFIG_READ))]


@router.get("/{name}/statistics", summary="A feature's daily statistics and drift")
def feature_statistics(
    scope: ReadScope,
    name: Annotated[str, Path(max_length=128, pattern=FEATURE_NAME)],
    since: Annotated[UtcTime | None, Query(description="Days at or after.")] = None,
    limit: Annotated[int, Query(ge=1, le=366)] = 30,
) -> FeatureStatisticsRead:
    found = repo.days(scope.session, scope.project_id, name, since, limit)
    return FeatureStatisticsRead(
        feature=name,
        days=[
            FeatureDayRead(
                day=d.day,
                count=d.count,
                nulls=d.nulls,
                mean=d.mean,
                quantiles=d.quantiles,
                histogram=d.histogram,
                drift=d.drift,
                computed_at=d.computed_at,
            )
            for d in found
        ],
    )
