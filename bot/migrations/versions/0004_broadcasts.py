"""Dân biết: subscriptions, news items, broadcasts, deliveries, schedules; users.last_seen_at.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("commune_code", sa.String(8)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("commune_news", sa.Boolean, nullable=False),
        sa.Column("province_news", sa.Boolean, nullable=False),
        sa.Column("campaign_news", sa.Boolean, nullable=False),
        sa.Column("pledge_reminders", sa.Boolean, nullable=False),
        sa.Column("digest", sa.String(8), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("blocked_at", TZ),
        sa.Column("last_digest_at", TZ),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_subscriptions_commune", "subscriptions", ["active", "commune_code"])
    op.create_table(
        "news_items",
        sa.Column("slug", sa.String(100), primary_key=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("published_on", sa.Date, nullable=False),
        sa.Column("scope_level", sa.String(16), nullable=False),
        sa.Column("scope_code", sa.String(8), nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("loaded_at", TZ, nullable=False),
    )
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("html", sa.Text),
        sa.Column("photo", sa.String(500)),
        sa.Column("scope_level", sa.String(16), nullable=False),
        sa.Column("scope_code", sa.String(8), nullable=False),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("locale", sa.String(8)),
        sa.Column("paid", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("send_at", TZ, nullable=False),
        sa.Column("created_by", sa.String(96), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("finished_at", TZ),
    )
    op.create_index("ix_broadcasts_due", "broadcasts", ["status", "send_at"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("broadcast_id", sa.Integer, sa.ForeignKey("broadcasts.id"), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("message_id", sa.String(64)),
        sa.Column("next_try_at", TZ),
        sa.Column("updated_at", TZ),
        sa.UniqueConstraint("broadcast_id", "channel", "user_id", name="uq_deliveries_recipient"),
    )
    op.create_index("ix_deliveries_work", "deliveries", ["broadcast_id", "state", "id"])
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("next_run_at", TZ, nullable=False),
        sa.Column("last_run_at", TZ),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("last_seen_at", TZ))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("last_seen_at")
    for table in ("schedules", "deliveries", "broadcasts", "news_items", "subscriptions"):
        op.drop_table(table)
