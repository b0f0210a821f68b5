"""The one composition root (DESIGN.md §4, docs/adr/0006): builds the ports of a process role
and wires the planes. Nothing else constructs the stores, caches and services that outlive a
request; planes receive them (``AppState.port(TOKEN)`` in endpoints, arguments elsewhere).
"""

from __future__ import annotations

import asyncio
import signal
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from dataintel import tracing
from dataintel.api.ports import Port
from dataintel.api.state import ANALYTICS, EVENTLOG, ONLINE, AppState
from dataintel.config.deployments.active import CONFIGS, ActiveConfigCache
from dataintel.features.batch.jobs import DESCRIPTION as BATCH_DESCRIPTION
from dataintel.features.batch.jobs import JOB as BATCH_JOB
from dataintel.features.batch.jobs import batch_feature_jobs
from dataintel.features.online.engine import RECOMPUTE, Recompute
from dataintel.features.serving.service import SERVER, FeatureServer
from dataintel.gdpr.erasure import Stores as GdprStores
from dataintel.gdpr.metrics import GdprMetrics
from dataintel.gdpr.outbox import Outbox
from dataintel.gdpr.runner import GDPR_RUNNER, GdprRunner
from dataintel.ingest.ports import FEATURE_BUILDS
from dataintel.model.jobs import Job, JobInfo
from dataintel.quality import alerts_metrics as alert_metrics
from dataintel.quality.jobs import RULES_DESCRIPTION, RULES_JOB, quality_jobs
from dataintel.quality.monitor_jobs import monitor_catalog, monitor_jobs
from dataintel.reconciliation.jobs import DAILY as RECONCILIATION_JOB
from dataintel.reconciliation.jobs import DESCRIPTION as RECONCILIATION_DESCRIPTION
from dataintel.reconciliation.jobs import reconciliation_jobs
from dataintel.reports.runner import REPORTS, ReportRunner
from dataintel.retention.runner import DESCRIPTION as RETENTION_DESCRIPTION
from dataintel.retention.runner import JOB as RETENTION_JOB
from dataintel.retention.runner import RETENTION_RUNNER, RetentionRunner
from dataintel.retention.stores import Stores as RetentionStores
from dataintel.scheduler.metrics import JobMetrics
from dataintel.scheduler.port import JOBS
from dataintel.scheduler.service import SCHEDULER, Scheduler
from dataintel.settings import Settings
from dataintel.storage.breakers import DEPENDENCIES, STATE_VALUES, Breakers
from dataintel.storage.eventlog.kafka_topic import KafkaTopic
from dataintel.storage.eventlog.spool import SpooledEventLog
from dataintel.storage.metadata.engine import make_engine, make_sessionmaker
from dataintel.storage.stores import Stores
from dataintel.stream.lifecycle import StreamRuntime
from dataintel.stream.progress import PROGRESS

if TYPE_CHECKING:
    from dataintel.export.datalake.exporter import DataLakeExport
    from dataintel.ingest.resources import IngestRuntime
    from dataintel.storage.analytics.port import AnalyticsStore
    from dataintel.storage.blob.port import BlobStore


SPOOL: Port[SpooledEventLog] = Port("spool", "no ingest spool in this process")


class Role(StrEnum):
    API = "api"  # HTTP; the processor runs in a `dataintel worker` process
    WORKER = "worker"  # the processor only
    BOTH = "both"  # HTTP and the processor in one process (the embedded default)


def role_of(settings: Settings) -> Role:
    """The role of an HTTP process."""
    return Role.BOTH if settings.processor_enabled else Role.API


def embedded_analytics(settings: Settings) -> bool:
    """An in-process analytics engine (DuckDB, chDB) can be open in one process only: the
    one running the processor."""
    return settings.resolved_analytics_url.startswith(("duckdb:", "chdb:"))


