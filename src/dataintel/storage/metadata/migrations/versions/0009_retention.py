"""retention: each project's draft policy, and the runner's state per project

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import dataintel.storage.metadata.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UTC_TIME = dataintel.storage.metadata.types.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("policy", JSON, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id"),
    )
    op.create_table(
        "retention_status",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("next_run_at", UTC_TIME, nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", UTC_TIME, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("started_at", UTC_TIME, nullable=True),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.Column("deleted", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id"),
    )
    op.create_index("ix_retention_status_next_run_at", "retention_status", ["next_run_at"])


def downgrade() -> None:
    op.drop_index("ix_retention_status_next_run_at", table_name="retention_status")
    op.drop_table("retention_status")
    op.drop_table("retention_policies")
