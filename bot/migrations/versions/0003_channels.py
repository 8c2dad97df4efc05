"""Channels: processed events (webhook and poll deduplication) and Zalo OA tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "processed_events",
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("event_key", sa.String(128), primary_key=True),
        sa.Column("seen_at", TZ, nullable=False),
    )
    op.create_index("ix_processed_events_seen", "processed_events", ["seen_at"])
    op.create_table(
        "oa_tokens",
        sa.Column("app_id", sa.String(32), primary_key=True),
        sa.Column("access_token", sa.Text, nullable=False),
        sa.Column("refresh_token", sa.Text, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("oa_tokens")
    op.drop_index("ix_processed_events_seen", table_name="processed_events")
    op.drop_table("processed_events")