def build_state(settings: Settings, role: Role) -> AppState:
    """What the role needs before start-up: the metadata store, the deployed-config cache
    and, for HTTP roles, the rate limiter, the project directory and the ingest objects."""
    engine = make_engine(settings.resolved_metadata_url)
    sessions = make_sessionmaker(engine)
    breakers = Breakers(settings.breaker_threshold, settings.breaker_reset_seconds)
    breakers.instrument_engine(engine)
    state = AppState(
        settings=settings, engine=engine, sessions=sessions, rate_limiter=None, breakers=breakers
    )
    _breaker_metrics(state)
    state.provide(CONFIGS, ActiveConfigCache(sessions, settings.config_cache_ttl_seconds))
    alert_metrics.register(state.metrics_registry, sessions)
    if role is not Role.WORKER:
        _provide_http(state)
    return state


def _provide_http(state: AppState) -> None:
    # Imported here: a worker restarts often and must not load the HTTP planes.
    from dataintel.analytics.cache import ANALYTICS_CACHE, AnalyticsCache
    from dataintel.api.fast_scope import PROJECTS, ProjectDirectory
    from dataintel.api.ratelimit import RateLimiter
    from dataintel.api.sensitive import SENSITIVE_LIMITS, SensitiveLimits
    from dataintel.ingest.resources import INGEST, IngestRuntime
    from dataintel.storage.cache import open_cache

    settings, sessions = state.settings, state.sessions
    if settings.rate_limit:
        state.rate_limiter = RateLimiter(settings.rate_limit, settings.rate_limit_storage_url)
    sensitive = SensitiveLimits.build(settings)
    if sensitive is not None:
        state.provide(SENSITIVE_LIMITS, sensitive)
    state.provide(PROJECTS, ProjectDirectory(sessions))
    state.provide(INGEST, IngestRuntime.build(settings, sessions))
    state.provide(ANALYTICS_CACHE, AnalyticsCache(open_cache(settings.cache_url)))


