"""AnalyticsStore on ClickHouse: ``chdb:///dir`` (in-process chDB) or
``clickhouse://[user:password@]host:8123/db`` (a server, through clickhouse-connect).

Both share the SQL below and the queries of ``queries`` (transpiled from DuckDB SQL); only
the small ``_Engine`` differs. Exactly once without transactions:

1. entries below the stored position of their partition are dropped;
2. the first entry per (project_id, event_id) by log order is kept;
3. event ids the project already holds are dropped (anti-join on the primary key);
4. the rest is inserted as ONE Arrow block with an ``insert_deduplication_token`` derived
   from its log positions (a concurrent identical insert is dropped by the server);
5. the positions are written (ReplacingMergeTree(next_offset): the max wins).

A crash between 4 and 5 replays the batch: step 3 finds its rows and inserts nothing. The
events table is a ReplacingMergeTree keyed by (project_id, event_id) and every read runs
with ``final = 1``, so even a duplicate that slipped past step 3 never shows. The engines
are in clickhouse_engines.py.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from dataintel.model.retention import EventCutoffs
from dataintel.model.subject import Subject
from dataintel.storage.analytics import decode, queries
from dataintel.storage.analytics.clickhouse_engines import literal
from dataintel.storage.analytics.decode import decode_entries
from dataintel.storage.analytics.port import (
    RUN_MARKER,
    AnalyticsStore,
    ApplyResult,
    BatchRun,
    EventCount,
    EventQuery,
    batch_table,
)
from dataintel.storage.errors import InvalidQuery
from dataintel.storage.eventlog.port import LogEntry

# Parts replaced by a merge or an erasure are removed within seconds, not 8 minutes, so an
# erased subject's bytes leave the disk promptly (docs/compliance.md).
_PROMPT_CLEANUP = (
    "old_parts_lifetime = 2, cleanup_delay_period = 1, max_cleanup_delay_period = 1, "
    "cleanup_delay_period_random_add = 0"
)
ERASURES_FRESH_S = 1.0  # how stale erasures() may be in another process
DDL = (
    """CREATE TABLE IF NOT EXISTS events (
        project_id String,
        pipeline_id LowCardinality(String),
        pipeline_version Int64,
        event_id String,
        event LowCardinality(String),
        ts DateTime64(6, 'UTC'),
        received_at DateTime64(6, 'UTC'),
        user_id Nullable(String),
        cart_id Nullable(String),
        session_id Nullable(String),
        properties String,
        log_partition Int64,
        log_offset Int64
    ) ENGINE = ReplacingMergeTree ORDER BY (project_id, event_id)
    SETTINGS non_replicated_deduplication_window = 10000, """
    + _PROMPT_CLEANUP
    + """""",
    # Tables created before: the settings apply from the server's next start.
    f"ALTER TABLE events MODIFY SETTING {_PROMPT_CLEANUP}",
    """CREATE TABLE IF NOT EXISTS log_positions (
        log_partition Int64,
        next_offset Int64
    ) ENGINE = ReplacingMergeTree(next_offset) ORDER BY log_partition""",
    """CREATE TABLE IF NOT EXISTS store_meta (key String, value Int64)
    ENGINE = ReplacingMergeTree(value) ORDER BY key""",
    """CREATE TABLE IF NOT EXISTS batch_feature_values (
        project_id String,
        feature String,
        version Int64,
        computed_at DateTime64(6, 'UTC'),
        entity_key String,
        entity String,
        value String
    ) ENGINE = ReplacingMergeTree ORDER BY (project_id, feature, version, computed_at, entity)
    SETTINGS """
    + _PROMPT_CLEANUP,
)


_RUN_KEY = ("project_id", "feature", "version", "computed_at")
_RUN_ENTITIES = (
    "SELECT entity FROM batch_feature_values WHERE project_id = $project_id "
    "AND feature = $feature AND version = $version AND computed_at = $computed_at"
)


class _Engine(Protocol):
    def command(self, sql: str) -> None: ...
    def table(self, sql: str, params: dict[str, Any], readonly: bool = False) -> pa.Table: ...
    def stream(
        self, sql: str, params: dict[str, Any], rows: int, readonly: bool = False
    ) -> Iterator[pa.RecordBatch]: ...
    def insert(self, table: str, data: pa.Table, token: str | None) -> None: ...
    def close(self) -> None: ...


class ClickHouseAnalytics(AnalyticsStore):
    dialect = "clickhouse"

    def __init__(self, engine: _Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._erasures: tuple[float, int] | None = None  # (read at, count): see erasures()
        for statement in DDL:
            engine.command(statement)

    def apply(self, entries: Sequence[LogEntry]) -> ApplyResult:
        if not entries:
            return ApplyResult()
        batch = decode_entries(entries)
        with self._lock:
            stored = self.positions()
            fresh = _first_per_event(_past_positions(batch, stored))
            fresh = self._not_stored(fresh)
            if fresh.num_rows:
                self._engine.insert("events", fresh, _token(fresh))
            positions = _advance(batch, stored)
            self._engine.insert("log_positions", _positions_table(positions), None)
        return ApplyResult(fresh.num_rows, len(entries) - fresh.num_rows, positions, batch)

    def restore(self, entries: Sequence[LogEntry]) -> int:
        """As ``apply`` without steps 1 and 5: the positions are neither read nor moved."""
        if not entries:
            return 0
        with self._lock:
            fresh = self._not_stored(_first_per_event(decode_entries(entries)))
            if fresh.num_rows:
                self._engine.insert("events", fresh, _token(fresh))
        return int(fresh.num_rows)

    def erase(self, subject: Subject) -> int:
        """A mutation that rewrites the parts holding the subject's rows (synchronously),
        then the wait until the server has removed the parts it replaced. The mutation
        names the subject by SHA-256 only: ClickHouse keeps finished mutations' text."""
        terms = " OR ".join(
            f"hex(SHA256(ifNull({column}, ''))) IN {literal(_digests(values))}"
            for column, values in (
                ("user_id", {subject.user_id}),
                ("cart_id", subject.cart_ids),
                ("session_id", subject.session_ids),
            )
            if values
        )
        where = f"project_id = {literal(subject.project_id)} AND ({terms})"
        deleted = self._mutate(where, always=True)
        self._erase_batch(subject)
        return deleted

    def _erase_batch(self, subject: Subject) -> None:
        """The subject's batch feature values (rows of its user, cart and session ids under
        those entity keys), by the same kind of mutation, named by SHA-256 only."""
        terms = " OR ".join(
            f"(entity_key = '{key}' AND hex(SHA256(entity)) IN {literal(_digests(values))})"
            for key, values in (
                ("user_id", {subject.user_id}),
                ("cart_id", subject.cart_ids),
                ("session_id", subject.session_ids),
            )
            if values
        )
        where = f"project_id = {literal(subject.project_id)} AND ({terms})"
        with self._lock:
            count = f"SELECT count() AS n FROM batch_feature_values WHERE {where}"  # noqa: S608
            if int(self._engine.table(count, {}).column("n")[0].as_py()):
                self._engine.command(
                    f"ALTER TABLE batch_feature_values DELETE WHERE {where} "
                    "SETTINGS mutations_sync = 2"
                )
                self._wait_replaced_parts_gone("batch_feature_values")

    def delete_events_before(self, project_id: str, cutoffs: EventCutoffs) -> int:
        """The same mutation as ``erase``, on the rows past their cutoff (the mutation names
        event names and times only)."""
        expired = cutoffs.condition("event", "ts", _time_or_text)
        if expired is None:
            return 0
        return self._mutate(f"project_id = {literal(project_id)} AND ({expired})", always=False)

    def _mutate(self, where: str, always: bool) -> int:
        """Delete the rows ``where`` (synchronously); when ``always`` or a row went, count an
        erasure and wait until the parts the mutation replaced are gone."""
        with self._lock:
            count = f"SELECT count() AS n FROM events WHERE {where}"  # noqa: S608
            found = self._engine.table(count, {})
            deleted = int(found.column("n")[0].as_py())
            if deleted:
                self._engine.command(
                    f"ALTER TABLE events DELETE WHERE {where} SETTINGS mutations_sync = 2"
                )
            if always or deleted:
                self._erasures = None  # a fresh read
                erasures = self.erasures() + 1
                self._engine.command(f"INSERT INTO store_meta VALUES ('erasures', {erasures:d})")  # noqa: S608
                self._erasures = (time.monotonic(), erasures)
                self._wait_replaced_parts_gone()
        return deleted

    def _wait_replaced_parts_gone(self, table: str = "events", timeout_s: float = 60.0) -> None:
        """Wait until the parts inactive now (those the mutation replaced, and older merges'
        leftovers that may hold the subject's rows) are removed; parts that become inactive
        later hold data written after the erasure."""
        query = (
            "SELECT name FROM system.parts WHERE database = currentDatabase() "  # noqa: S608
            f"AND table = {literal(table)} AND NOT active"
        )
        replaced = set(self._engine.table(query, {}).column("name").to_pylist())
        deadline = time.monotonic() + timeout_s
        while replaced:
            if time.monotonic() > deadline:
                raise TimeoutError("ClickHouse has not removed the parts an erasure replaced")
            time.sleep(0.2)
            replaced &= set(self._engine.table(query, {}).column("name").to_pylist())

    def erasures(self) -> int:
        """Read at most once a second (the analytics cache asks on every lookup): this
        process's own erasures count at once, another process's within a second."""
        cached = self._erasures
        if cached is not None and time.monotonic() - cached[0] < ERASURES_FRESH_S:
            return cached[1]
        found = self._engine.table("SELECT max(value) AS n FROM store_meta", {})
        value = found.column("n")[0].as_py() if found.num_rows else None
        self._erasures = (time.monotonic(), int(value or 0))
        return self._erasures[1]

    def positions(self) -> dict[int, int]:
        text, params = queries.POSITIONS.clickhouse()
        rows = self._engine.table(text, params).to_pylist()
        return {int(row["log_partition"]): int(row["next_offset"]) for row in rows}

    def scan_events(self, query: EventQuery) -> Iterator[pa.RecordBatch]:
        if query.batch_rows < 1:
            raise InvalidQuery("batch_rows must be positive")
        text, params = queries.scan_events(query).clickhouse()
        yield from queries.rebatch(
            self._engine.stream(text, params, query.batch_rows), query.batch_rows
        )

    def count_events(self, project_id: str, since: datetime | None = None) -> list[EventCount]:
        text, params = queries.count_events(project_id, since).clickhouse()
        rows = queries.normalize(self._engine.table(text, params)).to_pylist()
        return [
            EventCount(row["event"], row["hour"].astimezone(UTC), int(row["n"])) for row in rows
        ]

    def write_batch_values(self, run: BatchRun) -> None:
        """One insert with a token of the run's rows: a re-run with the same values is
        dropped by the server, one with new values replaces them by key (reads use FINAL).
        An entity an earlier write of the run had and this one lacks is overwritten with the
        run's empty value (what its absence means), as DuckDB's delete-and-insert gives."""
        key = (run.project_id, run.feature, run.version, queries.from_micros(run.computed_at))
        with self._lock:
            query = queries.Query(_RUN_ENTITIES, dict(zip(_RUN_KEY, key, strict=True)))
            found = self._engine.table(*query.clickhouse())
            stale = set(found.column("entity").to_pylist()) - set(run.values) - {RUN_MARKER}
            if stale:
                gone = dict.fromkeys(sorted(stale), run.empty)
                run = replace(run, values={**run.values, **gone})
            rows = batch_table(run)
            digest = hashlib.sha256()
            for column in rows.columns:
                digest.update(str(column.to_pylist()).encode())
            self._engine.insert("batch_feature_values", rows, f"bf-{digest.hexdigest()}")

    def sql(self, query: str, params: Sequence[object] = ()) -> pa.Table:
        text, values = queries.user_query(query, params).clickhouse()
        try:
            table = self._engine.table(text, values, readonly=True)
        except RuntimeError as exc:
            raise InvalidQuery(f"the query failed: {exc}") from exc
        return queries.normalize(table)

    def sql_batches(
        self,
        query: str,
        params: Sequence[object] = (),
        tables: Mapping[str, pa.Table] | None = None,
        batch_rows: int = 10_000,
    ) -> Iterator[pa.RecordBatch]:
        """Lent tables become Memory tables under unique names for the query's lifetime."""
        if batch_rows < 1:
            raise InvalidQuery("batch_rows must be positive")
        extra = queries.caller_tables(tables)
        checked = queries.user_query(query, params, frozenset(extra))
        renames = {name: f"_lent_{name}_{uuid.uuid4().hex}" for name in extra}
        text, values = checked.clickhouse(renames)
        try:
            for name, table in extra.items():
                columns = ", ".join(f"`{f.name}` {_ch_column(f)}" for f in table.schema)
                with self._lock:  # the session is shared with apply()
                    self._engine.command(
                        f"CREATE TABLE {renames[name]} ({columns}) ENGINE = Memory"
                    )
                    if table.num_rows:
                        self._engine.insert(renames[name], _utc_times(table), None)
            try:
                batches = self._engine.stream(text, values, batch_rows, readonly=True)
                yield from queries.sized(batches, batch_rows)
            except RuntimeError as exc:
                raise InvalidQuery(f"the query failed: {exc}") from exc
        finally:
            with self._lock:
                for lent in renames.values():
                    self._engine.command(f"DROP TABLE IF EXISTS {lent}")

    def ping(self) -> None:
        self._engine.table("SELECT 1", {})

    def close(self) -> None:
        self._engine.close()

    def _not_stored(self, batch: pa.Table) -> pa.Table:
        """Drop the rows whose (project_id, event_id) the store already holds."""
        if not batch.num_rows:
            return batch
        keep = pa.array([True] * batch.num_rows)
        for project in pc.unique(batch.column("project_id")).to_pylist():
            mine = pc.equal(batch.column("project_id"), project)
            ids = batch.filter(mine).column("event_id").to_pylist()
            text, params = queries.stored_event_ids(project, ids).clickhouse()
            known = self._engine.table(text, params).column("event_id")
            if len(known):
                seen = pc.is_in(batch.column("event_id"), value_set=known.combine_chunks())
                keep = pc.and_(keep, pc.invert(pc.and_(mine, seen)))
        return batch.filter(keep)


