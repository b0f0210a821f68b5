"""reconciliation: one report per (project, day checked, run)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import dataintel.storage.metadata.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

UTC_TIME = dataintel.storage.metadata.types.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "reconciliation_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("discrepancies", JSON, nullable=False),
        sa.Column("repairs", JSON, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "day", "run_id", name="uq_reconciliation_run_day"),
    )
    op.create_index(
        "ix_reconciliation_reports_project_day",
        "reconciliation_reports",
        ["project_id", "day"],
    )


def downgrade() -> None:
    op.drop_index("ix_reconciliation_reports_project_day", table_name="reconciliation_reports")
    op.drop_table("reconciliation_reports")
