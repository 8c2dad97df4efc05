"""Dân bàn: polls, their options and one vote per person.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "polls",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("commune_code", sa.String(8), nullable=False),
        sa.Column("village", sa.String(100)),
        sa.Column("question", sa.String(500), nullable=False),
        sa.Column("results", sa.String(16), nullable=False),
        sa.Column("closes_at", TZ, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(96), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("closed_at", TZ),
        sa.Column("source_key", sa.String(120), nullable=False, unique=True),
    )
    op.create_index("ix_polls_commune", "polls", ["commune_code", "status"])
    op.create_table(
        "poll_options",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("poll_id", sa.Integer, sa.ForeignKey("polls.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("text", sa.String(200), nullable=False),
        sa.UniqueConstraint("poll_id", "position", name="uq_poll_options_position"),
    )
    op.create_table(
        "poll_votes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("poll_id", sa.Integer, sa.ForeignKey("polls.id"), nullable=False),
        sa.Column("option_id", sa.Integer, sa.ForeignKey("poll_options.id"), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("village", sa.String(100)),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("poll_id", "channel", "user_id", name="uq_poll_votes_voter"),
    )


def downgrade() -> None:
    op.drop_table("poll_votes")
    op.drop_table("poll_options")
    op.drop_index("ix_polls_commune", "polls")
    op.drop_table("polls")
