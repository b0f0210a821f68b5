"""PostgreSQL only: a claim skips the row another worker's open transaction holds
(``FOR UPDATE SKIP LOCKED``) instead of waiting for it. SQLite has one writer at a time,
so there is no row lock to skip there."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from dataintel.reports import repository
from tests.reports.test_claim import LEASE, T0, _claim, _queue
from tests.reports.test_claim import sessions as sessions  # the fixture

pytestmark = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def test_postgres_skips_a_report_another_worker_holds(
    sessions: sessionmaker[Session],
) -> None:
    first, second = _queue(sessions, 2)
    holder = sessions()
    try:
        holder.begin()
        held = repository.claim(holder, "a", T0, T0 + LEASE, 3)  # not committed yet
        assert held is not None
        assert held.id == first
        other = _claim(sessions, "b")  # does not wait for a's transaction
        assert other is not None
        assert other.id == second
        holder.commit()
    finally:
        holder.close()