def _past_positions(batch: pa.Table, stored: dict[int, int]) -> pa.Table:
    partitions, offsets = batch.column("log_partition"), batch.column("log_offset")
    below = pa.array([False] * batch.num_rows)
    for partition, next_offset in stored.items():
        old = pc.and_(pc.equal(partitions, partition), pc.less(offsets, next_offset))
        below = pc.or_(below, old)
    return batch.filter(pc.invert(below))


def _first_per_event(batch: pa.Table) -> pa.Table:
    """Keep the first row per (project_id, event_id) by (log_partition, log_offset)."""
    if not batch.num_rows:
        return batch
    order = [("log_partition", "ascending"), ("log_offset", "ascending")]
    batch = batch.take(pc.sort_indices(batch, sort_keys=order))
    rows = batch.append_column("_row", pa.array(range(batch.num_rows), pa.int64()))
    firsts = rows.group_by(["project_id", "event_id"], use_threads=False).aggregate(
        [("_row", "min")]
    )
    if firsts.num_rows == batch.num_rows:
        return batch
    keep = firsts.column("_row_min").combine_chunks()
    return batch.take(keep.take(pc.array_sort_indices(keep)))


def _advance(batch: pa.Table, stored: dict[int, int]) -> dict[int, int]:
    ends = batch.group_by("log_partition", use_threads=False).aggregate([("log_offset", "max")])
    positions = {}
    for partition, last in zip(
        ends.column("log_partition").to_pylist(),
        ends.column("log_offset_max").to_pylist(),
        strict=True,
    ):
        positions[int(partition)] = max(int(last) + 1, stored.get(int(partition), 0))
    return positions


