"""/api/v1/projects/{project_id}/derived-features: derived features (draft config)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from dataintel.api.deps import ProjectScope, project_scope
from dataintel.api.json_body import StrictJSONRoute
from dataintel.auth.permissions import Permission
from dataintel.config.derived.schemas import (
    DerivedCreate,
    DerivedRead,
    DerivedReplace,
    DerivedUpdate,
)
from dataintel.config.derived.service import DerivedService
from dataintel.config.features.schemas import FEATURE_NAME

router = APIRouter(
    prefix="/api/v1/projects/{project_id}/derived-features",
    route_class=StrictJSONRoute,
    tags=["features"],
)

ReadScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_READ))]
WriteScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_WRITE))]
Name = Annotated[str, Path(pattern=FEATURE_NAME, max_length=128)]


@router.get("", summary="List derived features")
def list_derived(scope: ReadScope) -> list[DerivedRead]:
    return DerivedService(scope.session).list_all(scope.project_id)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Define a derived feature")
def create_derived(data: DerivedCreate, scope: WriteScope) -> DerivedRead:
    return DerivedService(scope.session).create(scope.project_id, data)


@router.get("/{derived_name}", summary="Get a derived feature")
def get_derived(derived_name: Name, scope: ReadScope) -> DerivedRead:
    return DerivedService(scope.session).get(scope.project_id, derived_name)


@router.patch("/{derived_name}", summary="Change a derived feature (bumps its version)")
def update_derived(derived_name: Name, data: DerivedUpdate, scope: WriteScope) -> DerivedRead:
    return DerivedService(scope.session).update(scope.project_id, derived_name, data)


@router.delete("/{derived_name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete it")
def delete_derived(derived_name: Name, scope: WriteScope) -> None:
    DerivedService(scope.session).delete(scope.project_id, derived_name)


@router.put("/{derived_name}", summary="Replace a derived feature (omitted fields: defaults)")
def replace_derived(derived_name: Name, data: DerivedReplace, scope: WriteScope) -> DerivedRead:
    return DerivedService(scope.session).replace(scope.project_id, derived_name, data)
