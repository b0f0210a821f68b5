"""/api/v1/projects/{project_id}/features: feature definitions (draft config)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from dataintel.api.deps import ProjectScope, project_scope
from dataintel.api.json_body import StrictJSONRoute
from dataintel.auth.permissions import Permission
from dataintel.config.features.schemas import (
    FEATURE_NAME,
    FeatureCreate,
    FeatureRead,
    FeatureReplace,
    FeatureUpdate,
)
from dataintel.config.features.service import FeatureService
from dataintel.model.fields import SLUG

router = APIRouter(
    prefix="/api/v1/projects/{project_id}/features", route_class=StrictJSONRoute, tags=["features"]
)

ReadScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_READ))]
WriteScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_WRITE))]
FeatureName = Annotated[str, Path(pattern=FEATURE_NAME, max_length=128)]


@router.get("", summary="List feature definitions")
def list_features(
    scope: ReadScope,
    pipeline_id: Annotated[
        str | None, Query(pattern=SLUG, max_length=64, description="Only this pipeline's.")
    ] = None,
) -> list[FeatureRead]:
    return FeatureService(scope.session).list_all(scope.project_id, pipeline_id)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Define a feature")
def create_feature(data: FeatureCreate, scope: WriteScope) -> FeatureRead:
    return FeatureService(scope.session).create(scope.project_id, data)


@router.get("/{name}", summary="Get a feature definition")
def get_feature(name: FeatureName, scope: ReadScope) -> FeatureRead:
    return FeatureService(scope.session).get(scope.project_id, name)


@router.patch("/{name}", summary="Change a feature (bumps its version when something changes)")
def update_feature(name: FeatureName, data: FeatureUpdate, scope: WriteScope) -> FeatureRead:
    return FeatureService(scope.session).update(scope.project_id, name, data)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a feature")
def delete_feature(name: FeatureName, scope: WriteScope) -> None:
    FeatureService(scope.session).delete(scope.project_id, name)


@router.put("/{name}", summary="Replace a feature (omitted optional fields reset to defaults)")
def replace_feature(name: FeatureName, data: FeatureReplace, scope: WriteScope) -> FeatureRead:
    return FeatureService(scope.session).replace(scope.project_id, name, data)
