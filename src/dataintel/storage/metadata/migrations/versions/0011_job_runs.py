"""job runs: the scheduler's record of every run (one row per job, project and slot)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import dataintel.storage.metadata.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UTC_TIME = dataintel.storage.metadata.types.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("slot_key", sa.String(length=64), nullable=False),
        sa.Column("slot", UTC_TIME, nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("fence", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", UTC_TIME, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=True),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.Column("outcome", JSON, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job", "project_id", "slot_key", name="uq_job_runs_slot"),
    )
    op.create_index("ix_job_runs_claimable", "job_runs", ["status", "lease_expires_at"])
    op.create_index("ix_job_runs_project", "job_runs", ["project_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_job_runs_project", table_name="job_runs")
    op.drop_index("ix_job_runs_claimable", table_name="job_runs")
    op.drop_table("job_runs")
