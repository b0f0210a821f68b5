"""Projects are the tenants: every other resource lives inside one."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dataintel.auth.principal import Principal
from dataintel.config.projects import repository
from dataintel.config.projects.schemas import ProjectCreate, ProjectRead
from dataintel.errors import Conflict
from dataintel.storage.metadata.models import Project


class ProjectService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, data: ProjectCreate) -> ProjectRead:
        if repository.get(self.session, data.id) is not None:
            raise Conflict(f"project '{data.id}' already exists")
        row = repository.add(
            self.session, Project(id=data.id, name=data.name, description=data.description)
        )
        return ProjectRead.model_validate(row)

    def list(self, by: Principal) -> list[ProjectRead]:
        return [
            ProjectRead.model_validate(p)
            for p in repository.list_visible(self.session, by.projects)
        ]