def _positions_table(positions: dict[int, int]) -> pa.Table:
    return pa.table(
        {
            "log_partition": pa.array(list(positions), pa.int64()),
            "next_offset": pa.array(list(positions.values()), pa.int64()),
        }
    )


def _utc_times(table: pa.Table) -> pa.Table:
    """Naive timestamp columns (UTC by convention) → tagged UTC, as DateTime64(6, 'UTC')."""
    for index, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type) and f.type != decode.TIMESTAMP:
            table = table.set_column(
                index,
                pa.field(f.name, decode.TIMESTAMP, f.nullable),
                queries.normalize(table.select([index])).column(0),
            )
    return table


def _ch_column(f: pa.Field) -> str:
    """The ClickHouse type of a lent Arrow column."""
    kind = f.type
    if pa.types.is_timestamp(kind):
        name = "DateTime64(6, 'UTC')"
    elif pa.types.is_boolean(kind):
        name = "Bool"
    elif pa.types.is_integer(kind):
        name = "Int64"
    elif pa.types.is_floating(kind):
        name = "Float64"
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        name = "String"
    else:
        raise InvalidQuery(f"column {f.name!r}: unsupported type {kind}")
    return f"Nullable({name})" if f.nullable else name


def _token(batch: pa.Table) -> str:
    """The same rows at the same log positions → the same token."""
    digest = hashlib.sha256()
    for name in ("log_partition", "log_offset"):
        for buffer in batch.column(name).combine_chunks().buffers():
            if buffer is not None:
                digest.update(buffer)
    return "events-" + digest.hexdigest()


def _digests(values: Iterable[str]) -> list[str]:
    return sorted(hashlib.sha256(v.encode()).hexdigest().upper() for v in values)


def _time_or_text(value: str | datetime) -> str:
    """A literal: text quoted, a time as DateTime64(6, 'UTC')."""
    if isinstance(value, str):
        return literal(value)
    text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"toDateTime64('{text}', 6, 'UTC')"
