"""batch features: draft definitions and their runs

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dataintel.storage.metadata.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UTC_TIME = dataintel.storage.metadata.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batch_features",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("entity_key", sa.String(length=128), nullable=False),
        sa.Column("pipeline_id", sa.String(length=64), nullable=True),
        sa.Column("source_event", sa.String(length=128), nullable=True),
        sa.Column("aggregation", sa.String(length=32), nullable=True),
        sa.Column("field", sa.String(length=128), nullable=True),
        sa.Column("expression", sa.Text(), nullable=True),
        sa.Column("window", sa.String(length=16), nullable=False),
        sa.Column("schedule", sa.String(length=16), nullable=False),
        sa.Column("ttl", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "name"),
    )
    op.create_table(
        "batch_feature_runs",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("feature", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("computed_at", UTC_TIME, nullable=False),
        sa.Column("entities", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "feature", "version", "computed_at"),
    )


def downgrade() -> None:
    op.drop_table("batch_feature_runs")
    op.drop_table("batch_features")
