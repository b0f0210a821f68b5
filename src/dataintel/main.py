"""The application factory: ``create_app(settings)`` builds one FastAPI app; its ports come
from the composition root (``dataintel.composition``) for the process role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from dataintel import __version__
from dataintel.analytics import endpoints as analytics
from dataintel.analytics import funnel_endpoints as funnels
from dataintel.analytics import performance_endpoints as performance
from dataintel.analytics import revenue_endpoints as revenue
from dataintel.api import health, logging, openapi, problems
from dataintel.api.metrics import HttpMetrics
from dataintel.api.middleware import RequestContextMiddleware
from dataintel.audit import endpoints as audit
from dataintel.auth import endpoints as api_keys
from dataintel.composition import build_state, role_of, running
from dataintel.config.analytics_settings import endpoints as analytics_settings
from dataintel.config.batch import endpoints as batch_features
from dataintel.config.deployments import endpoints as deployments
from dataintel.config.derived import endpoints as derived
from dataintel.config.features import endpoints as features
from dataintel.config.monitoring import endpoints as monitoring
from dataintel.config.pipelines import endpoints as pipelines
from dataintel.config.pipelines import templates
from dataintel.config.projects import endpoints as projects
from dataintel.config.quality import endpoints as quality_rules
from dataintel.config.retention import endpoints as retention
from dataintel.dashboard import endpoints as dashboard
from dataintel.export import endpoints as export
from dataintel.features.batch import endpoints as batch_runs
from dataintel.features.offline import endpoints as historical
from dataintel.features.offline import export_endpoints as feature_export
from dataintel.features.serving import endpoints as serving
from dataintel.gdpr import endpoints as gdpr
from dataintel.ingest import endpoints as ingest
from dataintel.ingest import segment
from dataintel.ingest.deadletters import endpoints as dead_letters
from dataintel.quality import alert_endpoints, anomaly_endpoints, stats_endpoints
from dataintel.quality import endpoints as quality
from dataintel.reconciliation import endpoints as reconciliation
from dataintel.reports import custom_endpoints as custom_export
from dataintel.reports import endpoints as reports
from dataintel.scheduler import endpoints as jobs
from dataintel.settings import Settings
from dataintel.storage.metadata import migrate

DESCRIPTION = """\
dataintel ingests behavioural e-commerce events, keeps real-time features per user and cart,
and answers analytics, export, GDPR and data-quality questions.

Authenticate with `Authorization: Bearer <API key or JWT>` (or `X-API-Key`). Errors are
RFC 9457 `application/problem+json`.
"""

TAGS = [
    {"name": "projects", "description": "Tenants. Global admins create them."},
    {"name": "pipelines", "description": "Event pipelines and their event schemas."},
    {"name": "features", "description": "Feature definitions (windowed aggregations)."},
    {"name": "deployments", "description": "Immutable config versions, pending diff, rollback."},
    {"name": "api-keys", "description": "API keys: shown once, stored hashed, revocable."},
    {"name": "ingest", "description": "Events in: single, batch, signed webhooks; stats."},
    {"name": "segment", "description": "Segment-compatible tracking API (HTTP Basic auth)."},
    {"name": "dead-letters", "description": "Rejected events: list, filter, replay."},
    {"name": "export", "description": "Events out: NDJSON, CSV, Parquet, streamed."},
    {
        "name": "reports",
        "description": "Reports generated in the background: CSV, JSON, Parquet, PDF with charts.",
    },
    {"name": "serving", "description": "Feature vectors per user and cart, in milliseconds."},
    {
        "name": "analytics",
        "description": "Overview, funnels, revenue attribution, model performance; settings.",
    },
    {
        "name": "retention",
        "description": "How long each store keeps a project's data (per event), and the runs.",
    },
    {
        "name": "quality",
        "description": "Data-quality rules, their results, scores and validation; alerts, "
        "anomaly detection, feature statistics and drift; monitoring.",
    },
    {
        "name": "reconciliation",
        "description": "Per day, the event log, analytics and online stores compared and repaired.",
    },
    {"name": "operations", "description": "Health and metrics."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    logging.configure(settings.log_level, settings.log_json)
    role = role_of(settings)
    state = build_state(settings, role)
    if settings.auto_migrate:
        migrate.upgrade(state.engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            async with running(state, role):
                yield
        finally:
            state.engine.dispose()

    app = FastAPI(
        title="dataintel",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.dataintel = state
    problems.install(app)
    openapi.install(app)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=HttpMetrics(state.metrics_registry),
        max_body_bytes=settings.max_body_bytes,
    )
    for router in (
        serving.router,  # first: the hottest routes are matched with the fewest tries
        historical.router,
        health.router,
        api_keys.router,
        api_keys.me_router,
        projects.router,
        pipelines.router,
        templates.router,
        features.router,
        derived.router,
        batch_features.router,
        batch_runs.router,
        deployments.router,
        analytics_settings.router,
        retention.router,
        monitoring.router,
        alert_endpoints.router,
        stats_endpoints.router,
        anomaly_endpoints.router,
        quality_rules.router,
        ingest.router,
        segment.router,
        dead_letters.router,
        export.router,
        analytics.router,
        funnels.router,
        revenue.router,
        performance.router,
        reports.router,
        dashboard.router,
        audit.router,
        custom_export.router,
        feature_export.router,
        gdpr.router,
        quality.router,
        jobs.router,
        reconciliation.router,
    ):
        app.include_router(router)
    app.mount("/dashboard/static", dashboard.static_files(), name="dashboard-static")
    return app
