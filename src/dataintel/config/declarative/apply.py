"""`dataintel apply`: make a project's draft config equal a YAML file, like `feast apply`.

Plan (diff draft -> file), then write the draft (replace_draft), then optionally deploy.
Applying the same file twice plans nothing and deploys nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from dataintel.config.batch import repository as batch_repository
from dataintel.config.batch.validation import check_all, taken_names
from dataintel.config.declarative.spec import ProjectFile, yaml_path
from dataintel.config.deployments import repository
from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.config.deployments.diff import Change, diff, summarize
from dataintel.config.deployments.service import DeploymentService, check_features
from dataintel.config.deployments.snapshot_repository import draft_snapshot
from dataintel.config.derived.validation import compile_all
from dataintel.config.projects import repository as projects
from dataintel.errors import InvalidInput
from dataintel.model.snapshot import ConfigSnapshot
from dataintel.storage.metadata.models import Project

_SYMBOLS = {"create": "+", "update": "~", "delete": "-"}


@dataclass
class ApplyResult:
    project_id: str
    project_action: str | None  # "create" | "update" | None
    project_fields: list[str]
    changes: list[Change]
    dry_run: bool
    undeployed: int  # changes between the active version and the applied config
    active_version: int | None
    deployed_version: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes) or self.project_action is not None

    def plan_lines(self) -> list[str]:
        lines = []
        if self.project_action == "create":
            lines.append(f"+ create project {self.project_id}")
        elif self.project_action == "update":
            lines.append(f"~ update project {self.project_id} ({', '.join(self.project_fields)})")
        for c in self.changes:
            fields = f" ({', '.join(c.fields)})" if c.fields else ""
            lines.append(f"{_SYMBOLS[c.action]} {c.action} {c.kind} {c.key}{fields}")
        return lines

    def report(self) -> str:
        out = [f"Project {self.project_id}: plan"]
        out += [f"  {line}" for line in self.plan_lines()] or ["  (no changes)"]
        counts = summarize(self.changes)
        if self.project_action is not None:
            counts[self.project_action] += 1
        out.append(
            f"{counts['create']} to create, {counts['update']} to update, "
            f"{counts['delete']} to delete."
        )
        if self.dry_run:
            out.append("Dry run: nothing was written.")
        elif self.has_changes:
            out.append("Applied to the draft config.")
        else:
            out.append("The draft config already matches the file.")
        out += self.notes
        return "\n".join(out)


def _project_fields(project: Project, spec: ProjectFile) -> list[str]:
    wanted = {"name": spec.project.name, "description": spec.project.description}
    return [k for k, v in wanted.items() if getattr(project, k) != v]


def _ensure_project(session: Session, project: Project | None, spec: ProjectFile) -> Project:
    if project is None:
        return projects.add(
            session,
            Project(
                id=spec.project.id, name=spec.project.name, description=spec.project.description
            ),
        )
    project.name = spec.project.name
    project.description = spec.project.description
    session.flush()
    return project


def _check(spec: ProjectFile, desired: ConfigSnapshot) -> None:
    """Every feature against the file's pipelines; the error names the YAML path."""
    order = {f.name: i for i, f in enumerate(spec.features)}  # desired is sorted by name
    derived = {d.name: i for i, d in enumerate(spec.derived)}
    try:
        check_features(desired.features, desired, lambda _i, f: ["features", order[f.name]])
        compile_all(desired.features, desired.derived, lambda d: ["derived", derived[d.name]])
        batch = {b.name: i for i, b in enumerate(spec.batch)}
        check_all(
            desired.batch,
            desired.pipelines,
            taken_names(desired),
            lambda b: ["batch", batch[b.name]],
        )
    except InvalidInput as exc:
        err = exc.errors[0]
        raise InvalidInput(
            f"{spec.source}: {yaml_path(err['loc'])}: {err['msg']}", exc.errors
        ) from exc


def apply(
    session: Session,
    spec: ProjectFile,
    *,
    by: str = "cli",
    deploy: bool = False,
    dry_run: bool = False,
    cache: ActiveConfigCache | None = None,
) -> ApplyResult:
    """Plan and (unless ``dry_run``) apply ``spec``; deploy afterwards when asked and needed."""
    desired = spec.snapshot()
    _check(spec, desired)
    pid = spec.project.id
    project = projects.get(session, pid)
    if project is None:
        draft, active = ConfigSnapshot(), ConfigSnapshot()
    else:
        desired = repository.resolve_feature_versions(session, pid, desired)
        desired = batch_repository.resolve_versions(session, pid, desired)
        draft = draft_snapshot(session, pid)
        active = repository.active_snapshot(session, project)
    fields = _project_fields(project, spec) if project is not None else []
    result = ApplyResult(
        project_id=pid,
        project_action="create" if project is None else ("update" if fields else None),
        project_fields=fields,
        changes=diff(draft, desired),
        dry_run=dry_run,
        undeployed=len(diff(active, desired)),
        active_version=project.active_version if project is not None else None,
    )
    if dry_run:
        if deploy and result.undeployed:
            result.notes.append(f"--deploy would deploy {result.undeployed} change(s).")
        return result
    project = _ensure_project(session, project, spec)
    if result.changes:
        repository.replace_draft(session, pid, desired, keep_versions=True)
    _deploy_or_note(session, project, result, deploy, by, cache)
    return result


def _deploy_or_note(
    session: Session,
    project: Project,
    result: ApplyResult,
    deploy: bool,
    by: str,
    cache: ActiveConfigCache | None,
) -> None:
    if not result.undeployed:
        if project.active_version is not None:
            result.notes.append(f"Nothing to deploy: version {project.active_version} is active.")
        return
    if not deploy:
        result.notes.append(
            f"{result.undeployed} undeployed change(s): run with --deploy "
            "(or POST .../deployments) to activate them."
        )
        return
    message = f"dataintel apply ({result.undeployed} change(s))"
    deployed = DeploymentService(session, cache).deploy(project, message, by)
    result.deployed_version = result.active_version = deployed.version
    result.notes.append(f"Deployed version {deployed.version}.")
