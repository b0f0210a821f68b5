"""Alembic environment: the engine is handed in by dataintel.storage.metadata.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from dataintel.storage.metadata import (
    audit_models,
    batch_models,
    gdpr_models,
    job_models,
    monitoring_models,
    quality_models,
    reconciliation_models,
    report_models,
    retention_models,
)
from dataintel.storage.metadata.models import Base

# every table on Base.metadata
MODELS = (
    audit_models,
    batch_models,
    gdpr_models,
    job_models,
    monitoring_models,
    quality_models,
    reconciliation_models,
    report_models,
    retention_models,
)

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):  # pragma: no cover - only via the alembic CLI
    from dataintel.settings import Settings
    from dataintel.storage.metadata.engine import make_engine

    engine = make_engine(Settings().resolved_metadata_url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
