"""The AnalyticsStore contract, ``restore`` (reconciliation's repair), on DuckDB and chDB:
it inserts exactly the events the store lacks, whatever the stored positions, never moves
them, keeps the first entry per event, and a second call (or a later ``apply`` of the same
entries) inserts nothing: no event is ever counted twice."""

from __future__ import annotations

from datetime import timedelta

from dataintel.model.retention import EventCutoffs
from dataintel.storage.analytics.port import AnalyticsStore
from tests.storage.contract.test_analytics import T0, entry, opener, run, store

__all__ = ["opener", "store"]  # the engine fixtures of the analytics contract


def ids(store: AnalyticsStore, project: str = "p1") -> list[str]:
    table = store.sql("SELECT event_id FROM events WHERE project_id = ? ORDER BY 1", [project])
    return [str(v) for v in table.column("event_id").to_pylist()]


def test_restore_inserts_exactly_the_missing_events_and_moves_no_position(
    store: AnalyticsStore,
) -> None:
    store.apply(run(10))
    assert store.positions() == {0: 10}
    # Damage: the first four events go (as a retention run would delete them).
    cutoff = T0 + timedelta(seconds=4)
    assert store.delete_events_before("p1", EventCutoffs(default=cutoff)) == 4
    assert ids(store) == [f"e0-{o:06d}" for o in range(4, 10)]

    # The log's entries 0..11: 0..3 are missing, 4..9 stored, 10..11 not applied yet.
    assert store.restore(run(12)) == 6
    assert store.positions() == {0: 10}  # restore never moves a position
    assert ids(store) == [f"e0-{o:06d}" for o in range(12)]
    assert store.restore(run(12)) == 0  # idempotent
    # The processor's later apply of 10..11 finds them stored: no double count.
    result = store.apply(run(12, start=10))
    assert (result.inserted, result.skipped) == (0, 2)
    assert store.positions() == {0: 12}
    counted = store.sql("SELECT count(*) AS n FROM events WHERE project_id = 'p1'")
    assert counted.column("n").to_pylist() == [12]


def test_restore_keeps_the_first_entry_per_event_and_projects_apart(
    store: AnalyticsStore,
) -> None:
    first = entry(1, 5, "dup", properties={"which": "first"})
    later = entry(1, 9, "dup", properties={"which": "later"})
    other = entry(1, 7, "dup", project_id="p2")
    assert store.restore([later, other, first]) == 2
    assert ids(store, "p1") == ["dup"]
    assert ids(store, "p2") == ["dup"]
    kept = store.sql("SELECT properties, log_offset FROM events WHERE project_id = 'p1'")
    assert kept.column("log_offset").to_pylist() == [5]
    assert "first" in kept.column("properties").to_pylist()[0]
    assert store.positions() == {}
    assert store.restore([]) == 0
