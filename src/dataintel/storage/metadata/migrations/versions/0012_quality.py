"""quality: each project's draft rules, and the results of the rule runs (a time series)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import dataintel.storage.metadata.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UTC_TIME = dataintel.storage.metadata.types.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "quality_drafts",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id"),
    )
    op.create_table(
        "quality_results",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("rule_type", sa.String(length=32), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("dataset", sa.String(length=128), nullable=False),
        sa.Column("pipeline", sa.String(length=64), nullable=True),
        sa.Column("column", sa.String(length=1100), nullable=True),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("slot", UTC_TIME, nullable=False),
        sa.Column("evaluated_at", UTC_TIME, nullable=False),
        sa.Column("window_start", UTC_TIME, nullable=False),
        sa.Column("window_end", UTC_TIME, nullable=False),
        sa.Column("observed", sa.Double(), nullable=True),
        sa.Column("passing", sa.BigInteger(), nullable=True),
        sa.Column("total", sa.BigInteger(), nullable=True),
        sa.Column("pass_fraction", sa.Double(), nullable=True),
        sa.Column("weight", sa.Double(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "slot", "rule", name="uq_quality_results_slot_rule"),
    )
    op.create_index("ix_quality_results_rule", "quality_results", ["project_id", "rule", "id"])


def downgrade() -> None:
    op.drop_index("ix_quality_results_rule", table_name="quality_results")
    op.drop_table("quality_results")
    op.drop_table("quality_drafts")
