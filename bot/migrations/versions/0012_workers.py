"""Several workers behave as one bot: the inbox and its turns, cache versions.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("event_key", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("body", sa.JSON),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("taken_at", TZ),
        sa.UniqueConstraint("channel", "event_key", name="uq_inbox_event"),
    )
    op.create_index("ix_inbox_user", "inbox", ["channel", "user_id", "taken_at"])
    op.create_index("ix_inbox_received", "inbox", ["received_at"])
    op.create_table(
        "inbox_turns",
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(32)),
        sa.Column("lease_until", TZ),
    )
    op.create_table(
        "cache_versions",
        sa.Column("area", sa.String(16), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cache_versions")
    op.drop_table("inbox_turns")
    op.drop_index("ix_inbox_received", "inbox")
    op.drop_index("ix_inbox_user", "inbox")
    op.drop_table("inbox")
