"""Dân làm: campaigns, contributions, audit log, notifications.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("slug", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("commune_code", sa.String(8), nullable=False),
        sa.Column("villages", sa.JSON, nullable=False),
        sa.Column("kinds", sa.JSON, nullable=False),
        sa.Column("targets", sa.JSON, nullable=False),
        sa.Column("starts_on", sa.Date, nullable=False),
        sa.Column("ends_on", sa.Date),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(96), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("is_sample", sa.Boolean, nullable=False),
    )
    op.create_index("ix_campaigns_commune", "campaigns", ["commune_code", "status"])
    op.create_table(
        "contributions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("commune_code", sa.String(8), nullable=False),
        sa.Column("village", sa.String(100)),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(100)),
        sa.Column("show_name", sa.Boolean, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("unit", sa.String(32)),
        sa.Column("description", sa.String(200)),
        sa.Column("due_on", sa.Date),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("source_key", sa.String(120), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("channel", "user_id", "source_key", name="uq_contributions_source"),
    )
    op.create_index("ix_contributions_campaign", "contributions", ["campaign_id", "status"])
    op.create_index("ix_contributions_commune", "contributions", ["commune_code", "status"])
    op.create_index("ix_contributions_user", "contributions", ["channel", "user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("actor", sa.String(96), nullable=False),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(32), nullable=False),
        sa.Column("before", sa.JSON),
        sa.Column("after", sa.JSON),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("buttons", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("sent_at", TZ),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_notifications_pending", "notifications", ["sent_at", "channel"])


def downgrade() -> None:
    for table in ("notifications", "audit_log", "contributions", "campaigns"):
        op.drop_table(table)
