"""gdpr: requests, per-store tasks, suppression list, forget outbox, service secrets

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 09:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import dataintel.storage.metadata.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UTC_TIME = dataintel.storage.metadata.types.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("ingest_stats") as batch:
        batch.add_column(
            sa.Column("suppressed", sa.BigInteger(), server_default="0", nullable=False)
        )
    op.create_table(
        "gdpr_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=True),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.Column("next_attempt_at", UTC_TIME, nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", UTC_TIME, nullable=True),
        sa.Column("state", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_gdpr_requests_claim", "gdpr_requests", ["status", "next_attempt_at"])
    op.create_index("ix_gdpr_requests_project", "gdpr_requests", ["project_id", "created_at"])
    op.create_index("ix_gdpr_requests_subject_hash", "gdpr_requests", ["subject_hash"])
    op.create_table(
        "gdpr_tasks",
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("store", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("erased", sa.Integer(), nullable=True),
        sa.Column("started_at", UTC_TIME, nullable=True),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["gdpr_requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("request_id", "store"),
    )
    op.create_table(
        "gdpr_suppressions",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("subject_hash", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "subject_hash"),
    )
    op.create_table(
        "gdpr_outbox",
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", UTC_TIME, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("delivered", JSON, nullable=False),
        sa.Column("topic_from", JSON, nullable=True),
        sa.Column("lease_expires_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    with op.batch_alter_table("ingest_stats") as batch:
        batch.drop_column("suppressed")
    op.drop_table("service_secrets")
    op.drop_table("gdpr_outbox")
    op.drop_table("gdpr_suppressions")
    op.drop_table("gdpr_tasks")
    op.drop_index("ix_gdpr_requests_subject_hash", table_name="gdpr_requests")
    op.drop_index("ix_gdpr_requests_project", table_name="gdpr_requests")
    op.drop_index("ix_gdpr_requests_claim", table_name="gdpr_requests")
    op.drop_table("gdpr_requests")
