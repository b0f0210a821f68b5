"""/api/v1/projects/{project_id}/pipelines: pipelines, their event schemas, webhooks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status

from dataintel.api.deps import ProjectScope, SessionDep, app_state, project_scope
from dataintel.api.json_body import StrictJSONRoute
from dataintel.auth.permissions import Permission
from dataintel.config.deployments.active import CONFIGS
from dataintel.config.pipelines.schemas import (
    EventCreate,
    EventRead,
    EventReplace,
    EventUpdate,
    PipelineCreate,
    PipelineRead,
    PipelineReplace,
    PipelineUpdate,
    WebhookInfo,
)
from dataintel.config.pipelines.service import EventService, PipelineService
from dataintel.model.fields import EVENT_NAME, SLUG

router = APIRouter(
    prefix="/api/v1/projects/{project_id}/pipelines",
    route_class=StrictJSONRoute,
    tags=["pipelines"],
)

ReadScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_READ))]
WriteScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_WRITE))]
PipelineId = Annotated[str, Path(pattern=SLUG, max_length=64)]
EventName = Annotated[str, Path(pattern=EVENT_NAME, max_length=128)]


def _pipelines(request: Request, session: SessionDep) -> PipelineService:
    state = app_state(request)
    return PipelineService(session, state.settings, state.port(CONFIGS))


Pipelines = Annotated[PipelineService, Depends(_pipelines)]


@router.get("", summary="List the pipelines (draft config)")
def list_pipelines(scope: ReadScope, service: Pipelines) -> list[PipelineRead]:
    return service.list_all(scope.project_id)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a pipeline")
def create_pipeline(data: PipelineCreate, scope: WriteScope, service: Pipelines) -> PipelineRead:
    return service.create(scope.project_id, data)


@router.get("/{pipeline_id}", summary="Get a pipeline with its events")
def get_pipeline(pipeline_id: PipelineId, scope: ReadScope, service: Pipelines) -> PipelineRead:
    return service.get(scope.project_id, pipeline_id)


@router.patch("/{pipeline_id}", summary="Change a pipeline's name, description or policy")
def update_pipeline(
    pipeline_id: PipelineId, data: PipelineUpdate, scope: WriteScope, service: Pipelines
) -> PipelineRead:
    return service.update(scope.project_id, pipeline_id, data)


@router.put(
    "/{pipeline_id}",
    summary="Replace a pipeline's definition (omitted optional fields reset to defaults)",
)
def replace_pipeline(
    pipeline_id: PipelineId, data: PipelineReplace, scope: WriteScope, service: Pipelines
) -> PipelineRead:
    return service.replace(scope.project_id, pipeline_id, data)


@router.delete(
    "/{pipeline_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a pipeline (409 while features read it)",
)
def delete_pipeline(pipeline_id: PipelineId, scope: WriteScope, service: Pipelines) -> None:
    service.delete(scope.project_id, pipeline_id)


@router.post("/{pipeline_id}/activate", summary="Accept events again (at once, no deploy)")
def activate_pipeline(
    pipeline_id: PipelineId, scope: WriteScope, service: Pipelines
) -> PipelineRead:
    return service.set_active(scope.project_id, pipeline_id, True)


@router.post("/{pipeline_id}/deactivate", summary="Refuse events (at once, no deploy)")
def deactivate_pipeline(
    pipeline_id: PipelineId, scope: WriteScope, service: Pipelines
) -> PipelineRead:
    return service.set_active(scope.project_id, pipeline_id, False)


@router.get("/{pipeline_id}/webhook", summary="Webhook URL and signing secret")
def get_webhook(pipeline_id: PipelineId, scope: WriteScope, service: Pipelines) -> WebhookInfo:
    return service.webhook(scope.project_id, pipeline_id)


@router.post(
    "/{pipeline_id}/webhook/rotate",
    summary="New signing secret; the old one verifies during the grace period",
)
def rotate_webhook(pipeline_id: PipelineId, scope: WriteScope, service: Pipelines) -> WebhookInfo:
    return service.rotate_webhook(scope.project_id, pipeline_id)


@router.get("/{pipeline_id}/events", summary="List a pipeline's event schemas")
def list_events(pipeline_id: PipelineId, scope: ReadScope) -> list[EventRead]:
    return EventService(scope.session).list_all(scope.project_id, pipeline_id)


@router.post(
    "/{pipeline_id}/events", status_code=status.HTTP_201_CREATED, summary="Add an event schema"
)
def create_event(pipeline_id: PipelineId, data: EventCreate, scope: WriteScope) -> EventRead:
    return EventService(scope.session).create(scope.project_id, pipeline_id, data)


@router.get("/{pipeline_id}/events/{event_name}", summary="Get an event schema")
def get_event(pipeline_id: PipelineId, event_name: EventName, scope: ReadScope) -> EventRead:
    return EventService(scope.session).get(scope.project_id, pipeline_id, event_name)


@router.patch(
    "/{pipeline_id}/events/{event_name}",
    summary="Change an event schema (409 if it would break a feature)",
)
def update_event(
    pipeline_id: PipelineId, event_name: EventName, data: EventUpdate, scope: WriteScope
) -> EventRead:
    return EventService(scope.session).update(scope.project_id, pipeline_id, event_name, data)


@router.put(
    "/{pipeline_id}/events/{event_name}",
    summary="Replace an event schema (omitted optional fields reset; 409 if it breaks a feature)",
)
def replace_event(
    pipeline_id: PipelineId, event_name: EventName, data: EventReplace, scope: WriteScope
) -> EventRead:
    return EventService(scope.session).replace(scope.project_id, pipeline_id, event_name, data)


@router.delete(
    "/{pipeline_id}/events/{event_name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an event schema (409 while features use it)",
)
def delete_event(pipeline_id: PipelineId, event_name: EventName, scope: WriteScope) -> None:
    EventService(scope.session).delete(scope.project_id, pipeline_id, event_name)
