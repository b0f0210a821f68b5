"""audit trail: hash-chained entries per project, and each chain's head

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-11 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import dataintel.storage.metadata.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UTC_TIME = dataintel.storage.metadata.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=400), nullable=True),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain", "seq"),
    )
    op.create_index("ix_audit_entries_chain_at", "audit_entries", ["chain", "at"])
    op.create_table(
        "audit_heads",
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain"),
    )


def downgrade() -> None:
    op.drop_table("audit_heads")
    op.drop_index("ix_audit_entries_chain_at", table_name="audit_entries")
    op.drop_table("audit_entries")
