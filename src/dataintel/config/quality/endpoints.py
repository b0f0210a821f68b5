"""/api/v1/projects/{project_id}/quality: the draft quality rules, whole or one by one.

Like every config edit, a change is pending (it shows in .../deployments/pending) until a
deploy; the rule runner (job ``quality.rules``) runs the deployed rules only (docs/quality.md).
Audited like every /api/ write.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Response

from dataintel.api.deps import ProjectScope, project_scope
from dataintel.api.json_body import StrictJSONRoute
from dataintel.auth.permissions import Permission
from dataintel.config.quality.schemas import QualityRead, QualityReplace, QualityRuleRead
from dataintel.config.quality.service import QualityRulesService
from dataintel.model.quality import RULE_NAME, QualityRule

router = APIRouter(
    prefix="/api/v1/projects/{project_id}/quality",
    route_class=StrictJSONRoute,
    tags=["quality"],
)
ReadScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_READ))]
WriteScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_WRITE))]
RuleName = Annotated[str, Path(pattern=RULE_NAME, description="The rule's name.")]


@router.get("", summary="The draft quality rules")
def get_quality(scope: ReadScope) -> QualityRead:
    return QualityRulesService(scope.session).get(scope.project_id)


@router.put("", summary="Replace the draft quality rules (rules not listed are removed)")
def replace_quality(data: QualityReplace, scope: WriteScope) -> QualityRead:
    return QualityRulesService(scope.session).replace(scope.project_id, data)


@router.get("/rules/{name}", summary="One draft quality rule")
def get_quality_rule(scope: ReadScope, name: RuleName) -> QualityRuleRead:
    return QualityRulesService(scope.session).rule(scope.project_id, name)


@router.put("/rules/{name}", summary="Create or replace one draft quality rule")
def put_quality_rule(
    scope: WriteScope, name: RuleName, rule: Annotated[QualityRule, Body()]
) -> QualityRuleRead:
    return QualityRulesService(scope.session).put_rule(scope.project_id, name, rule)


@router.delete("/rules/{name}", summary="Remove one draft quality rule", status_code=204)
def delete_quality_rule(scope: WriteScope, name: RuleName) -> Response:
    QualityRulesService(scope.session).delete_rule(scope.project_id, name)
    return Response(status_code=204)
