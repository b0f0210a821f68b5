"""Pipelines and their event schemas. Every change edits the draft; a deploy publishes it.

Two things take effect at once instead: the ``active`` switch (ingest refuses events of an
inactive pipeline) and webhook secrets. A change that would break a feature reading the
pipeline (deleting it, deleting or retyping an event or field) is a 409 naming the features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import event
from sqlalchemy.orm import Session

from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.config.features import repository as features_repo
from dataintel.config.features.validation import check_feature
from dataintel.config.pipelines import repository
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
from dataintel.config.pipelines.webhooks import (
    DEFAULT_TOLERANCE_SECONDS,
    SIGNATURE_HEADER,
    new_secret,
)
from dataintel.config.replace import same_identifier
from dataintel.errors import Conflict, InvalidInput, NotFound
from dataintel.model.aggregations import Aggregation
from dataintel.model.fields import FieldSpec, UnknownPolicy
from dataintel.settings import Settings
from dataintel.storage.metadata.models import Feature, Pipeline, PipelineEvent
from dataintel.storage.metadata.types import utcnow

Clock = Callable[[], datetime]


def ingest_url(base_url: str, project_id: str, pipeline_id: str) -> str:
    return f"{base_url.rstrip('/')}/ingest/{project_id}/{pipeline_id}"


def event_read(row: PipelineEvent) -> EventRead:
    return EventRead(
        name=row.name,
        description=row.description,
        enabled=row.enabled,
        fields=[FieldSpec.model_validate(f) for f in row.fields],
    )


def event_row(project_id: str, pipeline_id: str, data: EventCreate) -> PipelineEvent:
    return PipelineEvent(
        project_id=project_id,
        pipeline_id=pipeline_id,
        name=data.name,
        description=data.description,
        enabled=data.enabled,
        fields=[f.model_dump(mode="json") for f in data.fields],
    )


def load_pipeline(session: Session, project_id: str, pipeline_id: str) -> Pipeline:
    row = repository.get(session, project_id, pipeline_id)
    if row is None:
        raise NotFound(f"pipeline '{pipeline_id}' not found")
    return row


def _names(items: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in items)


class PipelineService:
    def __init__(
        self,
        session: Session,
        settings: Settings,
        cache: ActiveConfigCache,
        clock: Clock = utcnow,
    ) -> None:
        self.session = session
        self.settings = settings
        self.cache = cache
        self.clock = clock

    def list_all(self, project_id: str) -> list[PipelineRead]:
        events: dict[str, list[EventRead]] = {}
        for e in repository.list_events(self.session, project_id):
            events.setdefault(e.pipeline_id, []).append(event_read(e))
        return [
            self._read(p, events.get(p.id, []))
            for p in repository.list_pipelines(self.session, project_id)
        ]

    def get(self, project_id: str, pipeline_id: str) -> PipelineRead:
        return self._read(load_pipeline(self.session, project_id, pipeline_id))

    def create(self, project_id: str, data: PipelineCreate) -> PipelineRead:
        if repository.get(self.session, project_id, data.id) is not None:
            raise Conflict(f"pipeline '{data.id}' already exists")
        now = self.clock()
        row = Pipeline(
            project_id=project_id,
            id=data.id,
            name=data.name,
            description=data.description,
            unknown_properties=data.unknown_properties,
            active=True,
            webhook_secret=new_secret(),
            created_at=now,
            updated_at=now,
        )
        events = [event_row(project_id, data.id, e) for e in data.events]
        repository.add(self.session, row)
        repository.add(self.session, *events)
        return self._read(row, [event_read(e) for e in events])

    def update(self, project_id: str, pipeline_id: str, data: PipelineUpdate) -> PipelineRead:
        row = load_pipeline(self.session, project_id, pipeline_id)
        for key, value in data.model_dump(exclude_unset=True).items():
            setattr(row, key, value)
        self.session.flush()
        return self._read(row)

    def replace(self, project_id: str, pipeline_id: str, data: PipelineReplace) -> PipelineRead:
        """PUT: every attribute from the body (omitted optional ones back to defaults); the
        event schemas too when the body lists them."""
        same_identifier("id", data.id, pipeline_id)
        load_pipeline(self.session, project_id, pipeline_id)
        if data.events is not None:
            EventService(self.session).replace_all(project_id, pipeline_id, data.events)
        update = PipelineUpdate(
            name=data.name, description=data.description, unknown_properties=data.unknown_properties
        )
        return self.update(project_id, pipeline_id, update)

    def delete(self, project_id: str, pipeline_id: str) -> None:
        row = load_pipeline(self.session, project_id, pipeline_id)
        readers = [f.name for f in features_repo.list_features(self.session, project_id, row.id)]
        if readers:
            raise Conflict(
                f"pipeline '{pipeline_id}' is read by feature(s) {_names(readers)}: "
                "delete them or move them to another pipeline first",
                features=readers,
            )
        repository.delete_pipeline(self.session, row)
        self._invalidate_on_commit(project_id)

    def set_active(self, project_id: str, pipeline_id: str, active: bool) -> PipelineRead:
        """Switch ingestion on or off for the pipeline: operational, no deploy needed."""
        row = load_pipeline(self.session, project_id, pipeline_id)
        if row.active != active:
            row.active = active
            self.session.flush()
        self._invalidate_on_commit(project_id)
        return self._read(row)

    def webhook(self, project_id: str, pipeline_id: str) -> WebhookInfo:
        return self._webhook_info(load_pipeline(self.session, project_id, pipeline_id))

    def rotate_webhook(self, project_id: str, pipeline_id: str) -> WebhookInfo:
        """A new secret at once; the old one keeps verifying for the grace period. Rotating
        again within it ends the grace of the secret before (one previous secret is kept)."""
        row = load_pipeline(self.session, project_id, pipeline_id)
        now = self.clock()
        row.previous_webhook_secret = row.webhook_secret
        row.previous_secret_expires_at = now + timedelta(
            seconds=self.settings.webhook_rotation_grace_seconds
        )
        row.webhook_secret = new_secret()
        row.webhook_rotated_at = now
        self.session.flush()
        return self._webhook_info(row)

    def _webhook_info(self, row: Pipeline) -> WebhookInfo:
        until = row.previous_secret_expires_at
        if row.previous_webhook_secret is None or until is None or until <= self.clock():
            until = None
        return WebhookInfo(
            url=ingest_url(self.settings.base_url, row.project_id, row.id),
            secret=row.webhook_secret,
            signature_header=SIGNATURE_HEADER,
            tolerance_seconds=DEFAULT_TOLERANCE_SECONDS,
            previous_secret_valid_until=until,
            rotated_at=row.webhook_rotated_at,
        )

    def _read(self, row: Pipeline, events: list[EventRead] | None = None) -> PipelineRead:
        if events is None:
            events = [
                event_read(e) for e in repository.list_events(self.session, row.project_id, row.id)
            ]
        return PipelineRead(
            id=row.id,
            project_id=row.project_id,
            name=row.name,
            description=row.description,
            unknown_properties=cast(UnknownPolicy, row.unknown_properties),
            active=row.active,
            events=events,
            ingest_url=ingest_url(self.settings.base_url, row.project_id, row.id),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def _invalidate_on_commit(self, project_id: str) -> None:
        """Drop the project's cached runtime config once this change is committed (before,
        another request could re-cache the old state for a whole TTL)."""
        cache = self.cache

        def invalidate(_session: Session) -> None:
            cache.invalidate(project_id)

        event.listen(self.session, "after_commit", invalidate, once=True)


class EventService:
    """The event schemas of one pipeline (``/pipelines/{id}/events``)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def list_all(self, project_id: str, pipeline_id: str) -> list[EventRead]:
        load_pipeline(self.session, project_id, pipeline_id)
        return [
            event_read(e) for e in repository.list_events(self.session, project_id, pipeline_id)
        ]

    def get(self, project_id: str, pipeline_id: str, name: str) -> EventRead:
        return event_read(self._event(project_id, pipeline_id, name))

    def create(self, project_id: str, pipeline_id: str, data: EventCreate) -> EventRead:
        pipeline = load_pipeline(self.session, project_id, pipeline_id)
        if repository.get_event(self.session, project_id, pipeline_id, data.name) is not None:
            raise Conflict(f"event '{data.name}' already exists in pipeline '{pipeline_id}'")
        row = event_row(project_id, pipeline_id, data)
        pipeline.updated_at = utcnow()
        repository.add(self.session, row)
        return event_read(row)

    def update(self, project_id: str, pipeline_id: str, name: str, data: EventUpdate) -> EventRead:
        row = self._event(project_id, pipeline_id, name)
        changes = data.model_dump(exclude_unset=True)
        if data.fields is not None:
            self._check_dependents(row, data.fields)
            changes["fields"] = [f.model_dump(mode="json") for f in data.fields]
        for key, value in changes.items():
            setattr(row, key, value)
        self._touch(row)
        return event_read(row)

    def replace(
        self, project_id: str, pipeline_id: str, name: str, data: EventReplace
    ) -> EventRead:
        """PUT: description, enabled and fields from the body (omitted: their defaults)."""
        same_identifier("name", data.name, name)
        return self.update(project_id, pipeline_id, name, _full_update(data))

    def replace_all(self, project_id: str, pipeline_id: str, events: Sequence[EventCreate]) -> None:
        """The pipeline's event schemas become exactly ``events`` (409 if one to delete or
        change is used by a feature in a way the change would break)."""
        existing = {e.name for e in repository.list_events(self.session, project_id, pipeline_id)}
        for gone in sorted(existing - {e.name for e in events}):
            self.delete(project_id, pipeline_id, gone)
        for spec in events:
            if spec.name in existing:
                self.update(project_id, pipeline_id, spec.name, _full_update(spec))
            else:
                self.create(project_id, pipeline_id, spec)

    def delete(self, project_id: str, pipeline_id: str, name: str) -> None:
        row = self._event(project_id, pipeline_id, name)
        users = self._users(row)
        if users:
            names = [f.name for f in users]
            raise Conflict(
                f"event '{name}' is used by feature(s) {_names(names)}: "
                "delete or change them first",
                features=names,
            )
        self._touch(row)
        repository.delete_event(self.session, row)

    def _event(self, project_id: str, pipeline_id: str, name: str) -> PipelineEvent:
        load_pipeline(self.session, project_id, pipeline_id)
        row = repository.get_event(self.session, project_id, pipeline_id, name)
        if row is None:
            raise NotFound(f"event '{name}' not found in pipeline '{pipeline_id}'")
        return row

    def _users(self, row: PipelineEvent) -> list[Feature]:
        return list(
            features_repo.list_features(self.session, row.project_id, row.pipeline_id, row.name)
        )

    def _check_dependents(self, row: PipelineEvent, fields: list[FieldSpec]) -> None:
        """Re-validate every feature of the event against its new fields (409 if one breaks)."""
        schema = {row.pipeline_id: {row.name: {f.name: f.type for f in fields}}}
        broken: list[tuple[str, str]] = []
        for feature in self._users(row):
            try:
                check_feature(
                    loc=["features", feature.name],
                    pipeline_id=feature.pipeline_id,
                    source_event=feature.source_event,
                    entity_key=feature.entity_key,
                    aggregation=Aggregation(feature.aggregation),
                    field=feature.field,
                    pipelines=schema,
                )
            except InvalidInput as exc:
                broken.append((feature.name, exc.detail))
        if broken:
            reasons = "; ".join(f"'{name}' ({why})" for name, why in broken)
            raise Conflict(
                f"this change to event '{row.name}' would break feature(s) {reasons}",
                features=[name for name, _ in broken],
            )

    def _touch(self, row: PipelineEvent) -> None:
        pipeline = load_pipeline(self.session, row.project_id, row.pipeline_id)
        pipeline.updated_at = utcnow()
        self.session.flush()


def _full_update(spec: EventCreate) -> EventUpdate:
    """An update that sets every attribute (a replace expressed as a merge)."""
    return EventUpdate(description=spec.description, enabled=spec.enabled, fields=spec.fields)