@asynccontextmanager
async def running(state: AppState, role: Role) -> AsyncIterator[None]:
    """Open the role's stores, start what runs beside the handlers, provide the ports; on
    exit withdraw them and close everything in reverse."""
    settings, configs = state.settings, state.port(CONFIGS)
    tracer = tracing.configure(settings.otel_traces_endpoint, settings.otel_service_name, role)
    tracing.instrument_engine(state.engine)
    lake_replica = role is Role.API and settings.resolved_analytics_url.startswith("datalake:")
    open_analytics = not lake_replica and (role is not Role.API or not embedded_analytics(settings))
    spool_path = settings.ingest_spool_path or settings.data_dir / "ingest-spool.db"
    opened = await Stores.open(
        settings,
        eventlog_url=settings.resolved_eventlog_url,
        online_url=settings.resolved_online_url,
        online_ttl_seconds=settings.online_ttl_seconds,
        analytics_url=settings.resolved_analytics_url if open_analytics else None,
    )
    if lake_replica:
        replica = await asyncio.to_thread(_datalake_replica, settings)
        opened = Stores(opened.eventlog, opened.online, replica)
    stores = _guarded(state.breakers, opened)
    if role is not Role.WORKER and settings.resolved_eventlog_url.startswith("kafka://"):
        spool = SpooledEventLog(
            stores.eventlog,
            spool_path,
            int(settings.ingest_spool_max_mb * 1024 * 1024),
            settings.ingest_spool_after_seconds,
        )
        await spool.start()
        stores = Stores(spool, stores.online, stores.analytics)
        state.provide(SPOOL, spool)
    stream = await StreamRuntime.start(
        stores,
        state.metrics_registry,
        batch_events=settings.processor_batch_events,
        configs=configs if role is not Role.API else None,
        sessions=state.sessions,
    )
    provided: list[Port[Any]] = [EVENTLOG, ONLINE, PROGRESS, SERVER, FEATURE_BUILDS]
    state.provide(EVENTLOG, stores.eventlog)
    state.provide(ONLINE, stores.online)
    state.provide(PROGRESS, stream.progress)
    server = FeatureServer(
        stores.online,
        configs,
        settings.serving_timeout_seconds,
        settings.serving_stale_vectors,
        _lookups(state),
    )
    state.provide(SERVER, server)
    state.provide(FEATURE_BUILDS, server)
    if stores.analytics is not None:
        state.provide(ANALYTICS, stores.analytics)
        provided.append(ANALYTICS)
    lake = _datalake(settings, stores) if role is not Role.API else None
    gdpr: GdprRunner | None = None
    retention: RetentionRunner | None = None
    if stream.processor is not None and stream.features is not None:
        recompute = Recompute(stream.features, stream.processor.lock)
        state.provide(RECOMPUTE, recompute)
        provided.append(RECOMPUTE)
        gdpr = _gdpr(state, stores, recompute, lake.store if lake is not None else None)
        retention = _retention(
            state, stores, stream.processor.lock, lake.store if lake is not None else None
        )
    if gdpr is not None:
        state.provide(GDPR_RUNNER, gdpr)
        provided.append(GDPR_RUNNER)
    if retention is not None:
        state.provide(RETENTION_RUNNER, retention)
        provided.append(RETENTION_RUNNER)
    reports = _reports(state, stores) if role is not Role.API else None
    if reports is not None:
        state.provide(REPORTS, reports)
        provided.append(REPORTS)
    scheduler = _scheduler(state, stores, role, retention)
    state.provide(SCHEDULER, scheduler)
    state.provide(JOBS, scheduler)
    provided += [SCHEDULER, JOBS]
    ingest = _ingest(state) if role is not Role.WORKER else None
    if ingest is not None:
        ingest.start()
    try:
        yield
    finally:
        if ingest is not None:
            ingest.stop()
        for token in provided:
            state.withdraw(token)
        await scheduler.stop()  # before the stores its jobs use close
        if reports is not None:  # before the stores it reads close
            await reports.stop()
        if gdpr is not None:
            await gdpr.stop()
        if lake is not None:  # writes what it holds: before the event log closes
            await lake.stop()
            lake.store.close()
        await stream.stop()
        state.withdraw(SPOOL)
        await stores.close()
        if tracer is not None:
            tracer.shutdown()  # flushes the spans still batched
            tracing.disable()


def _breaker_metrics(state: AppState) -> None:
    """``dataintel_breaker_state{dependency}``: 0 closed, 1 half-open, 2 open (read at
    scrape time)."""
    from prometheus_client import Gauge

    gauge = Gauge(
        "dataintel_breaker_state",
        "Circuit breaker of each backend: 0 closed, 1 half-open (trying again), 2 open "
        "(calls refused at once).",
        ["dependency"],
        registry=state.metrics_registry,
    )
    for name in DEPENDENCIES:
        gauge.labels(name).set_function(
            lambda name=name: STATE_VALUES[state.breakers.state(name)]  # type: ignore[misc]
        )
    for index, (metric, what) in enumerate((("events", "Events"), ("bytes", "Event bytes"))):
        Gauge(
            f"dataintel_ingest_spool_{metric}",
            f"{what} acknowledged while the event log was down, waiting in this API process's "
            "local spool to be forwarded (0 without a Kafka log).",
            registry=state.metrics_registry,
        ).set_function(lambda i=index: _spool_depth(state)[i])  # type: ignore[misc]


_LOOKUPS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _lookups(state: AppState) -> Any:
    """``dataintel_online_lookups_total{found}``: entity reads of the feature server, and
    whether the online store held any state for the entity (its hit rate)."""
    from prometheus_client import Counter

    registry = state.metrics_registry
    found = _LOOKUPS.get(registry)
    if found is None:
        found = _LOOKUPS[registry] = Counter(
            "dataintel_online_lookups",
            "Entities read by the feature server, by whether the online store held state "
            "for them (found=true): the online store's hit rate.",
            ["found"],
            registry=registry,
        )
    return found


