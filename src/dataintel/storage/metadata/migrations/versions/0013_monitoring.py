"""monitoring: draft settings, alerts and their outbox, metric series and evaluations,
feature statistics

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import dataintel.storage.metadata.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UTC_TIME = dataintel.storage.metadata.types.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _project() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "monitoring_settings",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        _project(),
        sa.PrimaryKeyConstraint("project_id"),
    )
    op.create_table(
        "quality_alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.Column("first_seen", UTC_TIME, nullable=False),
        sa.Column("last_seen", UTC_TIME, nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.Column("acknowledged_at", UTC_TIME, nullable=True),
        sa.Column("resolved_at", UTC_TIME, nullable=True),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        _project(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_quality_alerts_project_status", "quality_alerts", ["project_id", "status"])
    op.create_index(
        "ix_quality_alerts_project_fingerprint", "quality_alerts", ["project_id", "fingerprint"]
    )
    op.create_table(
        "quality_alert_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", UTC_TIME, nullable=False),
        sa.Column("lease_expires_at", UTC_TIME, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        _project(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_quality_alert_outbox_project_id", "quality_alert_outbox", ["project_id"])
    for table in ("quality_metric_points", "quality_evaluations"):
        extra = (
            [
                sa.Column("support", sa.Float(), nullable=False),
                sa.Column("anomalous", sa.Boolean(), nullable=False),
            ]
            if table == "quality_metric_points"
            else [
                sa.Column("status", sa.String(length=16), nullable=False),
                sa.Column("expected", sa.Float(), nullable=True),
                sa.Column("spread", sa.Float(), nullable=True),
                sa.Column("score", sa.Float(), nullable=True),
                sa.Column("baseline", sa.Integer(), nullable=False),
                sa.Column("evaluated_at", UTC_TIME, nullable=False),
            ]
        )
        op.create_table(
            table,
            sa.Column("project_id", sa.String(length=64), nullable=False),
            sa.Column("metric", sa.String(length=300), nullable=False),
            sa.Column("bucket", UTC_TIME, nullable=False),
            sa.Column("value", sa.Float(), nullable=True),
            *extra,
            _project(),
            sa.PrimaryKeyConstraint("project_id", "metric", "bucket"),
        )
    op.create_table(
        "feature_statistics",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("day", UTC_TIME, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("nulls", sa.BigInteger(), nullable=False),
        sa.Column("mean", sa.Float(), nullable=True),
        sa.Column("quantiles", JSON, nullable=False),
        sa.Column("histogram", JSON, nullable=False),
        sa.Column("drift", JSON, nullable=False),
        sa.Column("computed_at", UTC_TIME, nullable=False),
        _project(),
        sa.PrimaryKeyConstraint("project_id", "feature", "day"),
    )


def downgrade() -> None:
    op.drop_table("feature_statistics")
    op.drop_table("quality_evaluations")
    op.drop_table("quality_metric_points")
    op.drop_index("ix_quality_alert_outbox_project_id", table_name="quality_alert_outbox")
    op.drop_table("quality_alert_outbox")
    op.drop_index("ix_quality_alerts_project_fingerprint", table_name="quality_alerts")
    op.drop_index("ix_quality_alerts_project_status", table_name="quality_alerts")
    op.drop_table("quality_alerts")
    op.drop_table("monitoring_settings")
