"""The subject-access export: every event, feature value, dead letter and GDPR request the
service holds about one user, as one JSON document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio

from dataintel.features.serving.service import FeatureServer
from dataintel.gdpr import repository as repo
from dataintel.gdpr.schemas import SubjectExport
from dataintel.gdpr.service import GdprService
from dataintel.gdpr.subject import Found, find, portable
from dataintel.storage.analytics.port import AnalyticsStore

MAX_REQUESTS = 1000


async def subject_export(
    service: GdprService,
    analytics: AnalyticsStore,
    server: FeatureServer,
    project_id: str,
    user_id: str,
) -> SubjectExport:
    """The metadata store is read in a thread (never on the event loop: a SQLite lock wait
    there would stall every request)."""
    found = await anyio.to_thread.run_sync(find, analytics, project_id, user_id)
    subject = found.subject
    features = await _features(server, project_id, "user_id", [user_id])
    features += await _features(server, project_id, "cart_id", sorted(subject.cart_ids))
    features += await _features(server, project_id, "session_id", sorted(subject.session_ids))
    return await anyio.to_thread.run_sync(_document, service, found, features, user_id)


def _document(
    service: GdprService, found: Found, features: list[dict[str, Any]], user_id: str
) -> SubjectExport:
    session, subject = service.session, found.subject
    project_id = subject.project_id
    digest = service.subject_hash(project_id, user_id)
    dead = repo.dead_letters_of(session, project_id, subject.values())
    return SubjectExport(
        project_id=project_id,
        user_id=user_id,
        generated_at=datetime.now(UTC),
        suppressed=repo.is_suppressed(session, project_id, digest),
        carts=sorted(subject.cart_ids),
        sessions=sorted(subject.session_ids),
        events=[portable(e) for e in found.events],
        features=features,
        dead_letters=[
            {
                "id": d.id,
                "pipeline_id": d.pipeline_id,
                "received_at": d.received_at.isoformat(),
                "status": d.status,
                "payload": d.payload,
                "reasons": d.reasons,
            }
            for d in dead
        ],
        requests=service.requests(project_id, MAX_REQUESTS, subject=user_id),
    )


async def _features(
    server: FeatureServer, project_id: str, entity_key: str, ids: list[str]
) -> list[dict[str, Any]]:
    """The feature vectors of ``ids`` that hold state (a value without state is "no_data")."""
    if not ids:
        return []
    catalog = await server.catalog(project_id)
    if not catalog.plans.get(entity_key) and not catalog.derived.get(entity_key):
        return []
    _, vectors = await server.entities(project_id, entity_key, ids, None)
    return [v for v in vectors if any(name not in v["status"] for name in v["values"])]
