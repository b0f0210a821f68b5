"""Runtime configuration, read from the environment (prefix ``DATAINTEL_``) or a ``.env`` file."""

from __future__ import annotations

from functools import cached_property
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting of the service. Backends are chosen by URL only."""

    model_config = SettingsConfigDict(
        env_prefix="DATAINTEL_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Field(
        default=Path("./data"),
        description="Directory holding the embedded stores (SQLite metadata, event log, tiles).",
    )
    metadata_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the MetadataStore; default sqlite:///<data_dir>/metadata.db."
        " "
        "Use postgresql+psycopg://user@host:5432/db for PostgreSQL.",
    )
    eventlog_url: str | None = Field(
        default=None,
        description="The EventLog: default sqlite:///<data_dir>/eventlog.db (embedded, "
        "group commit); kafka://host:9092/<topic>?partitions=N for Kafka.",
    )
    analytics_url: str | None = Field(
        default=None,
        description="The AnalyticsStore: default duckdb:///<data_dir>/analytics.duckdb "
        "(?memory_limit=1GB bounds DuckDB's buffers; larger sorts spill to disk); "
        "chdb:///<dir> for in-process ClickHouse; clickhouse://host:8123/<db> for a server; "
        "datalake://[?refresh_seconds=5] on an API replica: DuckDB in the process over the "
        "data lake (datalake_url) the worker writes, read-only.",
    )
    online_url: str | None = Field(
        default=None,
        description="The OnlineStore (feature tiles): default sqlite:///<data_dir>/online.db "
        "(in-process, durable); redis://host:6379/<db>[?prefix=name] for Redis. Decoded "
        "entities are cached for serving up to 256 MB per process (?cache_mb=N embedded, "
        "?decode_cache_mb=N Redis).",
    )
    online_ttl_seconds: int = Field(
        default=90 * 86400,
        ge=3600,
        description="An entity with no new event for this long expires from the online store.",
    )
    cache_url: str = Field(
        default="memory://",
        description="Shared short-lived state (webhook replay guard, Kafka dedup, cached "
        "analytics answers): memory:// (one process) or redis://host:port/db.",
    )
    ingest_max_batch_events: int = Field(
        default=10_000, ge=1, description="Most events in one batch request (413 above)."
    )
    ingest_max_future_skew_seconds: int = Field(
        default=300, ge=0, description="Events timestamped further in the future are rejected."
    )
    ingest_allowed_lateness_seconds: int = Field(
        default=7 * 86400,
        ge=0,
        description="Events older than this (event time vs. arrival) are rejected as too_late.",
    )
    dedup_window_seconds: int = Field(
        default=7 * 86400, ge=60, description="How long an event_id is remembered for dedup."
    )
    processor_enabled: bool = Field(
        default=True,
        description="Run the stream processor inside `serve` (embedded mode). Set false when "
        "separate `dataintel worker` processes consume the log.",
    )
    processor_batch_events: int = Field(
        default=10_000, ge=1, description="Most log entries one processor micro-batch applies."
    )
    wait_processed_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Longest an ingest call with ?wait=processed waits."
    )
    auto_migrate: bool = Field(
        default=True, description="Run pending metadata migrations when the service starts."
    )
    reports_dir: Path | None = Field(
        default=None,
        description="Directory of generated report files; default <data_dir>/reports. Every "
        "process that serves or generates reports must see the same directory.",
    )
    report_expiry_seconds: int = Field(
        default=7 * 86400,
        ge=1,
        description="A report (its file, or its failure) expires this long after it finished: "
        "its file is deleted and GET answers 410.",
    )
    report_lease_seconds: float = Field(
        default=30.0,
        ge=1,
        description="A worker generating a report renews its claim every third of this; a "
        "claim not renewed for this long (the worker died) lets another worker retry it.",
    )
    report_max_attempts: int = Field(
        default=3,
        ge=1,
        description="Runs of one report interrupted by a dead worker before it is failed.",
    )
    report_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often an idle worker looks for queued reports."
    )
    batch_features_tick_seconds: float = Field(
        default=60.0,
        ge=1,
        le=86400,
        description="The job features.batch runs this often per project and computes the "
        "batch features that are due per their schedule (the schedule's granularity).",
    )
    breaker_threshold: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Outages in a row (connection refused or reset, timeouts) after which a "
        "backend's circuit breaker opens: calls to it then fail at once with 503 + Retry-After.",
    )
    breaker_reset_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long an open breaker refuses calls before it lets them through again "
        "(closing at the first success).",
    )
    ingest_spool_path: Path | None = Field(
        default=None,
        description="With a Kafka event log, the SQLite file where an API process keeps "
        "acknowledged events while the broker is down (forwarded in order when it is back). "
        "Default: <data_dir>/ingest-spool.db; each API replica needs its own.",
    )
    ingest_spool_max_mb: float = Field(
        default=256.0,
        gt=0,
        le=1_000_000,
        description="The spool's bound (event bytes): when it is full, ingest answers 503 + "
        "Retry-After instead of accepting what it cannot keep.",
    )
    ingest_spool_after_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="How long an append waits for the broker before its events go to the "
        "spool (and, while the spool holds any, every append goes behind them).",
    )
    otel_traces_endpoint: str | None = Field(
        default=None,
        description="Export OpenTelemetry traces to this OTLP/HTTP endpoint (e.g. "
        "http://collector:4318/v1/traces): a span per HTTP request, per call to a store and per "
        "processor batch, carried through Kafka headers from ingest to the feature update; "
        "trace ids in the JSON logs. Unset (the default): tracing is off and costs nothing.",
    )
    otel_service_name: str = Field(
        default="dataintel", max_length=100, description="The traces' service.name."
    )
    serving_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="A feature read that takes longer than this (a slow online store) is "
        "answered like an outage: the entity's recent vector marked stale, or 503. Applies to "
        "Redis; the embedded store reads in the event loop, where a timeout cannot cut in.",
    )
    serving_stale_vectors: int = Field(
        default=50_000,
        ge=0,
        le=10_000_000,
        description="Vectors each API process keeps (the last served per entity and feature "
        "list) to answer, marked stale, while the online store is down; 0: always 503.",
    )
    scheduler_scheduled: bool = Field(
        default=True,
        description="Whether jobs also run on their schedules; false: only the runs asked "
        "for (POST /v1/jobs/{job}/runs and the planes' run-now routes).",
    )
    scheduler_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often a worker's scheduler inserts due slots and claims free job runs "
        "(a manual trigger in the same process wakes it at once).",
    )
    scheduler_lease_seconds: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="A job run's lease, renewed every third of it while the run goes on; a "
        "worker killed mid-run loses the slot to another worker this long after its last renewal.",
    )
    scheduler_concurrency: int = Field(
        default=2, ge=1, le=64, description="Job runs one worker process runs at the same time."
    )
    scheduler_keep_days: int = Field(
        default=30, ge=1, le=3650, description="Finished and failed job runs are kept this long."
    )
    retention_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How often each project's deployed retention policy is applied in every "
        "store (by the worker beside the stream processor).",
    )
    quality_anomaly_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How often the quality.anomalies job judges each project's last complete "
        "hour of metrics (volume, revenue, rates, null rates, means) against its baseline.",
    )
    quality_drift_interval_seconds: float = Field(
        default=86400.0,
        gt=0,
        description="How often the quality.drift job computes each deployed feature's daily "
        "statistics and its drift (PSI, Jensen-Shannon) against the reference window.",
    )
    quality_consistency_interval_seconds: float = Field(
        default=900.0,
        gt=0,
        description="How often the quality.consistency job compares the served feature "
        "values of a sample of recently active entities with their recomputation by SQL.",
    )
    quality_consistency_sample: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Entities per entity key compared by each quality.consistency run.",
    )
    quality_notify_interval_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the quality.notify job retries alert notifications that are "
        "due (each is also tried at once by the job that raised it).",
    )
    reconciliation_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=7 * 86400,
        description="How often the job reconciliation.daily checks each project's event log, "
        "analytics and online stores for yesterday and today (UTC) and repairs what they lost "
        "(docs/reconciliation.md).",
    )
    reconciliation_scheduled: bool = Field(
        default=True,
        description="Whether reconciliation.daily also runs on its schedule; false: only the "
        "runs asked for (POST /v1/reconciliation/run).",
    )
    quality_interval_seconds: float = Field(
        default=900.0,
        ge=60,
        le=7 * 86_400,
        description="How often the job quality.rules runs each project's deployed quality "
        "rules (docs/quality.md).",
    )
    gdpr_max_attempts: int = Field(
        default=5,
        ge=1,
        description="Failed attempts of one store's erasure (retried with exponential "
        "back-off, 2 s … 5 min) before a GDPR request is failed.",
    )
    gdpr_forget_webhook_url: str | None = Field(
        default=None,
        description="Where each finished forget request is announced to the platform's other "
        "services: a `gdpr.forget` JSON message POSTed here (Idempotency-Key: the request id), "
        "retried until a 2xx. Unset: not propagated.",
    )
    gdpr_forget_topic: str | None = Field(
        default=None,
        description="A Kafka topic (on the event log's cluster: eventlog_url kafka://…) where "
        "each finished forget request publishes its `gdpr.forget` message, keyed by the "
        "request id, exactly once. Unset: not published there.",
    )
    gdpr_suppression_refresh_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How stale an API process's copy of the suppression list may be; a forget "
        "request waits twice this before it reads the log's end.",
    )
    datalake_url: str | None = Field(
        default=None,
        description="The data lake's blob store: s3://bucket/prefix[?endpoint=http://host:port"
        "&region=us-east-1] (S3-compatible) or file:///dir. Set: every event is exported there "
        "as Parquet (docs/datalake.md) and custom exports may target it; unset: both are off.",
    )
    s3_access_key_id: str | None = Field(
        default=None,
        description="Access key of the data lake's S3 bucket (unset: the standard AWS chain).",
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret key of the data lake's S3 bucket."
    )
    datalake_batch_events: int = Field(
        default=100_000,
        ge=1,
        description="Most log entries of one data lake micro-batch (one set of files per log "
        "partition).",
    )
    datalake_flush_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Longest the data lake export waits to fill a micro-batch before it writes "
        "(fewer, larger files; the lake trails the log by about this much).",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(
        default=None, description="Externally visible base URL (used in webhook URLs)."
    )

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = Field(default=True, description="JSON log lines (false: console format).")

    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest accepted request body (413 above)."
    )

    rate_limit: str | None = Field(
        default="2000/second",
        description="Per-credential request limit in `limits` notation, e.g. "
        "'100/second;5000/minute'. "
        "Empty disables rate limiting.",
    )
    rate_limit_storage_url: str = Field(
        default="memory://",
        description="Where rate-limit counters live: memory:// (one process) or redis://host:port/db.",
    )
    sensitive_rate_limit: str | None = Field(
        default="30/minute",
        description="A second, stricter per-credential limit on the sensitive routes (API key "
        "management, GDPR, exports), on top of rate_limit; `limits` notation. Empty disables "
        "it.",
    )
    sensitive_rate_limit_per_ip: str | None = Field(
        default="60/minute",
        description="Per client IP limit on the sensitive routes, whatever the credential "
        "(counted before authentication); `limits` notation. Empty disables it.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Comma-separated IPs or CIDRs of the reverse proxies in front of the "
        "service. Only when the peer is one of them is the client IP taken from "
        "X-Forwarded-For (its right-most address that is not a trusted proxy); else the "
        "peer address is the client IP and the header is ignored.",
    )

    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr | None = Field(default=None, description="HS256 shared secret.")
    jwt_public_key: str | None = Field(
        default=None, description="RS256 public key (PEM text, or a path to a PEM file)."
    )
    jwt_issuer: str = "dataintel"
    jwt_audience: str = "dataintel"
    jwt_leeway_seconds: int = Field(default=30, ge=0)

    webhook_rotation_grace_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        description="How long a rotated-out webhook secret keeps verifying.",
    )
    config_cache_ttl_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Upper bound on how stale another replica's view of the deployed config is.",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in (p.strip() for p in value.split(",")) if part]
        if isinstance(value, list | tuple):
            for entry in value:
                ip_network(str(entry), strict=False)  # ValueError: not an IP or CIDR
        return value

    @model_validator(mode="after")
    def _check_jwt(self) -> Settings:
        if (
            self.jwt_algorithm == "RS256"
            and self.jwt_secret is not None
            and not self.jwt_public_key
        ):
            raise ValueError("jwt_algorithm=RS256 needs jwt_public_key, not jwt_secret")
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if secret is not None and len(secret.encode()) < 32:
            # RFC 7518 3.2: an HS256 key must be at least as long as the hash (256 bits).
            raise ValueError("jwt_secret must be at least 32 bytes long")
        return self

    @property
    def resolved_metadata_url(self) -> str:
        if self.metadata_url:
            return self.metadata_url
        return f"sqlite:///{(self.data_dir / 'metadata.db').resolve()}"

    @cached_property
    def jwt_verification_key(self) -> str | None:
        """The key JWTs are verified with, or None when JWT auth is off."""
        if self.jwt_algorithm == "HS256":
            return self.jwt_secret.get_secret_value() if self.jwt_secret else None
        key = self.jwt_public_key
        if key and not key.lstrip().startswith("-----BEGIN"):
            key = Path(key).read_text()
        return key

    @property
    def resolved_eventlog_url(self) -> str:
        return self.eventlog_url or f"sqlite:///{(self.data_dir / 'eventlog.db').resolve()}"

    @property
    def resolved_analytics_url(self) -> str:
        return self.analytics_url or f"duckdb:///{(self.data_dir / 'analytics.duckdb').resolve()}"

    @property
    def resolved_online_url(self) -> str:
        return self.online_url or f"sqlite:///{(self.data_dir / 'online.db').resolve()}"

    @property
    def resolved_reports_dir(self) -> Path:
        return (self.reports_dir or self.data_dir / "reports").resolve()

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"
