"""SQL for pipelines and their event schemas (always scoped by project)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dataintel.errors import Conflict
from dataintel.model.fields import FieldType
from dataintel.storage.metadata.models import Pipeline, PipelineEvent

# pipeline id -> event name -> property name -> declared type
FieldTypes = dict[str, dict[str, dict[str, FieldType]]]


def get(session: Session, project_id: str, pipeline_id: str) -> Pipeline | None:
    return session.get(Pipeline, (project_id, pipeline_id))


def list_pipelines(session: Session, project_id: str) -> Sequence[Pipeline]:
    stmt = select(Pipeline).where(Pipeline.project_id == project_id).order_by(Pipeline.id)
    return session.scalars(stmt).all()


def add(session: Session, *rows: Pipeline | PipelineEvent) -> None:
    """Insert ``rows``; a concurrent insert of the same key is a 409, not a 500."""
    session.add_all(rows)
    try:
        session.flush()
    except IntegrityError as exc:  # the request's unit of work rolls back
        raise Conflict("this change conflicts with a concurrent one; retry") from exc


def delete_pipeline(session: Session, pipeline: Pipeline) -> None:
    session.execute(
        delete(PipelineEvent).where(
            PipelineEvent.project_id == pipeline.project_id,
            PipelineEvent.pipeline_id == pipeline.id,
        )
    )
    session.delete(pipeline)
    session.flush()


def get_event(
    session: Session, project_id: str, pipeline_id: str, name: str
) -> PipelineEvent | None:
    return session.get(PipelineEvent, (project_id, pipeline_id, name))


def list_events(
    session: Session, project_id: str, pipeline_id: str | None = None
) -> Sequence[PipelineEvent]:
    """Events of one pipeline, or of every pipeline of the project (``pipeline_id=None``)."""
    stmt = select(PipelineEvent).where(PipelineEvent.project_id == project_id)
    if pipeline_id is not None:
        stmt = stmt.where(PipelineEvent.pipeline_id == pipeline_id)
    stmt = stmt.order_by(PipelineEvent.pipeline_id, PipelineEvent.name)
    return session.scalars(stmt).all()


def delete_event(session: Session, event: PipelineEvent) -> None:
    session.delete(event)
    session.flush()


def field_types(session: Session, project_id: str) -> FieldTypes:
    """The draft schemas of the project, as feature validation reads them."""
    ids = session.scalars(select(Pipeline.id).where(Pipeline.project_id == project_id)).all()
    found: FieldTypes = {pid: {} for pid in ids}
    for event in list_events(session, project_id):
        found.setdefault(event.pipeline_id, {})[event.name] = {
            str(f["name"]): FieldType(f["type"]) for f in event.fields
        }
    return found
