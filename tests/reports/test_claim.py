"""The report queue on both metadata stores: concurrent workers never claim one report
twice; a lease that runs out makes the report claimable again; a stale worker cannot
finish a report it lost; interrupted runs beyond the maximum fail the report with the
reason; PostgreSQL skips a row another worker holds instead of waiting for it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from dataintel.reports import repository
from dataintel.storage.metadata import migrate
from dataintel.storage.metadata.engine import make_engine, make_sessionmaker
from dataintel.storage.metadata.models import Project
from dataintel.storage.metadata.report_models import Report
from dataintel.storage.metadata.types import utcnow

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
T0 = utcnow()
LEASE = timedelta(seconds=30)
OUT = repository.Output("t", "/nowhere", "r.csv", "text/csv", 1)


@pytest.fixture
def sessions(metadata_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(metadata_url)
    migrate.upgrade(engine)
    made = make_sessionmaker(engine)
    with made.begin() as session:
        session.add(Project(id="p1", name="P1"))
    yield made
    engine.dispose()


def _queue(sessions: sessionmaker[Session], n: int) -> list[str]:
    ids = [f"rep_{i:032x}" for i in range(n)]
    with sessions.begin() as session:
        for i, rid in enumerate(ids):
            session.add(
                Report(
                    id=rid,
                    project_id="p1",
                    kind="event_counts",
                    params={},
                    format="csv",
                    state="queued",
                    attempts=0,
                    created_by="t",
                    created_at=T0 + timedelta(microseconds=i),
                )
            )
    return ids


def _claim(
    sessions: sessionmaker[Session], owner: str, at: timedelta = timedelta(0), max_attempts: int = 3
) -> Report | None:
    now = T0 + at
    with sessions.begin() as session:
        return repository.claim(session, owner, now, now + LEASE, max_attempts)


def test_concurrent_workers_claim_each_report_exactly_once(
    sessions: sessionmaker[Session],
) -> None:
    ids = _queue(sessions, 60)
    taken: dict[str, list[str]] = {f"w{i}": [] for i in range(4)}
    start = threading.Barrier(4)

    def work(owner: str) -> None:
        start.wait()
        while (report := _claim(sessions, owner)) is not None:
            taken[owner].append(report.id)

    threads = [threading.Thread(target=work, args=(o,)) for o in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [rid for got in taken.values() for rid in got]
    assert sorted(claimed) == ids  # every report once, none twice
    with sessions() as session:
        rows = session.query(Report).all()
        assert {r.state for r in rows} == {"running"}
        assert {r.attempts for r in rows} == {1}
        assert {r.lease_owner for r in rows} <= set(taken)


def test_a_lease_that_runs_out_is_claimed_again_and_the_stale_worker_loses(
    sessions: sessionmaker[Session],
) -> None:
    (rid,) = _queue(sessions, 1)
    first = _claim(sessions, "a")
    assert first is not None
    assert (first.id, first.attempts, first.state) == (rid, 1, "running")
    assert _claim(sessions, "b", timedelta(seconds=29)) is None  # a still holds it
    with sessions.begin() as session:  # a renews: its lease now ends at T0 + 40 s
        assert repository.renew(session, rid, "a", T0 + timedelta(seconds=40))
    assert _claim(sessions, "b", timedelta(seconds=35)) is None
    again = _claim(sessions, "b", timedelta(seconds=41))  # a died: its lease ran out
    assert again is not None
    assert (again.id, again.attempts, again.lease_owner) == (rid, 2, "b")
    with sessions.begin() as session:
        assert not repository.renew(session, rid, "a", T0 + timedelta(hours=1))
        assert not repository.finish(session, rid, "a", OUT, T0, T0 + LEASE)
        assert not repository.fail(session, rid, "a", "late", T0, T0 + LEASE)
        assert repository.finish(session, rid, "b", OUT, T0, T0 + LEASE)
    with sessions() as session:
        done = session.get(Report, rid)
        assert done is not None
        assert (done.state, done.file_path, done.lease_owner) == ("done", "/nowhere", None)


def test_interrupted_runs_beyond_the_maximum_fail_the_report_with_the_reason(
    sessions: sessionmaker[Session],
) -> None:
    (rid,) = _queue(sessions, 1)
    assert _claim(sessions, "a", max_attempts=2) is not None
    assert _claim(sessions, "b", timedelta(minutes=1), max_attempts=2) is not None
    later = T0 + timedelta(minutes=2)
    assert _claim(sessions, "c", timedelta(minutes=2), max_attempts=2) is None
    with sessions.begin() as session:
        assert repository.fail_abandoned(session, later, 2, later + LEASE) == 1
    with sessions() as session:
        failed = session.get(Report, rid)
        assert failed is not None
        assert failed.state == "failed"
        assert failed.attempts == 2
        assert failed.error is not None
        assert "interrupted 2 times" in failed.error
        assert failed.expires_at == later + LEASE


def test_release_gives_the_report_back_without_counting_the_run(
    sessions: sessionmaker[Session],
) -> None:
    (rid,) = _queue(sessions, 1)
    assert _claim(sessions, "a") is not None
    with sessions.begin() as session:
        assert repository.release(session, rid, "a")
    again = _claim(sessions, "b")
    assert again is not None
    assert again.attempts == 1


def test_expiry_picks_finished_reports_only(sessions: sessionmaker[Session]) -> None:
    done, failed, queued = _queue(sessions, 3)
    for rid, owner in ((done, "a"), (failed, "b")):
        claimed = _claim(sessions, owner)
        assert claimed is not None
        assert claimed.id == rid  # oldest first
    with sessions.begin() as session:
        repository.finish(session, done, "a", OUT, T0, T0 + timedelta(hours=1))
        repository.fail(session, failed, "b", "no", T0, T0 + timedelta(hours=2))
    with sessions() as session:
        assert repository.due_to_expire(session, T0 + timedelta(minutes=59)) == []
        due = repository.due_to_expire(session, T0 + timedelta(hours=3))
        assert [r.id for r in due] == [done, failed]
    with sessions.begin() as session:
        repository.mark_expired(session, done)
    with sessions() as session:
        row = session.get(Report, done)
        assert row is not None
        assert (row.state, row.file_path) == ("expired", None)
        assert [r.id for r in repository.due_to_expire(session, T0 + timedelta(hours=3))] == [
            failed
        ]
    assert queued