def _spool_depth(state: AppState) -> tuple[int, int]:
    spool = state.find(SPOOL)
    return spool.depth() if spool is not None else (0, 0)


def _guarded(breakers: Breakers, stores: Stores) -> Stores:
    """The stores behind their breakers, and with spans when tracing is on."""
    stores = _traced(stores)
    analytics = stores.analytics
    return Stores(
        breakers.guarded(stores.eventlog, "eventlog"),
        breakers.guarded(stores.online, "online"),
        breakers.guarded(analytics, "analytics") if analytics is not None else None,
    )


def _traced(stores: Stores) -> Stores:
    """The stores with a span around every call, when tracing is on (else unchanged)."""
    if not tracing.enabled():
        return stores
    analytics = stores.analytics
    return Stores(
        tracing.traced(stores.eventlog, "eventlog"),
        tracing.traced(stores.online, "online"),
        tracing.traced(analytics, "analytics", analytics.dialect) if analytics else None,
    )


def _scheduler(
    state: AppState, stores: Stores, role: Role, retention: RetentionRunner | None
) -> Scheduler:
    """Workers (where the processor and the analytics store run) run the jobs; an API-only
    process only queues manual runs of them."""
    settings = state.settings
    metrics = JobMetrics.create(state.metrics_registry)
    if role is Role.API or stores.analytics is None:
        return Scheduler(settings, state.sessions, catalog=job_catalog(settings), metrics=metrics)
    jobs = _jobs(retention, state, stores)
    scheduler = Scheduler(settings, state.sessions, jobs=jobs, metrics=metrics)
    scheduler.start()
    return scheduler


def _jobs(retention: RetentionRunner | None, state: AppState, stores: Stores) -> list[Job]:
    """Every scheduled job of the installation, with the ports it runs on."""
    jobs: list[Job] = []
    if retention is not None:
        jobs.append(retention.job())
    recompute = state.find(RECOMPUTE)  # its lock: the processor's, between two batches
    if stores.analytics is not None:
        configs = state.port(CONFIGS)
        tick = state.settings.batch_features_tick_seconds
        jobs += batch_feature_jobs(stores.analytics, stores.online, state.sessions, configs, tick)
        snapshot_of = lambda p: configs.get(p).snapshot  # noqa: E731
        server = state.port(SERVER)
        lock = recompute.lock if recompute is not None else None
        monitors = (state.settings, state.sessions, stores.analytics, snapshot_of, server)
        jobs += monitor_jobs(*monitors, between_batches=lock)
        rules_every = state.settings.quality_interval_seconds
        jobs += quality_jobs(stores.analytics, state.sessions, configs, rules_every)
    if recompute is not None and stores.analytics is not None:
        every = timedelta(seconds=state.settings.reconciliation_interval_seconds)
        jobs += reconciliation_jobs(
            stores.eventlog,
            stores.analytics,
            stores.online,
            recompute,
            state.sessions,
            state.port(CONFIGS),
            every,
            state.settings.reconciliation_scheduled,
            timedelta(seconds=state.settings.online_ttl_seconds),
        )
    return jobs


def job_catalog(settings: Settings) -> list[JobInfo]:
    """What ``_jobs`` schedules, for processes that do not run jobs (a test keeps the two
    equal)."""
    every = timedelta
    return [
        JobInfo(
            RETENTION_JOB, RETENTION_DESCRIPTION, every(seconds=settings.retention_interval_seconds)
        ),
        JobInfo(BATCH_JOB, BATCH_DESCRIPTION, every(seconds=settings.batch_features_tick_seconds)),
        *monitor_catalog(settings),
        JobInfo(RULES_JOB, RULES_DESCRIPTION, every(seconds=settings.quality_interval_seconds)),
        JobInfo(
            RECONCILIATION_JOB,
            RECONCILIATION_DESCRIPTION,
            every(seconds=settings.reconciliation_interval_seconds),
        ),
    ]


