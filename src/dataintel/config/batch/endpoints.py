"""/api/v1/projects/{project_id}/batch-features: batch features (draft config)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from dataintel.api.deps import ProjectScope, project_scope
from dataintel.api.json_body import StrictJSONRoute
from dataintel.auth.permissions import Permission
from dataintel.config.batch.schemas import (
    BatchFeatureCreate,
    BatchFeatureRead,
    BatchFeatureReplace,
    BatchFeatureUpdate,
)
from dataintel.config.batch.service import BatchFeatureService
from dataintel.config.features.schemas import FEATURE_NAME

router = APIRouter(
    prefix="/api/v1/projects/{project_id}/batch-features",
    route_class=StrictJSONRoute,
    tags=["features"],
)

ReadScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_READ))]
WriteScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_WRITE))]
Name = Annotated[str, Path(pattern=FEATURE_NAME, max_length=128)]


@router.get("", summary="List batch features")
def list_batch(scope: ReadScope) -> list[BatchFeatureRead]:
    return BatchFeatureService(scope.session).list_all(scope.project_id)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Define a batch feature")
def create_batch(data: BatchFeatureCreate, scope: WriteScope) -> BatchFeatureRead:
    return BatchFeatureService(scope.session).create(scope.project_id, data)


@router.get("/{batch_name}", summary="Get a batch feature")
def get_batch(batch_name: Name, scope: ReadScope) -> BatchFeatureRead:
    return BatchFeatureService(scope.session).get(scope.project_id, batch_name)


@router.patch("/{batch_name}", summary="Change a batch feature (bumps its version)")
def update_batch(batch_name: Name, data: BatchFeatureUpdate, scope: WriteScope) -> BatchFeatureRead:
    return BatchFeatureService(scope.session).update(scope.project_id, batch_name, data)


@router.put("/{batch_name}", summary="Replace a batch feature (omitted fields: defaults)")
def replace_batch(
    batch_name: Name, data: BatchFeatureReplace, scope: WriteScope
) -> BatchFeatureRead:
    return BatchFeatureService(scope.session).replace(scope.project_id, batch_name, data)


@router.delete("/{batch_name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete it")
def delete_batch(batch_name: Name, scope: WriteScope) -> None:
    BatchFeatureService(scope.session).delete(scope.project_id, batch_name)
