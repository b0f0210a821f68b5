"""Erasure in the EventLog port, on both adapters: the embedded log turns the subject's
entries into tombstones, Kafka shreds their data keys (crypto-shredding). Either way no
read returns them afterwards, and the others are untouched."""

from __future__ import annotations

import uuid

import orjson
import pytest

from dataintel.model.subject import Subject
from dataintel.storage.eventlog.port import AppendItem
from dataintel.storage.metadata import migrate
from dataintel.storage.metadata.engine import make_engine
from tests.storage.contract.test_eventlog import Logs, anyio_backend  # noqa: F401
from tests.storage.contract.test_eventlog import logs as logs  # the fixture

pytestmark = pytest.mark.anyio


RUN = uuid.uuid4().hex[:8]  # dedup keys unique to this run (Kafka's dedup store is Redis)


def _item(i: int, user: str | None, cart: str | None = None) -> AppendItem:
    event = {"project_id": "p1", "event_id": f"e{i}", "user_id": user, "cart_id": cart}
    entity = user or cart
    return AppendItem(
        entity or f"e{i}",
        orjson.dumps(event),
        f"p1/{RUN}-{uuid.uuid4().hex[:6]}-e{i}",
        ("p1", entity) if entity else None,
    )


async def _all(log: object) -> list[dict[str, object]]:
    out = []
    for p in range(log.partitions):  # type: ignore[attr-defined]
        for entry in await log.read(p, 0, 1000):  # type: ignore[attr-defined]
            out.append(orjson.loads(entry.value))
    return out


async def test_erase_leaves_no_readable_entry_of_the_subject(logs: Logs) -> None:
    engine = make_engine(logs.settings.resolved_metadata_url)
    migrate.upgrade(engine)  # the Kafka adapter keeps its data keys in the metadata store
    engine.dispose()
    log = await logs.open(2)
    items = [_item(0, "alice", "cart-a"), _item(1, "bob"), _item(2, None, "cart-a")]
    items += [_item(3, "alice"), _item(4, None)]
    await log.append(items)
    assert sorted(str(e["event_id"]) for e in await _all(log)) == ["e0", "e1", "e2", "e3", "e4"]

    subject = Subject("p1", "alice", frozenset({"cart-a"}))
    erased = await log.erase(subject, await log.end_offsets())
    assert erased == (3 if logs.kind == "sqlite" else 2)  # entries, or keys destroyed
    assert sorted(str(e["event_id"]) for e in await _all(log)) == ["e1", "e4"]
    reopened = await logs.reopen(log)  # from the storage, not a cache
    assert sorted(str(e["event_id"]) for e in await _all(reopened)) == ["e1", "e4"]
    await reopened.append([_item(5, "alice")])  # a new key: readable again
    assert "e5" in {str(e["event_id"]) for e in await _all(reopened)}


@pytest.mark.parametrize("logs", [pytest.param("kafka", marks=pytest.mark.redis)], indirect=True)
async def test_kafka_records_are_sealed_on_the_wire(logs: Logs) -> None:
    """Kafka only: the embedded log stores in clear and erases by tombstones."""
    assert logs.kind == "kafka"
    from dataintel.storage.eventlog.dedup import open_dedup_store
    from dataintel.storage.eventlog.kafka import KafkaEventLog

    engine = make_engine(logs.settings.resolved_metadata_url)
    migrate.upgrade(engine)
    engine.dispose()
    log = await logs.open(1)
    await log.append([_item(0, "carol-secret-id"), _item(1, None)])
    dedup = open_dedup_store(logs.settings.cache_url, 60)
    raw = KafkaEventLog(log.target, dedup)  # type: ignore[attr-defined]  # no keys: as stored
    await raw.start()
    try:
        values = [e.value for e in await raw.read(0, 0, 10)]
    finally:
        await raw.close()
    assert len(values) == 2
    assert all(b"carol-secret-id" not in v for v in values)  # sealed
    assert any(v.startswith(b"{") for v in values)  # the record without an entity is plain