def _reports(state: AppState, stores: Stores) -> ReportRunner | None:
    """The report worker runs beside the processor: where the analytics store is open."""
    if stores.analytics is None:
        return None
    from dataintel.export.datalake.store import open_lake

    blobs = open_lake(state.settings)
    runner = ReportRunner(
        state.settings, state.sessions, stores.analytics, state.port(CONFIGS), blobs
    )
    runner.start()
    return runner


def _gdpr(
    state: AppState, stores: Stores, recompute: Recompute, lake: BlobStore | None
) -> GdprRunner | None:
    """The GDPR runner runs beside the processor: it erases from every store it feeds."""
    if stores.analytics is None:
        return None
    erasure = GdprStores(
        state.engine,
        state.sessions,
        stores.eventlog,
        stores.analytics,
        stores.online,
        recompute,
        lake,
    )
    settings = state.settings
    topic = None
    if settings.gdpr_forget_topic:
        if not settings.resolved_eventlog_url.startswith("kafka://"):
            raise ValueError("gdpr_forget_topic needs a Kafka event log (eventlog_url kafka://…)")
        topic = KafkaTopic(settings.resolved_eventlog_url, settings.gdpr_forget_topic)
    outbox = Outbox(state.engine, state.sessions, settings.gdpr_forget_webhook_url, topic)
    metrics = GdprMetrics.create(state.metrics_registry)
    runner = GdprRunner(settings, erasure, state.port(CONFIGS), outbox, metrics)
    runner.start()
    return runner


def _retention(
    state: AppState, stores: Stores, lock: asyncio.Lock, lake: BlobStore | None
) -> RetentionRunner | None:
    """The retention runner runs beside the processor: it deletes from every store it feeds,
    from the analytics store between two of its micro-batches (holding its lock)."""
    if stores.analytics is None:
        return None
    retention = RetentionStores(
        state.engine,
        state.sessions,
        stores.eventlog,
        stores.analytics,
        stores.online,
        lock,
        state.settings.resolved_reports_dir,
        lake,
    )
    return RetentionRunner(state.settings, retention, state.port(CONFIGS))  # a job (_jobs)


def _datalake_replica(settings: Settings) -> AnalyticsStore:
    """``analytics_url=datalake://[?refresh_seconds=N]`` on an API replica: DuckDB in this
    process over the data lake the worker writes (export/datalake/replica.py)."""
    from urllib.parse import parse_qs, urlsplit

    from dataintel.export.datalake.replica import DataLakeReplica
    from dataintel.export.datalake.store import open_lake

    lake = open_lake(settings)
    if lake is None:
        raise ValueError("analytics_url datalake:// needs DATAINTEL_DATALAKE_URL (the lake)")
    query = parse_qs(urlsplit(settings.resolved_analytics_url).query)
    return DataLakeReplica(lake, float(query.get("refresh_seconds", ["5"])[0]))


def _datalake(settings: Settings, stores: Stores) -> DataLakeExport | None:
    """The continuous data lake export runs where the processor runs, when configured."""
    from dataintel.export.datalake.exporter import DataLakeExport
    from dataintel.export.datalake.store import open_lake

    store = open_lake(settings)
    if store is None:
        return None
    lake = DataLakeExport(
        stores.eventlog, store, settings.datalake_batch_events, settings.datalake_flush_seconds
    )
    lake.start()
    return lake


def _ingest(state: AppState) -> IngestRuntime:
    from dataintel.ingest.resources import INGEST

    return state.port(INGEST)


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """`dataintel worker`: the processor as its own process, stopped by SIGINT/SIGTERM."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    state = build_state(settings, Role.WORKER)
    try:
        async with running(state, Role.WORKER):
            await stop.wait()
    finally:
        state.engine.dispose()
