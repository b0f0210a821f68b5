"""/api/v1/projects/{project_id}/templates/{template}: add a bundled pipeline to the draft.

The one template is ``platform`` (model/platform.py: the shop's cart and purchase events, the
AI engine's predictions, the intervention engine's interventions and holdouts). Enabling it
creates the pipeline ``platform`` in the draft, like POST .../pipelines with that body; it
takes effect with the next deploy. 409 when the project already has a pipeline of that id.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, status

from dataintel.api.deps import ProjectScope, project_scope
from dataintel.api.json_body import StrictJSONRoute
from dataintel.auth.permissions import Permission
from dataintel.config.pipelines.endpoints import Pipelines
from dataintel.config.pipelines.schemas import PipelineCreate, PipelineRead
from dataintel.model.platform import TEMPLATES
from dataintel.model.snapshot import PipelineSpec

router = APIRouter(
    prefix="/api/v1/projects/{project_id}/templates",
    route_class=StrictJSONRoute,
    tags=["pipelines"],
)
WriteScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_WRITE))]
TemplateName = Annotated[Literal["platform"], Path(description="A bundled pipeline template.")]


def template_body(spec: PipelineSpec) -> PipelineCreate:
    """The template as the pipelines API's create body (validated by the same rules)."""
    return PipelineCreate.model_validate(spec.model_dump(mode="json"))


@router.post(
    "/{template}",
    status_code=status.HTTP_201_CREATED,
    summary="Enable a bundled pipeline template (adds its pipeline to the draft)",
    responses={409: {"description": "The project already has a pipeline of that id."}},
)
def enable_template(template: TemplateName, scope: WriteScope, service: Pipelines) -> PipelineRead:
    return service.create(scope.project_id, template_body(TEMPLATES[template]))
