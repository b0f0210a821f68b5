"""Metadata SQL shared by the GDPR plane and ingest: the installation's secret (the key of
subject hashes) and a project's suppression list."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dataintel.storage.metadata.gdpr_models import GdprSuppression, ServiceSecret

SUBJECT_SECRET = "gdpr_subject_hash_key"  # noqa: S105 - the name of a generated secret


def secret(session: Session, name: str = SUBJECT_SECRET) -> bytes:
    """The installation's secret ``name``, created on first use (every process agrees)."""
    found = session.get(ServiceSecret, name)
    if found is None:
        try:
            with session.begin_nested():
                session.add(ServiceSecret(name=name, value=secrets.token_hex(32)))
        except IntegrityError:  # another process created it first
            pass
        found = session.get(ServiceSecret, name)
        assert found is not None
    return bytes.fromhex(found.value)


def suppressed(session: Session, project_id: str) -> frozenset[str]:
    query = select(GdprSuppression.subject_hash).where(GdprSuppression.project_id == project_id)
    return frozenset(session.scalars(query))


_SECRETS: dict[int, bytes] = {}  # id(sessionmaker) → its store's secret (never changes)


def installation_secret(sessions: sessionmaker[Session]) -> bytes:
    """``secret`` read (or created) in a short transaction of its own and kept in memory: a
    request must not hold the metadata store's write lock for its duration to create it."""
    found = _SECRETS.get(id(sessions))
    if found is None:
        with sessions.begin() as session:
            found = _SECRETS[id(sessions)] = secret(session)
    return found
