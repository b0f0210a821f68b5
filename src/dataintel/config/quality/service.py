"""Read and edit a project's draft quality rules (a deploy makes them active)."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.orm import Session

from dataintel.config.deployments.repository import write_quality
from dataintel.config.deployments.snapshot_repository import draft_quality
from dataintel.config.quality.schemas import QualityRead, QualityReplace, QualityRuleRead
from dataintel.errors import InvalidInput, NotFound
from dataintel.model.quality import QualityConfig, QualityRule


class QualityRulesService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, project_id: str) -> QualityRead:
        config = draft_quality(self.session, project_id)
        return QualityRead(project_id=project_id, rules=config.rules)

    def replace(self, project_id: str, data: QualityReplace) -> QualityRead:
        config = QualityConfig(rules=data.rules)
        write_quality(self.session, project_id, config)
        return QualityRead(project_id=project_id, rules=config.rules)

    def rule(self, project_id: str, name: str) -> QualityRuleRead:
        found = draft_quality(self.session, project_id).rule(name)
        if found is None:
            raise NotFound(f"no quality rule {name!r} in the draft of project {project_id!r}")
        return QualityRuleRead(project_id=project_id, rule=found)

    def put_rule(self, project_id: str, name: str, rule: QualityRule) -> QualityRuleRead:
        if rule.name != name:
            raise InvalidInput.field(
                ["body", "name"], f"must be the rule's name in the path, {name!r}"
            )
        config = draft_quality(self.session, project_id)
        kept = [r for r in config.rules if r.name != name]
        at = next((i for i, r in enumerate(config.rules) if r.name == name), len(kept))
        try:
            updated = QualityConfig(rules=[*kept[:at], rule, *kept[at:]])
        except ValidationError as exc:  # e.g. more than MAX_RULES
            raise InvalidInput.field(["body"], str(exc.errors()[0]["msg"])) from exc
        write_quality(self.session, project_id, updated)
        return QualityRuleRead(project_id=project_id, rule=rule)

    def delete_rule(self, project_id: str, name: str) -> None:
        config = draft_quality(self.session, project_id)
        if config.rule(name) is None:
            raise NotFound(f"no quality rule {name!r} in the draft of project {project_id!r}")
        kept = [r for r in config.rules if r.name != name]
        write_quality(self.session, project_id, QualityConfig(rules=kept))
